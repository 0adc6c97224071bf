import OrderedCollections

/// Jinja's built-in filters that chat templates use, plus transformers' `tojson`.
enum TemplateFilters {
    static let names: Set<String> = [
        "abs", "capitalize", "count", "d", "default", "dictsort", "e", "escape", "first", "float", "indent", "int",
        "items", "join", "last", "length", "list", "lower", "map", "max", "min", "reject", "rejectattr", "replace",
        "reverse", "round", "safe", "select", "selectattr", "sort", "string", "sum", "title", "tojson", "trim",
        "unique", "upper", "wordcount",
    ]

    static func apply(
        _ name: String, to value: TemplateValue, with arguments: CallArguments, renderer: TemplateRenderer
    ) throws(TemplateError) -> TemplateValue {
        switch name {
        case "default", "d":
            let fallback = arguments.value(0, "default_value") ?? .string("")
            let boolean = arguments.value(1, "boolean")?.isTruthy ?? false
            return value.isUndefined || (boolean && !value.isTruthy) ? fallback : value
        case "length", "count":
            return .integer(try length(of: value))
        case "first":
            return try value.iterated().first ?? .undefined("No first item, sequence was empty.")
        case "last":
            return try value.iterated().last ?? .undefined("No last item, sequence was empty.")
        case "list":
            return .list(try value.iterated())
        case "items":
            return try items(of: value)
        case "join":
            let separator = try (arguments.value(0, "d") ?? .string("")).pythonString()
            var items = try value.iterated()
            if let attribute = arguments.value(1, "attribute") {
                items = try items.map { (item) throws(TemplateError) in try lookup(attribute, in: item) }
            }
            var parts: [String] = []
            for item in items { parts.append(try item.pythonString()) }
            return .string(parts.joined(separator: separator))
        case "tojson":
            return try toJSON(value, arguments)
        case "string":
            return .string(try value.pythonString())
        case "lower", "upper", "capitalize", "title", "trim", "escape", "e", "wordcount", "indent", "replace":
            return try text(name, try value.pythonString(), arguments)
        case "safe":
            return value
        case "int":
            return integer(value, fallback: arguments.value(0, "default") ?? .integer(0))
        case "float":
            return double(value, fallback: arguments.value(0, "default") ?? .double(0))
        case "abs":
            switch value.numeric {
            case .integer(let number) where number != Int.min: return .integer(Swift.abs(number))
            case .double(let number): return .double(Swift.abs(number))
            default: throw renderError("bad operand type for abs(): '\(value.typeName)'")
            }
        case "round":
            return try round(value, arguments)
        case "reverse":
            if case .string(let text) = value {
                return .string(String(String.UnicodeScalarView(text.unicodeScalars.reversed())))
            }
            return .list(try value.iterated().reversed())
        case "sum":
            var total = arguments.value(1, "start") ?? .integer(0)
            for item in try value.iterated() {
                let term =
                    try arguments.value(0, "attribute").map { (attribute) throws(TemplateError) in
                        try lookup(attribute, in: item)
                    } ?? item
                total = try Arithmetic.apply(.add, total, term)
            }
            return total
        case "unique", "sort", "min", "max", "dictsort":
            return try ordered(name, value, arguments)
        case "map", "select", "reject", "selectattr", "rejectattr":
            return try sequence(name, value, arguments, renderer: renderer)
        default:
            throw renderError("no filter named '\(name)'")
        }
    }

    static func length(of value: TemplateValue) throws(TemplateError) -> Int {
        switch value {
        case .undefined: return 0
        case .string(let text): return text.unicodeScalars.count
        case .list(let items): return items.count
        case .dictionary(let members): return members.count
        default: throw renderError("object of type '\(value.typeName)' has no len()")
        }
    }

    static func items(of value: TemplateValue) throws(TemplateError) -> TemplateValue {
        switch value {
        case .undefined: return .list([])
        case .dictionary(let members): return .list(members.map { .list([.string($0.key), $0.value]) })
        default: throw renderError("Can only get item pairs from a mapping.")
        }
    }

    /// Jinja's attribute path for `map`, `selectattr`, `sum` and `join`: dotted names, numbers index lists.
    private static func lookup(_ path: TemplateValue, in item: TemplateValue) throws(TemplateError) -> TemplateValue {
        guard case .string(let text) = path else { return try TemplateRenderer.item(path, of: item) }
        var current = item
        for part in text.split(separator: ".", omittingEmptySubsequences: false) {
            let key: TemplateValue = Int(part).map { .integer($0) } ?? .string(String(part))
            current = try TemplateRenderer.item(key, of: current)
        }
        return current
    }

    private static func toJSON(_ value: TemplateValue, _ arguments: CallArguments) throws(TemplateError)
        -> TemplateValue
    {
        // transformers' signature: tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False).
        let ensureASCII = arguments.value(0, "ensure_ascii")?.isTruthy ?? false
        var indent: String?
        switch arguments.value(1, "indent") {
        case .integer(let width)?: indent = String(repeating: " ", count: Swift.max(width, 0))
        case .string(let text)?: indent = text
        default: indent = nil
        }
        var separators: (item: String, key: String)?
        if case .list(let pair)? = arguments.value(2, "separators"), pair.count == 2,
            case .string(let item) = pair[0], case .string(let key) = pair[1]
        {
            separators = (item, key)
        }
        let sortKeys = arguments.value(3, "sort_keys")?.isTruthy ?? false
        let encoder = PythonJSON(indent: indent, separators: separators, sortKeys: sortKeys, ensureASCII: ensureASCII)
        return .string(encoder.dumps(try value.jsonValue()))
    }

    private static func text(_ name: String, _ text: String, _ arguments: CallArguments) throws(TemplateError)
        -> TemplateValue
    {
        switch name {
        case "lower": return .string(PythonText.lowercased(text))
        case "upper": return .string(PythonText.uppercased(text))
        case "capitalize": return .string(PythonText.capitalized(text))
        case "title": return .string(PythonText.jinjaTitled(text))
        case "trim":
            let characters = try arguments.value(0, "chars").flatMap { (chars) throws(TemplateError) -> String? in
                if case .none = chars { return nil }
                return try chars.pythonString()
            }
            return .string(PythonText.strip(text, characters: characters, leading: true, trailing: true))
        case "wordcount":
            return .integer(PythonText.split(text, separator: nil, maxSplits: -1).count)
        case "replace":
            let old = try (arguments.value(0, "old") ?? .string("")).pythonString()
            let new = try (arguments.value(1, "new") ?? .string("")).pythonString()
            var limit = -1
            if case .integer(let count)? = arguments.value(2, "count")?.numeric { limit = count }
            return .string(PythonText.replace(text, old, with: new, count: limit))
        case "indent":
            return .string(try indent(text, arguments))
        default:
            var out = ""
            for character in text.unicodeScalars {
                switch character {
                case "&": out += "&amp;"
                case "<": out += "&lt;"
                case ">": out += "&gt;"
                case "\"": out += "&#34;"
                case "'": out += "&#39;"
                default: out.unicodeScalars.append(character)
                }
            }
            return .string(out)
        }
    }

    private static func indent(_ text: String, _ arguments: CallArguments) throws(TemplateError) -> String {
        var indentation = "    "
        switch arguments.value(0, "width") {
        case .string(let custom)?: indentation = custom
        case .integer(let width)?: indentation = String(repeating: " ", count: Swift.max(width, 0))
        default: break
        }
        let first = arguments.value(1, "first")?.isTruthy ?? false
        let blank = arguments.value(2, "blank")?.isTruthy ?? false
        // Jinja appends a newline before splitting so that a trailing newline is kept.
        var lines = PythonText.splitLines(text + "\n")
        var result: String
        if blank {
            result = lines.joined(separator: "\n" + indentation)
        } else {
            result = lines.isEmpty ? "" : lines.removeFirst()
            if !lines.isEmpty {
                result += "\n" + lines.map { $0.isEmpty ? $0 : indentation + $0 }.joined(separator: "\n")
            }
        }
        return first ? indentation + result : result
    }

    private static func integer(_ value: TemplateValue, fallback: TemplateValue) -> TemplateValue {
        switch value {
        case .bool(let flag): return .integer(flag ? 1 : 0)
        case .integer: return value
        case .double(let number):
            guard number.isFinite, Swift.abs(number) < 9.2e18 else { return fallback }
            return .integer(Int(number))
        case .string(let text):
            let trimmed = PythonText.strip(text, characters: nil, leading: true, trailing: true)
                .filter { $0 != "_" }
            if let number = Int(trimmed) { return .integer(number) }
            if let number = Double(trimmed), number.isFinite, Swift.abs(number) < 9.2e18 {
                return .integer(Int(number))
            }
            return fallback
        default:
            return fallback
        }
    }

    private static func double(_ value: TemplateValue, fallback: TemplateValue) -> TemplateValue {
        switch value {
        case .bool, .integer, .double: return .double(value.numeric?.doubleValue ?? 0)
        case .string(let text):
            let trimmed = PythonText.strip(text, characters: nil, leading: true, trailing: true)
            return Double(trimmed).map { .double($0) } ?? fallback
        default:
            return fallback
        }
    }

    private static func round(_ value: TemplateValue, _ arguments: CallArguments) throws(TemplateError)
        -> TemplateValue
    {
        guard let number = value.numeric else { throw renderError("type \(value.typeName) doesn't define __round__") }
        var precision = 0
        if case .integer(let digits)? = arguments.value(0, "precision")?.numeric { precision = digits }
        let method = try (arguments.value(1, "method") ?? .string("common")).pythonString()
        let rule: FloatingPointRoundingRule
        switch method {
        case "common": rule = .toNearestOrEven
        case "ceil": rule = .up
        case "floor": rule = .down
        default: throw renderError("method must be common, ceil or floor")
        }
        var scale = 1.0
        for _ in 0..<Swift.min(Swift.max(precision, 0), 300) { scale *= 10 }
        if case .integer(let whole) = number, method == "common" { return .integer(whole) }
        return .double((number.doubleValue * scale).rounded(rule) / scale)
    }

    /// The sort key Jinja uses: strings lower-cased unless the filter is case-sensitive.
    private static func sortKey(_ value: TemplateValue, caseSensitive: Bool) -> TemplateValue {
        if !caseSensitive, case .string(let text) = value { return .string(PythonText.lowercased(text)) }
        return value
    }

    private static func ordered(_ name: String, _ value: TemplateValue, _ arguments: CallArguments)
        throws(TemplateError) -> TemplateValue
    {
        if name == "dictsort" {
            guard case .list(let pairs) = try items(of: value) else { return .list([]) }
            let caseSensitive = arguments.value(0, "case_sensitive")?.isTruthy ?? false
            let byValue = try (arguments.value(1, "by") ?? .string("key")).pythonString() == "value"
            let reverse = arguments.value(2, "reverse")?.isTruthy ?? false
            return .list(
                try sorted(pairs, reverse: reverse) { (pair) throws(TemplateError) in
                    guard case .list(let both) = pair else { return pair }
                    return sortKey(both[byValue ? 1 : 0], caseSensitive: caseSensitive)
                })
        }
        let items = try value.iterated()
        let caseSensitive: Bool
        let attribute: TemplateValue?
        var reverse = false
        if name == "sort" {
            reverse = arguments.value(0, "reverse")?.isTruthy ?? false
            caseSensitive = arguments.value(1, "case_sensitive")?.isTruthy ?? false
            attribute = arguments.value(2, "attribute")
        } else {
            caseSensitive = arguments.value(0, "case_sensitive")?.isTruthy ?? false
            attribute = arguments.value(1, "attribute")
        }
        let key = { (item: TemplateValue) throws(TemplateError) -> TemplateValue in
            let field = try attribute.map { (path) throws(TemplateError) in try lookup(path, in: item) } ?? item
            return sortKey(field, caseSensitive: caseSensitive)
        }
        switch name {
        case "unique":
            var seen: [TemplateValue] = []
            var kept: [TemplateValue] = []
            for item in items {
                let identity = try key(item)
                var duplicate = false
                for other in seen where try other.isEqual(to: identity) { duplicate = true }
                if duplicate { continue }
                seen.append(identity)
                kept.append(item)
            }
            return .list(kept)
        case "sort":
            return .list(try sorted(items, reverse: reverse, by: key))
        default:
            let all = try sorted(items, reverse: name == "max", by: key)
            return all.first ?? .undefined("No aggregated item, sequence was empty.")
        }
    }

    /// A stable sort by key with Python's ordering (an insertion sort: template lists are short).
    private static func sorted(
        _ items: [TemplateValue], reverse: Bool, by key: (TemplateValue) throws(TemplateError) -> TemplateValue
    ) throws(TemplateError) -> [TemplateValue] {
        guard items.count <= 10_000 else { throw renderError("sequence is too long to sort") }
        var keyed: [(key: TemplateValue, item: TemplateValue)] = []
        for item in items { keyed.append((try key(item), item)) }
        var result: [(key: TemplateValue, item: TemplateValue)] = []
        for entry in keyed {
            var position = result.count
            while position > 0 {
                let order = try result[position - 1].key.compare(to: entry.key)
                if reverse ? order >= 0 : order <= 0 { break }
                position -= 1
            }
            result.insert(entry, at: position)
        }
        return result.map(\.item)
    }

    private static func sequence(
        _ name: String, _ value: TemplateValue, _ arguments: CallArguments, renderer: TemplateRenderer
    ) throws(TemplateError) -> TemplateValue {
        let items = try value.iterated()
        if name == "map" {
            if let attribute = arguments.keywords["attribute"] {
                let fallback = arguments.keywords["default"]
                return .list(
                    try items.map { (item) throws(TemplateError) in
                        let field = try lookup(attribute, in: item)
                        return field.isUndefined ? (fallback ?? field) : field
                    })
            }
            guard case .string(let filter)? = arguments.positional.first, names.contains(filter) else {
                throw renderError("map requires a filter name or an attribute")
            }
            let rest = CallArguments(positional: Array(arguments.positional.dropFirst()), keywords: arguments.keywords)
            return .list(
                try items.map { (item) throws(TemplateError) in
                    try renderer.applyFilter(filter, to: item, with: rest)
                })
        }
        let byAttribute = name.hasSuffix("attr")
        let keep = name.hasPrefix("select")
        var remaining = arguments.positional
        var attribute: TemplateValue?
        if byAttribute {
            guard !remaining.isEmpty else { throw renderError("\(name) requires an attribute name") }
            attribute = remaining.removeFirst()
        }
        var testName: String?
        if !remaining.isEmpty {
            guard case .string(let test) = remaining.removeFirst(), TemplateTests.names.contains(test) else {
                throw renderError("\(name) requires a test name")
            }
            testName = test
        }
        let testArguments = CallArguments(positional: remaining, keywords: [:])
        var kept: [TemplateValue] = []
        for item in items {
            let subject = try attribute.map { (path) throws(TemplateError) in try lookup(path, in: item) } ?? item
            let passed =
                try testName.map { (test) throws(TemplateError) in
                    try TemplateTests.apply(test, to: subject, with: testArguments)
                } ?? subject.isTruthy
            if passed == keep { kept.append(item) }
        }
        return .list(kept)
    }
}

/// Jinja's built-in tests (`x is defined`, `x is string`, ...).
enum TemplateTests {
    static let names: Set<String> = [
        "boolean", "callable", "defined", "divisibleby", "eq", "equalto", "escaped", "even", "false", "float", "ge",
        "greaterthan", "gt", "in", "integer", "iterable", "le", "lessthan", "lower", "lt", "mapping", "ne", "none",
        "number", "odd", "sameas", "sequence", "string", "true", "undefined", "upper",
    ]

    static func apply(_ name: String, to value: TemplateValue, with arguments: CallArguments) throws(TemplateError)
        -> Bool
    {
        let other = arguments.value(0, "other") ?? .undefined("missing test argument")
        switch name {
        case "defined": return !value.isUndefined
        case "undefined": return value.isUndefined
        case "none": if case .none = value { return true } else { return false }
        case "boolean": if case .bool = value { return true } else { return false }
        case "true": if case .bool(true) = value { return true } else { return false }
        case "false": if case .bool(false) = value { return true } else { return false }
        case "integer": if case .integer = value { return true } else { return false }
        case "float": if case .double = value { return true } else { return false }
        case "number": return value.numeric != nil
        case "string": return value.stringValue != nil
        case "mapping": if case .dictionary = value { return true } else { return false }
        case "callable": if case .callable = value { return true } else { return false }
        case "escaped": return false
        case "iterable", "sequence":
            switch value {
            case .undefined, .string, .list, .dictionary: return true
            default: return false
            }
        case "lower":
            let text = try value.pythonString()
            return PythonText.lowercased(text) == text && PythonText.uppercased(text) != text
        case "upper":
            let text = try value.pythonString()
            return PythonText.uppercased(text) == text && PythonText.lowercased(text) != text
        case "odd", "even":
            guard case .integer(let number)? = value.numeric else {
                throw renderError("test '\(name)' needs an integer, not \(value.typeName)")
            }
            return (number & 1 == 1) == (name == "odd")
        case "divisibleby":
            guard case .integer(let number)? = value.numeric, case .integer(let divisor)? = other.numeric, divisor != 0
            else { throw renderError("divisibleby needs two integers, the divisor non-zero") }
            return number % divisor == 0
        case "sameas":
            switch (value, other) {
            case (.none, .none): return true
            case (.bool(let a), .bool(let b)): return a == b
            // CPython shares equal small ints and interned strings, so `is` holds for equal literals.
            case (.integer(let a), .integer(let b)): return a == b
            case (.string(let a), .string(let b)): return a == b
            case (.namespace(let a), .namespace(let b)): return a === b
            default: return false
            }
        case "in": return try Arithmetic.contains(value, in: other)
        case "eq", "equalto": return try Arithmetic.compare(.equal, value, other)
        case "ne": return try Arithmetic.compare(.notEqual, value, other)
        case "lt", "lessthan": return try Arithmetic.compare(.less, value, other)
        case "le": return try Arithmetic.compare(.lessOrEqual, value, other)
        case "gt", "greaterthan": return try Arithmetic.compare(.greater, value, other)
        case "ge": return try Arithmetic.compare(.greaterOrEqual, value, other)
        default: throw renderError("no test named '\(name)'")
        }
    }
}
