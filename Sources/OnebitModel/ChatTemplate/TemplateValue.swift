import OrderedCollections

/// The mutable object `namespace()` returns: the one value a template may change from inside a loop.
final class TemplateNamespace {
    var members: OrderedDictionary<String, TemplateValue>

    init(members: OrderedDictionary<String, TemplateValue>) {
        self.members = members
    }
}

/// Something a template can call: a global function, a method bound to its receiver, or a macro.
final class TemplateCallable {
    enum Kind {
        case global(String)
        case method(receiver: TemplateValue, name: String)
        case macro(MacroDefinition)
        /// `loop.cycle`, which picks among its arguments by the iteration's position.
        case cycle(index: Int)
    }

    let kind: Kind

    init(_ kind: Kind) {
        self.kind = kind
    }
}

/// A value while rendering, modelled on the Python objects Jinja sees (transformers passes messages as dicts).
enum TemplateValue {
    /// Jinja's default `Undefined`: prints as nothing, is falsy and iterates as empty; the name is for errors.
    case undefined(String)
    case none
    case bool(Bool)
    case integer(Int)
    case double(Double)
    case string(String)
    case list([TemplateValue])
    case dictionary(OrderedDictionary<String, TemplateValue>)
    case namespace(TemplateNamespace)
    case callable(TemplateCallable)

    init(_ json: JSONValue) {
        switch json {
        case .null: self = .none
        case .bool(let value): self = .bool(value)
        case .integer(let value): self = .integer(value)
        case .number(let value): self = .double(value)
        case .string(let value): self = .string(value)
        case .array(let values): self = .list(values.map(TemplateValue.init))
        case .object(let members): self = .dictionary(members.mapValues(TemplateValue.init))
        }
    }

    init(_ constant: Constant) {
        switch constant {
        case .none: self = .none
        case .bool(let value): self = .bool(value)
        case .integer(let value): self = .integer(value)
        case .double(let value): self = .double(value)
        case .string(let value): self = .string(value)
        }
    }

    var isUndefined: Bool {
        if case .undefined = self { return true }
        return false
    }

    /// Python truthiness.
    var isTruthy: Bool {
        switch self {
        case .undefined, .none: return false
        case .bool(let value): return value
        case .integer(let value): return value != 0
        case .double(let value): return value != 0
        case .string(let value): return !value.isEmpty
        case .list(let values): return !values.isEmpty
        case .dictionary(let members): return !members.isEmpty
        case .namespace, .callable: return true
        }
    }

    /// The Python type name, for error messages that read like Jinja's.
    var typeName: String {
        switch self {
        case .undefined: return "Undefined"
        case .none: return "NoneType"
        case .bool: return "bool"
        case .integer: return "int"
        case .double: return "float"
        case .string: return "str"
        case .list: return "list"
        case .dictionary: return "dict"
        case .namespace: return "Namespace"
        case .callable: return "function"
        }
    }

    /// A number as Python sees it: `bool` is an `int`.
    var numeric: Numeric? {
        switch self {
        case .bool(let value): return .integer(value ? 1 : 0)
        case .integer(let value): return .integer(value)
        case .double(let value): return .double(value)
        default: return nil
        }
    }

    /// An integer or a float operand.
    enum Numeric {
        case integer(Int)
        case double(Double)

        var doubleValue: Double {
            switch self {
            case .integer(let value): return Double(value)
            case .double(let value): return value
            }
        }
    }

    var stringValue: String? {
        if case .string(let value) = self { return value }
        return nil
    }
}

/// Depth limit for recursive walks over values (printing, JSON, equality), so a self-nested structure built by a
/// hostile template fails cleanly instead of overflowing the stack.
let maximumValueDepth = 256

private func tooDeep() -> TemplateError {
    TemplateError(message: "value is nested too deeply", line: 0, column: 0)
}

extension TemplateValue {
    /// Python's `str()`, which `{{ }}`, `~` and `string` use.
    func pythonString(depth: Int = 0) throws(TemplateError) -> String {
        switch self {
        case .undefined: return ""
        case .string(let value): return value
        default: return try pythonRepresentation(depth: depth)
        }
    }

    /// Python's `repr()`, used for the items of printed lists and dicts.
    func pythonRepresentation(depth: Int = 0) throws(TemplateError) -> String {
        guard depth < maximumValueDepth else { throw tooDeep() }
        switch self {
        case .undefined: return ""
        case .none: return "None"
        case .bool(let value): return value ? "True" : "False"
        case .integer(let value): return String(value)
        case .double(let value): return PythonText.floatRepresentation(value)
        case .string(let value): return PythonText.stringRepresentation(value)
        case .list(let values):
            var parts: [String] = []
            for value in values { parts.append(try value.pythonRepresentation(depth: depth + 1)) }
            return "[" + parts.joined(separator: ", ") + "]"
        case .dictionary(let members):
            var parts: [String] = []
            for (key, value) in members {
                parts.append(
                    PythonText.stringRepresentation(key) + ": " + (try value.pythonRepresentation(depth: depth + 1)))
            }
            return "{" + parts.joined(separator: ", ") + "}"
        case .namespace(let namespace):
            var parts: [String] = []
            for (key, value) in namespace.members {
                parts.append(
                    PythonText.stringRepresentation(key) + ": " + (try value.pythonRepresentation(depth: depth + 1)))
            }
            return "<Namespace {" + parts.joined(separator: ", ") + "}>"
        case .callable: return "<function>"
        }
    }

    /// Python's `==`: numbers compare across int, float and bool; `Undefined` equals only `Undefined`.
    func isEqual(to other: TemplateValue, depth: Int = 0) throws(TemplateError) -> Bool {
        guard depth < maximumValueDepth else { throw tooDeep() }
        if let left = numeric, let right = other.numeric {
            switch (left, right) {
            case (.integer(let a), .integer(let b)): return a == b
            default: return left.doubleValue == right.doubleValue
            }
        }
        switch (self, other) {
        case (.undefined, .undefined), (.none, .none): return true
        case (.string(let a), .string(let b)): return a.unicodeScalars.elementsEqual(b.unicodeScalars)
        case (.list(let a), .list(let b)):
            guard a.count == b.count else { return false }
            for (x, y) in zip(a, b) where !(try x.isEqual(to: y, depth: depth + 1)) { return false }
            return true
        case (.dictionary(let a), .dictionary(let b)):
            guard a.count == b.count else { return false }
            for (key, x) in a {
                guard let y = b[key], try x.isEqual(to: y, depth: depth + 1) else { return false }
            }
            return true
        case (.namespace(let a), .namespace(let b)): return a === b
        case (.callable(let a), .callable(let b)): return a === b
        default: return false
        }
    }

    /// Python's ordering for `<` and friends; mismatched types are an error, as in Python.
    func compare(to other: TemplateValue, depth: Int = 0) throws(TemplateError) -> Int {
        guard depth < maximumValueDepth else { throw tooDeep() }
        if let left = numeric, let right = other.numeric {
            switch (left, right) {
            case (.integer(let a), .integer(let b)): return a < b ? -1 : a > b ? 1 : 0
            default:
                let a = left.doubleValue
                let b = right.doubleValue
                return a < b ? -1 : a > b ? 1 : 0
            }
        }
        switch (self, other) {
        case (.string(let a), .string(let b)):
            for (x, y) in zip(a.unicodeScalars, b.unicodeScalars) where x != y { return x.value < y.value ? -1 : 1 }
            let (countA, countB) = (a.unicodeScalars.count, b.unicodeScalars.count)
            return countA < countB ? -1 : countA > countB ? 1 : 0
        case (.list(let a), .list(let b)):
            for (x, y) in zip(a, b) {
                let order = try x.compare(to: y, depth: depth + 1)
                if order != 0 { return order }
            }
            return a.count < b.count ? -1 : a.count > b.count ? 1 : 0
        default:
            throw TemplateError(
                message: "'<' not supported between instances of '\(typeName)' and '\(other.typeName)'", line: 0,
                column: 0)
        }
    }

    /// The elements a `for` loop, `list` or `join` walks: list items, dict keys, or string characters.
    func iterated() throws(TemplateError) -> [TemplateValue] {
        switch self {
        case .undefined: return []
        case .list(let values): return values
        case .dictionary(let members): return members.keys.map { .string($0) }
        case .string(let value): return value.unicodeScalars.map { .string(String($0)) }
        default: throw TemplateError(message: "'\(typeName)' object is not iterable", line: 0, column: 0)
        }
    }

    /// Converts back to JSON for `tojson`; values JSON cannot hold are an error, as in `json.dumps`.
    func jsonValue(depth: Int = 0) throws(TemplateError) -> JSONValue {
        guard depth < maximumValueDepth else { throw tooDeep() }
        switch self {
        case .none: return .null
        case .bool(let value): return .bool(value)
        case .integer(let value): return .integer(value)
        case .double(let value): return .number(value)
        case .string(let value): return .string(value)
        case .list(let values):
            var out: [JSONValue] = []
            for value in values { out.append(try value.jsonValue(depth: depth + 1)) }
            return .array(out)
        case .dictionary(let members):
            var out = OrderedDictionary<String, JSONValue>()
            for (key, value) in members { out[key] = try value.jsonValue(depth: depth + 1) }
            return .object(out)
        default:
            throw TemplateError(message: "Object of type \(typeName) is not JSON serializable", line: 0, column: 0)
        }
    }
}
