/// One token of a template: literal text between tags, tag delimiters, or a piece of an expression.
struct Token: Sendable {
    enum Kind: Sendable, Equatable {
        case text(String)
        case outputBegin
        case outputEnd
        case statementBegin
        case statementEnd
        case name(String)
        case string(String)
        case integer(Int)
        case double(Double)
        case symbol(String)
        case end
    }

    var kind: Kind
    var location: SourceLocation
}

/// Splits template source into tokens with the whitespace rules transformers configures: `trim_blocks` (drop the
/// first newline after a statement or comment), `lstrip_blocks` (drop spaces and tabs before a statement or comment
/// that starts a line), `-` and `+` on tags, and one trailing newline of the source removed.
struct TemplateLexer {
    private let scalars: [Unicode.Scalar]
    private var lineStarts: [Int] = [0]
    private var position = 0
    private var tokens: [Token] = []
    /// Whether the previous tag ended with a newline, so text after it starts a line (for `lstrip_blocks`).
    private var lineStarting = true

    private static let symbols2: Set<String> = ["**", "//", "==", "!=", ">=", "<="]
    private static let symbols1: Set<Unicode.Scalar> = [
        "+", "-", "/", "*", "%", "~", "[", "]", "(", ")", "{", "}", ">", "<", "=", ".", ":", "|", ",", ";",
    ]

    init(source: String) {
        // Jinja treats \r\n and \r as \n everywhere, and drops one trailing newline (keep_trailing_newline=False).
        var normalized: [Unicode.Scalar] = []
        normalized.reserveCapacity(source.unicodeScalars.count)
        var previousWasCarriageReturn = false
        for scalar in source.unicodeScalars {
            if scalar == "\r" {
                normalized.append("\n")
                previousWasCarriageReturn = true
                continue
            }
            if scalar == "\n" && previousWasCarriageReturn {
                previousWasCarriageReturn = false
                continue
            }
            previousWasCarriageReturn = false
            normalized.append(scalar)
        }
        if normalized.last == "\n" { normalized.removeLast() }
        scalars = normalized
        for (index, scalar) in scalars.enumerated() where scalar == "\n" {
            lineStarts.append(index + 1)
        }
    }

    /// The tokens of the whole source, ending with `.end`.
    static func tokenize(_ source: String) throws(TemplateError) -> [Token] {
        var lexer = TemplateLexer(source: source)
        try lexer.run()
        return lexer.tokens
    }

    func location(of offset: Int) -> SourceLocation {
        var low = 0
        var high = lineStarts.count - 1
        while low < high {
            let middle = (low + high + 1) / 2
            if lineStarts[middle] <= offset { low = middle } else { high = middle - 1 }
        }
        return SourceLocation(line: low + 1, column: offset - lineStarts[low] + 1)
    }

    private func error(_ message: String, at offset: Int) -> TemplateError {
        let place = location(of: offset)
        return TemplateError(message: message, line: place.line, column: place.column)
    }

    private func starts(with text: String, at offset: Int) -> Bool {
        var index = offset
        for scalar in text.unicodeScalars {
            guard index < scalars.count, scalars[index] == scalar else { return false }
            index += 1
        }
        return true
    }

    private mutating func run() throws(TemplateError) {
        while position < scalars.count {
            guard let (tagStart, opener) = nextTag(from: position) else {
                appendText(String(String.UnicodeScalarView(scalars[position...])), at: position)
                position = scalars.count
                break
            }
            var afterOpener = tagStart + 2
            var sign: Unicode.Scalar?
            if afterOpener < scalars.count, scalars[afterOpener] == "-" || scalars[afterOpener] == "+" {
                sign = scalars[afterOpener]
                afterOpener += 1
            }
            var text = Array(scalars[position..<tagStart])
            if sign == "-" {
                while let last = text.last, PythonText.isSpace(last) { text.removeLast() }
            } else if sign != "+" && opener != "{{" {
                // lstrip_blocks: whitespace between the start of the line and a statement or comment goes.
                let lineStart = (text.lastIndex(of: "\n").map { $0 + 1 }) ?? 0
                if lineStart > 0 || lineStarting, lineStart < text.count,
                    text[lineStart...].allSatisfy({ PythonText.isSpace($0) })
                {
                    text.removeSubrange(lineStart...)
                }
            }
            appendText(String(String.UnicodeScalarView(text)), at: position)
            lineStarting = false
            switch opener {
            case "{#":
                position = try skipComment(from: afterOpener, openedAt: tagStart)
            case "{{":
                tokens.append(Token(kind: .outputBegin, location: location(of: tagStart)))
                position = try lexExpression(from: afterOpener, isStatement: false, openedAt: tagStart)
            default:
                if let end = try rawBlockEnd(from: afterOpener, openedAt: tagStart) {
                    position = end
                } else {
                    tokens.append(Token(kind: .statementBegin, location: location(of: tagStart)))
                    position = try lexExpression(from: afterOpener, isStatement: true, openedAt: tagStart)
                }
            }
        }
        tokens.append(Token(kind: .end, location: location(of: scalars.count)))
    }

    private mutating func appendText(_ text: String, at offset: Int) {
        guard !text.isEmpty else { return }
        tokens.append(Token(kind: .text(text), location: location(of: offset)))
    }

    private func nextTag(from start: Int) -> (Int, String)? {
        var index = start
        while index + 1 < scalars.count {
            if scalars[index] == "{" {
                switch scalars[index + 1] {
                case "{": return (index, "{{")
                case "%": return (index, "{%")
                case "#": return (index, "{#")
                default: break
                }
            }
            index += 1
        }
        return nil
    }

    /// Consumes the end of a statement or comment tag: `+%}` keeps what follows, `-%}` eats all whitespace after,
    /// and a plain `%}` eats one newline (trim_blocks). Returns the offset after it.
    private mutating func consumeBlockClose(at offset: Int, closer: String) -> Int? {
        if starts(with: "+" + closer, at: offset) {
            return offset + 3
        }
        if starts(with: "-" + closer, at: offset) {
            var index = offset + 3
            while index < scalars.count, PythonText.isSpace(scalars[index]) { index += 1 }
            lineStarting = index > offset + 3 && scalars[index - 1] == "\n"
            return index
        }
        if starts(with: closer, at: offset) {
            if offset + 2 < scalars.count, scalars[offset + 2] == "\n" {
                lineStarting = true
                return offset + 3
            }
            return offset + 2
        }
        return nil
    }

    private mutating func skipComment(from start: Int, openedAt tagStart: Int) throws(TemplateError) -> Int {
        var index = start
        while index < scalars.count {
            if let end = consumeBlockClose(at: index, closer: "#}") { return end }
            index += 1
        }
        throw error("missing end of comment tag", at: tagStart)
    }

    /// Handles `{% raw %}...{% endraw %}`: its content is emitted as text, untouched. Returns nil for other tags.
    private mutating func rawBlockEnd(from start: Int, openedAt tagStart: Int) throws(TemplateError) -> Int? {
        var index = skipSpaces(from: start)
        guard starts(with: "raw", at: index) else { return nil }
        index = skipSpaces(from: index + 3)
        guard let contentStart = consumeBlockClose(at: index, closer: "%}") else { return nil }
        var search = contentStart
        while let (candidate, opener) = nextTag(from: search) {
            search = candidate + 2
            guard opener == "{%" else { continue }
            var inner = candidate + 2
            let sign: Unicode.Scalar? =
                inner < scalars.count && "-+".unicodeScalars.contains(scalars[inner])
                ? scalars[inner] : nil
            if sign != nil { inner += 1 }
            inner = skipSpaces(from: inner)
            guard starts(with: "endraw", at: inner) else { continue }
            inner = skipSpaces(from: inner + 6)
            lineStarting = false
            guard let end = consumeBlockClose(at: inner, closer: "%}") else { continue }
            var text = Array(scalars[contentStart..<candidate])
            if sign == "-" {
                while let last = text.last, PythonText.isSpace(last) { text.removeLast() }
            }
            appendText(String(String.UnicodeScalarView(text)), at: contentStart)
            return end
        }
        throw error("missing end of raw directive", at: tagStart)
    }

    private func skipSpaces(from start: Int) -> Int {
        var index = start
        while index < scalars.count, PythonText.isSpace(scalars[index]) { index += 1 }
        return index
    }

    private mutating func lexExpression(
        from start: Int, isStatement: Bool, openedAt tagStart: Int
    ) throws(TemplateError) -> Int {
        var index = start
        var brackets: [Unicode.Scalar] = []
        while true {
            if brackets.isEmpty {
                if isStatement, let end = consumeBlockClose(at: index, closer: "%}") {
                    tokens.append(Token(kind: .statementEnd, location: location(of: index)))
                    return end
                }
                if !isStatement {
                    if starts(with: "-}}", at: index) {
                        tokens.append(Token(kind: .outputEnd, location: location(of: index)))
                        let end = skipSpaces(from: index + 3)
                        lineStarting = end > index + 3 && scalars[end - 1] == "\n"
                        return end
                    }
                    if starts(with: "}}", at: index) {
                        tokens.append(Token(kind: .outputEnd, location: location(of: index)))
                        return index + 2
                    }
                }
            }
            guard index < scalars.count else {
                throw error("unexpected end of template: the tag opened here is not closed", at: tagStart)
            }
            let scalar = scalars[index]
            if PythonText.isSpace(scalar) {
                index += 1
                continue
            }
            let here = location(of: index)
            if scalar == "'" || scalar == "\"" {
                let (value, end) = try lexString(from: index)
                tokens.append(Token(kind: .string(value), location: here))
                index = end
            } else if scalar.properties.numericType != nil && scalar.isASCII {
                let (kind, end) = try lexNumber(from: index)
                tokens.append(Token(kind: kind, location: here))
                index = end
            } else if scalar == "_" || scalar.properties.isXIDStart {
                var end = index + 1
                while end < scalars.count, scalars[end] == "_" || scalars[end].properties.isXIDContinue { end += 1 }
                tokens.append(
                    Token(kind: .name(String(String.UnicodeScalarView(scalars[index..<end]))), location: here))
                index = end
            } else if index + 1 < scalars.count,
                Self.symbols2.contains(String(String.UnicodeScalarView(scalars[index...index + 1])))
            {
                tokens.append(
                    Token(kind: .symbol(String(String.UnicodeScalarView(scalars[index...index + 1]))), location: here))
                index += 2
            } else if Self.symbols1.contains(scalar) {
                switch scalar {
                case "(": brackets.append(")")
                case "[": brackets.append("]")
                case "{": brackets.append("}")
                case ")", "]", "}":
                    guard let expected = brackets.popLast() else {
                        throw error("unexpected '\(scalar)'", at: index)
                    }
                    if expected != scalar {
                        throw error("unexpected '\(scalar)', expected '\(expected)'", at: index)
                    }
                default: break
                }
                tokens.append(Token(kind: .symbol(String(scalar)), location: here))
                index += 1
            } else {
                throw error("unexpected character '\(scalar)'", at: index)
            }
        }
    }

    private func lexString(from start: Int) throws(TemplateError) -> (String, Int) {
        let quote = scalars[start]
        var index = start + 1
        var value = String.UnicodeScalarView()
        while index < scalars.count {
            let scalar = scalars[index]
            if scalar == quote { return (String(value), index + 1) }
            if scalar == "\\", index + 1 < scalars.count {
                index += 1
                index = try unescape(at: index, into: &value)
                continue
            }
            value.append(scalar)
            index += 1
        }
        throw error("unterminated string", at: start)
    }

    /// Decodes one backslash escape the way Python's `unicode_escape` does (what Jinja uses for string literals).
    private func unescape(at offset: Int, into value: inout String.UnicodeScalarView) throws(TemplateError) -> Int {
        let scalar = scalars[offset]
        let simple: [Unicode.Scalar: Unicode.Scalar] = [
            "n": "\n", "t": "\t", "r": "\r", "\\": "\\", "'": "'", "\"": "\"", "a": "\u{07}", "b": "\u{08}",
            "f": "\u{0C}", "v": "\u{0B}", "0": "\u{00}", "\n": "\n",
        ]
        let hexLength: [Unicode.Scalar: Int] = ["x": 2, "u": 4, "U": 8]
        if scalar == "\n" { return offset + 1 }
        if let length = hexLength[scalar] {
            guard offset + length < scalars.count,
                let code = UInt32(String(String.UnicodeScalarView(scalars[offset + 1...offset + length])), radix: 16),
                let decoded = Unicode.Scalar(code)
            else { throw error("invalid \\\(scalar) escape in string", at: offset - 1) }
            value.append(decoded)
            return offset + length + 1
        }
        if let decoded = simple[scalar] {
            value.append(decoded)
            return offset + 1
        }
        value.append("\\")
        value.append(scalar)
        return offset + 1
    }

    private func lexNumber(from start: Int) throws(TemplateError) -> (Token.Kind, Int) {
        var index = start
        func digits() {
            while index < scalars.count, scalars[index].isASCII,
                scalars[index].properties.numericType != nil || scalars[index] == "_"
            {
                index += 1
            }
        }
        digits()
        var isFloat = false
        if index + 1 < scalars.count, scalars[index] == ".", scalars[index + 1].isASCII,
            scalars[index + 1].properties.numericType != nil
        {
            isFloat = true
            index += 1
            digits()
        }
        if index < scalars.count, scalars[index] == "e" || scalars[index] == "E" {
            var probe = index + 1
            if probe < scalars.count, scalars[probe] == "+" || scalars[probe] == "-" { probe += 1 }
            if probe < scalars.count, scalars[probe].isASCII, scalars[probe].properties.numericType != nil {
                isFloat = true
                index = probe
                digits()
            }
        }
        let text = String(String.UnicodeScalarView(scalars[start..<index])).filter { $0 != "_" }
        if isFloat {
            guard let value = Double(text) else { throw error("invalid number '\(text)'", at: start) }
            return (.double(value), index)
        }
        guard let value = Int(text) else { throw error("integer '\(text)' is too large", at: start) }
        return (.integer(value), index)
    }
}
