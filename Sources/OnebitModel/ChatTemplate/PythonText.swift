/// Python's string semantics that templates observe: what counts as whitespace, case mapping, `repr` of floats
/// and strings. Strings are indexed by Unicode scalar, like Python's `str`.
enum PythonText {
    /// Python's `str.isspace`: Unicode White_Space plus the ASCII separators U+001C...U+001F.
    static func isSpace(_ scalar: Unicode.Scalar) -> Bool {
        scalar.properties.isWhitespace || (0x1C...0x1F).contains(scalar.value)
    }

    static func strip(_ text: String, characters: String?, leading: Bool, trailing: Bool) -> String {
        let scalars = Array(text.unicodeScalars)
        let set = characters.map { Set($0.unicodeScalars) }
        func removable(_ scalar: Unicode.Scalar) -> Bool {
            if let set { return set.contains(scalar) }
            return isSpace(scalar)
        }
        var start = 0
        var end = scalars.count
        if leading { while start < end, removable(scalars[start]) { start += 1 } }
        if trailing { while end > start, removable(scalars[end - 1]) { end -= 1 } }
        return String(String.UnicodeScalarView(scalars[start..<end]))
    }

    static func uppercased(_ text: String) -> String {
        var out = String.UnicodeScalarView()
        for scalar in text.unicodeScalars { out.append(contentsOf: scalar.properties.uppercaseMapping.unicodeScalars) }
        return String(out)
    }

    static func lowercased(_ text: String) -> String {
        var out = String.UnicodeScalarView()
        for scalar in text.unicodeScalars { out.append(contentsOf: scalar.properties.lowercaseMapping.unicodeScalars) }
        return String(out)
    }

    /// Python's `str.capitalize`: the first character in title case, the rest in lower case.
    static func capitalized(_ text: String) -> String {
        guard let first = text.unicodeScalars.first else { return "" }
        return first.properties.titlecaseMapping + lowercased(String(text.unicodeScalars.dropFirst()))
    }

    /// Python's `str.title`: a cased character after an uncased one starts a word.
    static func titled(_ text: String) -> String {
        var out = ""
        var previousCased = false
        for scalar in text.unicodeScalars {
            let properties = scalar.properties
            if previousCased {
                out += properties.lowercaseMapping
            } else {
                out += properties.titlecaseMapping
            }
            previousCased = properties.isCased
        }
        return out
    }

    /// Jinja's `title` filter: words start after whitespace, `-`, or an opening bracket.
    static func jinjaTitled(_ text: String) -> String {
        var out = ""
        var atWordStart = true
        for scalar in text.unicodeScalars {
            let separator = isSpace(scalar) || "-({[<".unicodeScalars.contains(scalar)
            if separator {
                out.unicodeScalars.append(scalar)
                atWordStart = true
            } else if atWordStart {
                out += scalar.properties.uppercaseMapping
                atWordStart = false
            } else {
                out += scalar.properties.lowercaseMapping
            }
        }
        return out
    }

    /// Python's `str.split`: on runs of whitespace without a separator, else on each occurrence of it.
    static func split(_ text: String, separator: String?, maxSplits: Int) -> [String] {
        let scalars = Array(text.unicodeScalars)
        var parts: [String] = []
        guard let separator else {
            var index = 0
            while index < scalars.count {
                while index < scalars.count, isSpace(scalars[index]) { index += 1 }
                guard index < scalars.count else { break }
                if maxSplits >= 0 && parts.count == maxSplits {
                    var end = scalars.count
                    while end > index, isSpace(scalars[end - 1]) { end -= 1 }
                    parts.append(String(String.UnicodeScalarView(scalars[index..<end])))
                    break
                }
                let start = index
                while index < scalars.count, !isSpace(scalars[index]) { index += 1 }
                parts.append(String(String.UnicodeScalarView(scalars[start..<index])))
            }
            return parts
        }
        let needle = Array(separator.unicodeScalars)
        var start = 0
        var index = 0
        while index + needle.count <= scalars.count {
            if maxSplits >= 0 && parts.count == maxSplits { break }
            if Array(scalars[index..<index + needle.count]) == needle {
                parts.append(String(String.UnicodeScalarView(scalars[start..<index])))
                index += needle.count
                start = index
            } else {
                index += 1
            }
        }
        parts.append(String(String.UnicodeScalarView(scalars[start...])))
        return parts
    }

    /// Python's `str.splitlines()`: breaks at \n, \r, \r\n and the other Unicode line boundaries; no trailing empty.
    static func splitLines(_ text: String) -> [String] {
        let breaks: Set<UInt32> = [0x0A, 0x0B, 0x0C, 0x0D, 0x1C, 0x1D, 0x1E, 0x85, 0x2028, 0x2029]
        var lines: [String] = []
        var line = String.UnicodeScalarView()
        var previousWasCarriageReturn = false
        for scalar in text.unicodeScalars {
            if scalar == "\n" && previousWasCarriageReturn {
                previousWasCarriageReturn = false
                continue
            }
            previousWasCarriageReturn = scalar == "\r"
            if breaks.contains(scalar.value) {
                lines.append(String(line))
                line = String.UnicodeScalarView()
            } else {
                line.append(scalar)
            }
        }
        if !line.isEmpty { lines.append(String(line)) }
        return lines
    }

    /// Python's `str.replace(old, new, count)`.
    static func replace(_ text: String, _ old: String, with new: String, count: Int) -> String {
        let scalars = Array(text.unicodeScalars)
        let needle = Array(old.unicodeScalars)
        var out = String.UnicodeScalarView()
        var replaced = 0
        if needle.isEmpty {
            // Python inserts the replacement between every character and at both ends.
            for scalar in scalars {
                if count < 0 || replaced < count {
                    out.append(contentsOf: new.unicodeScalars)
                    replaced += 1
                }
                out.append(scalar)
            }
            if count < 0 || replaced < count { out.append(contentsOf: new.unicodeScalars) }
            return String(out)
        }
        var index = 0
        while index < scalars.count {
            if count < 0 || replaced < count, index + needle.count <= scalars.count,
                Array(scalars[index..<index + needle.count]) == needle
            {
                out.append(contentsOf: new.unicodeScalars)
                index += needle.count
                replaced += 1
            } else {
                out.append(scalars[index])
                index += 1
            }
        }
        return String(out)
    }

    /// The scalar offset of the first (or last) occurrence of `needle`, or -1, like `str.find`/`str.rfind`.
    static func find(_ needle: String, in text: String, fromEnd: Bool) -> Int {
        let scalars = Array(text.unicodeScalars)
        let pattern = Array(needle.unicodeScalars)
        guard pattern.count <= scalars.count else { return -1 }
        let starts = Array(0...(scalars.count - pattern.count))
        for start in fromEnd ? starts.reversed() : starts where Array(scalars[start..<start + pattern.count]) == pattern
        {
            return start
        }
        return -1
    }

    static func count(_ needle: String, in text: String) -> Int {
        let scalars = Array(text.unicodeScalars)
        let pattern = Array(needle.unicodeScalars)
        if pattern.isEmpty { return scalars.count + 1 }
        var total = 0
        var index = 0
        while index + pattern.count <= scalars.count {
            if Array(scalars[index..<index + pattern.count]) == pattern {
                total += 1
                index += pattern.count
            } else {
                index += 1
            }
        }
        return total
    }

    /// Python's `repr(float)`: the shortest round-tripping digits, positional for exponents -4 through 15.
    static func floatRepresentation(_ value: Double) -> String {
        if value.isNaN { return "nan" }
        if value.isInfinite { return value < 0 ? "-inf" : "inf" }
        if value == 0 { return value.sign == .minus ? "-0.0" : "0.0" }
        // Swift's description also prints the shortest round-tripping digits; only the layout differs.
        var text = Swift.abs(value).description
        var exponent = 0
        if let e = text.firstIndex(where: { $0 == "e" || $0 == "E" }) {
            exponent = Int(text[text.index(after: e)...]) ?? 0
            text = String(text[..<e])
        }
        var integerPart = text
        var fraction = ""
        if let dot = text.firstIndex(of: ".") {
            integerPart = String(text[..<dot])
            fraction = String(text[text.index(after: dot)...])
        }
        var digits = integerPart + fraction
        var pointPosition = integerPart.count + exponent
        while digits.first == "0" && digits.count > 1 {
            digits.removeFirst()
            pointPosition -= 1
        }
        while digits.last == "0" && digits.count > 1 { digits.removeLast() }
        let scientificExponent = pointPosition - 1
        let sign = value < 0 ? "-" : ""
        if scientificExponent < -4 || scientificExponent >= 16 {
            var mantissa = String(digits.first ?? "0")
            if digits.count > 1 { mantissa += "." + digits.dropFirst() }
            let magnitude = Swift.abs(scientificExponent)
            let exponentText = (magnitude < 10 ? "0" : "") + String(magnitude)
            return sign + mantissa + "e" + (scientificExponent < 0 ? "-" : "+") + exponentText
        }
        if pointPosition <= 0 {
            return sign + "0." + String(repeating: "0", count: -pointPosition) + digits
        }
        if pointPosition >= digits.count {
            return sign + digits + String(repeating: "0", count: pointPosition - digits.count) + ".0"
        }
        let splitIndex = digits.index(digits.startIndex, offsetBy: pointPosition)
        return sign + digits[..<splitIndex] + "." + digits[splitIndex...]
    }

    /// Python's `repr(str)`: single quotes unless the text has one and no double quote.
    static func stringRepresentation(_ text: String) -> String {
        let quote: Unicode.Scalar =
            text.unicodeScalars.contains("'") && !text.unicodeScalars.contains("\"") ? "\"" : "'"
        var out = String.UnicodeScalarView()
        out.append(quote)
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\\": out.append(contentsOf: "\\\\".unicodeScalars)
            case "\n": out.append(contentsOf: "\\n".unicodeScalars)
            case "\r": out.append(contentsOf: "\\r".unicodeScalars)
            case "\t": out.append(contentsOf: "\\t".unicodeScalars)
            case quote: out.append(contentsOf: "\\\(quote)".unicodeScalars)
            default:
                if isPrintable(scalar) {
                    out.append(scalar)
                } else {
                    let hex = String(scalar.value, radix: 16)
                    let (prefix, width) =
                        scalar.value < 0x100 ? ("\\x", 2) : scalar.value < 0x10000 ? ("\\u", 4) : ("\\U", 8)
                    out.append(
                        contentsOf: (prefix + String(repeating: "0", count: width - hex.count) + hex).unicodeScalars)
                }
            }
        }
        out.append(quote)
        return String(out)
    }

    /// Python's `str.isprintable` for one character: not a control, format, separator (except space) or unassigned.
    private static func isPrintable(_ scalar: Unicode.Scalar) -> Bool {
        switch scalar.properties.generalCategory {
        case .control, .format, .surrogate, .privateUse, .unassigned, .lineSeparator, .paragraphSeparator:
            return false
        case .spaceSeparator:
            return scalar == " "
        default:
            return true
        }
    }
}
