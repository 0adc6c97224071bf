import OrderedCollections

/// The Python methods templates call on strings, dicts and lists. Methods that would change a list or dict fail,
/// as they do in the immutable sandbox transformers renders in.
enum TemplateMethods {
    private static let stringMethods: Set<String> = [
        "capitalize", "count", "endswith", "find", "format", "isalnum", "isalpha", "isdigit", "islower", "isspace",
        "isupper", "join", "lower", "lstrip", "removeprefix", "removesuffix", "replace", "rfind", "rsplit", "rstrip",
        "split", "splitlines", "startswith", "strip", "title", "upper",
    ]
    private static let dictionaryMethods: Set<String> = ["get", "items", "keys", "values", "copy"]
    private static let listMethods: Set<String> = ["count", "index", "copy"]
    private static let mutatingDictionaryMethods: Set<String> = ["clear", "pop", "popitem", "setdefault", "update"]
    private static let mutatingListMethods: Set<String> = [
        "append", "clear", "extend", "insert", "pop", "remove", "reverse", "sort",
    ]

    static func isMethod(_ name: String, of value: TemplateValue) -> Bool {
        switch value {
        case .string: return stringMethods.contains(name)
        case .dictionary: return dictionaryMethods.contains(name) || mutatingDictionaryMethods.contains(name)
        case .list: return listMethods.contains(name) || mutatingListMethods.contains(name)
        default: return false
        }
    }

    static func call(_ name: String, on receiver: TemplateValue, with arguments: CallArguments) throws(TemplateError)
        -> TemplateValue
    {
        switch receiver {
        case .string(let text):
            return try stringMethod(name, text, arguments)
        case .dictionary(let members):
            switch name {
            case "items": return try TemplateFilters.items(of: receiver)
            case "keys": return .list(members.keys.map { .string($0) })
            case "values": return .list(Array(members.values))
            case "copy": return receiver
            case "get":
                let fallback = arguments.value(1, "default") ?? .none
                guard case .string(let key)? = arguments.positional.first else { return fallback }
                return members[key] ?? fallback
            default: throw unsafe(name, receiver)
            }
        case .list(let items):
            switch name {
            case "copy": return receiver
            case "count", "index":
                guard let needle = arguments.positional.first else { throw renderError("\(name)() takes an argument") }
                var matches: [Int] = []
                for (position, item) in items.enumerated() where try item.isEqual(to: needle) {
                    matches.append(position)
                }
                if name == "count" { return .integer(matches.count) }
                guard let first = matches.first else { throw renderError("value is not in list") }
                return .integer(first)
            default: throw unsafe(name, receiver)
            }
        default:
            throw renderError("'\(receiver.typeName)' object has no attribute '\(name)'")
        }
    }

    private static func unsafe(_ name: String, _ receiver: TemplateValue) -> TemplateError {
        renderError("access to attribute '\(name)' of '\(receiver.typeName)' object is unsafe.")
    }

    private static func optionalString(_ value: TemplateValue?) throws(TemplateError) -> String? {
        guard let value else { return nil }
        switch value {
        case .none: return nil
        case .string(let text): return text
        default: throw renderError("expected a string argument, not \(value.typeName)")
        }
    }

    private static func stringMethod(_ name: String, _ text: String, _ arguments: CallArguments)
        throws(TemplateError) -> TemplateValue
    {
        switch name {
        case "strip", "lstrip", "rstrip":
            let characters = try optionalString(arguments.value(0, "chars"))
            return .string(
                PythonText.strip(text, characters: characters, leading: name != "rstrip", trailing: name != "lstrip"))
        case "upper": return .string(PythonText.uppercased(text))
        case "lower": return .string(PythonText.lowercased(text))
        case "title": return .string(PythonText.titled(text))
        case "capitalize": return .string(PythonText.capitalized(text))
        case "startswith", "endswith":
            let candidates: [TemplateValue]
            switch arguments.positional.first {
            case .list(let options)?: candidates = options
            case let option?: candidates = [option]
            case nil: throw renderError("\(name)() takes at least 1 argument")
            }
            for candidate in candidates {
                guard case .string(let affix) = candidate else {
                    throw renderError("\(name) first arg must be str or a tuple of str, not \(candidate.typeName)")
                }
                let matches =
                    name == "startswith"
                    ? text.unicodeScalars.starts(with: affix.unicodeScalars)
                    : text.unicodeScalars.reversed().starts(with: affix.unicodeScalars.reversed())
                if matches { return .bool(true) }
            }
            return .bool(false)
        case "split", "rsplit":
            let separator = try optionalString(arguments.value(0, "sep"))
            if separator == "" { throw renderError("empty separator") }
            var limit = -1
            if case .integer(let count)? = arguments.value(1, "maxsplit")?.numeric { limit = count }
            var parts: [String]
            if name == "rsplit" && limit >= 0 {
                parts = PythonText.split(text, separator: separator, maxSplits: -1)
                if parts.count > limit + 1 {
                    let head = parts.count - limit
                    parts = [parts[..<head].joined(separator: separator ?? " ")] + parts[head...]
                }
            } else {
                parts = PythonText.split(text, separator: separator, maxSplits: limit)
            }
            return .list(parts.map { .string($0) })
        case "splitlines":
            return .list(PythonText.splitLines(text).map { .string($0) })
        case "replace":
            guard case .string(let old)? = arguments.value(0, "old"), case .string(let new)? = arguments.value(1, "new")
            else { throw renderError("replace() arguments must be strings") }
            var limit = -1
            if case .integer(let count)? = arguments.value(2, "count")?.numeric { limit = count }
            return .string(PythonText.replace(text, old, with: new, count: limit))
        case "find", "rfind", "count":
            guard case .string(let needle)? = arguments.positional.first else {
                throw renderError("\(name)() argument must be a string")
            }
            if name == "count" { return .integer(PythonText.count(needle, in: text)) }
            return .integer(PythonText.find(needle, in: text, fromEnd: name == "rfind"))
        case "removeprefix", "removesuffix":
            guard case .string(let affix)? = arguments.positional.first else {
                throw renderError("\(name)() argument must be a string")
            }
            let scalars = Array(text.unicodeScalars)
            let pattern = Array(affix.unicodeScalars)
            if name == "removeprefix", scalars.starts(with: pattern) {
                return .string(String(String.UnicodeScalarView(scalars.dropFirst(pattern.count))))
            }
            if name == "removesuffix", !pattern.isEmpty, scalars.reversed().starts(with: pattern.reversed()) {
                return .string(String(String.UnicodeScalarView(scalars.dropLast(pattern.count))))
            }
            return .string(text)
        case "join":
            var parts: [String] = []
            for item in try (arguments.positional.first ?? .list([])).iterated() {
                guard case .string(let part) = item else {
                    throw renderError("sequence item: expected str instance, \(item.typeName) found")
                }
                parts.append(part)
            }
            return .string(parts.joined(separator: text))
        case "format":
            return .string(try format(text, arguments))
        default:
            return .bool(classify(name, text))
        }
    }

    /// `isdigit`, `isalpha` and friends, with Python's rule that an empty string is none of them.
    private static func classify(_ name: String, _ text: String) -> Bool {
        let scalars = text.unicodeScalars
        guard !scalars.isEmpty else { return false }
        switch name {
        case "isdigit":
            return scalars.allSatisfy { $0.properties.numericType == .decimal || $0.properties.numericType == .digit }
        case "isalpha": return scalars.allSatisfy { $0.properties.isAlphabetic }
        case "isalnum": return scalars.allSatisfy { $0.properties.isAlphabetic || $0.properties.numericType != nil }
        case "isspace": return scalars.allSatisfy(PythonText.isSpace)
        case "islower":
            return scalars.contains { $0.properties.isCased } && PythonText.lowercased(text) == text
        default:
            return scalars.contains { $0.properties.isCased } && PythonText.uppercased(text) == text
        }
    }

    /// `str.format` with `{}`, `{0}` and `{name}` fields; format specifications are not supported.
    private static func format(_ text: String, _ arguments: CallArguments) throws(TemplateError) -> String {
        var out = ""
        var scalars = Array(text.unicodeScalars)[...]
        var automatic = 0
        while let scalar = scalars.popFirst() {
            if scalar == "}" {
                guard scalars.first == "}" else { throw renderError("Single '}' encountered in format string") }
                scalars.removeFirst()
                out += "}"
                continue
            }
            guard scalar == "{" else {
                out.unicodeScalars.append(scalar)
                continue
            }
            if scalars.first == "{" {
                scalars.removeFirst()
                out += "{"
                continue
            }
            var field = ""
            while let next = scalars.popFirst(), next != "}" { field.unicodeScalars.append(next) }
            if field.contains(":") || field.contains("!") || field.contains(".") || field.contains("[") {
                throw renderError("format fields with conversions or specifications are not supported")
            }
            let value: TemplateValue?
            if field.isEmpty {
                value = automatic < arguments.positional.count ? arguments.positional[automatic] : nil
                automatic += 1
            } else if let position = Int(field) {
                value = position < arguments.positional.count ? arguments.positional[position] : nil
            } else {
                value = arguments.keywords[field]
            }
            guard let value else { throw renderError("format field '\(field)' has no argument") }
            out += try value.pythonString()
        }
        return out
    }
}

/// The global functions of transformers' chat-template environment.
enum TemplateGlobals {
    static func call(_ name: String, with arguments: CallArguments) throws(TemplateError) -> TemplateValue {
        switch name {
        case "raise_exception":
            let message = try (arguments.value(0, "message") ?? .string("")).pythonString()
            throw TemplateError(message: message, line: 0, column: 0)
        case "strftime_now":
            guard case .string(let format)? = arguments.value(0, "format") else {
                throw renderError("strftime_now() needs a format string")
            }
            return .string(TemplateClock.formatNow(format))
        case "namespace", "dict":
            var members = OrderedDictionary<String, TemplateValue>()
            for positional in arguments.positional {
                guard case .dictionary(let initial) = positional else {
                    throw renderError("\(name)() takes a mapping and keyword arguments")
                }
                members.merge(initial) { $1 }
            }
            members.merge(arguments.keywords) { $1 }
            return name == "dict" ? .dictionary(members) : .namespace(TemplateNamespace(members: members))
        default:
            return try range(arguments)
        }
    }

    private static func range(_ arguments: CallArguments) throws(TemplateError) -> TemplateValue {
        var bounds: [Int] = []
        for argument in arguments.positional {
            guard case .integer(let number)? = argument.numeric else {
                throw renderError("'\(argument.typeName)' object cannot be interpreted as an integer")
            }
            bounds.append(number)
        }
        let (start, stop, step): (Int, Int, Int)
        switch bounds.count {
        case 1: (start, stop, step) = (0, bounds[0], 1)
        case 2: (start, stop, step) = (bounds[0], bounds[1], 1)
        case 3: (start, stop, step) = (bounds[0], bounds[1], bounds[2])
        default: throw renderError("range expected 1 to 3 integer arguments")
        }
        guard step != 0 else { throw renderError("range() arg 3 must not be zero") }
        let (distance, overflowed) =
            step > 0
            ? stop.subtractingReportingOverflow(start)
            : start.subtractingReportingOverflow(stop)
        let magnitude = step == Int.min ? Int.max : Swift.abs(step)
        let span = distance <= 0 ? 0 : (distance - 1) / magnitude + 1
        guard !overflowed, span <= TemplateRenderer.maximumRange else {
            throw renderError(
                "Range too big. The sandbox blocks ranges larger than MAX_RANGE (\(TemplateRenderer.maximumRange)).")
        }
        return .list(Swift.stride(from: start, to: stop, by: step).map { .integer($0) })
    }
}
