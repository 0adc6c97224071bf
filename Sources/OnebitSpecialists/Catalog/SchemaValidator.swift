import OnebitModel

/// Checks JSON values against a JSON Schema, naming the first field at fault.
///
/// The engine's ``JSONGrammar`` makes the model *produce* values of a schema but cannot judge a given value, so
/// this checks the same subset (plus `minimum`/`maximum`, which inputs need): `type` (a name or a list),
/// `properties`, `required`, `additionalProperties` (a boolean or a schema), `items`, `minItems`, `maxItems`,
/// `minLength`, `maxLength`, `minimum`, `maximum`, `enum`, `const`, `anyOf`, and `$ref` to the root's `$defs`.
/// Annotations (`title`, `description`, `default`, `examples`, `$schema`, `$id`, `$comment`) are ignored; any other
/// keyword is refused when the validator is made, so a schema never silently checks less than it says.
public struct SchemaValidator: Sendable {
    /// The schema it checks against.
    public let schema: JSONValue

    private static let keywords: Set<String> = [
        "type", "properties", "required", "additionalProperties", "items", "minItems", "maxItems", "minLength",
        "maxLength", "minimum", "maximum", "enum", "const", "anyOf", "$ref", "title", "description", "default",
        "examples", "$schema", "$id", "$comment", "$defs", "definitions",
    ]

    /// Accepts `schema` once every keyword in it is one this validator checks.
    public init(schema: JSONValue) throws(SchemaViolation) {
        self.schema = schema
        try Self.checkKeywords(schema, path: "schema")
    }

    /// Throws the first place where `value` breaks the schema; `root` names the value in messages (`input`).
    public func validate(_ value: JSONValue, root: String = "input") throws(SchemaViolation) {
        try check(value, against: schema, path: root)
    }

    private static func checkKeywords(_ schema: JSONValue, path: String) throws(SchemaViolation) {
        if schema.boolValue != nil { return }
        guard let members = schema.objectValue else {
            throw SchemaViolation(path: path, reason: "a schema must be an object or a boolean")
        }
        for key in members.keys where !keywords.contains(key) {
            throw SchemaViolation(path: path, reason: "the keyword \"\(key)\" is not supported; remove it")
        }
        for (name, property) in members["properties"]?.objectValue ?? [:] {
            try checkKeywords(property, path: "\(path).properties.\(name)")
        }
        for (name, definition) in (members["$defs"] ?? members["definitions"])?.objectValue ?? [:] {
            try checkKeywords(definition, path: "\(path).$defs.\(name)")
        }
        if let items = members["items"] { try checkKeywords(items, path: path + ".items") }
        if let extra = members["additionalProperties"], extra.objectValue != nil {
            try checkKeywords(extra, path: path + ".additionalProperties")
        }
        for (index, alternative) in (members["anyOf"]?.arrayValue ?? []).enumerated() {
            try checkKeywords(alternative, path: "\(path).anyOf[\(index)]")
        }
    }

    private func check(_ value: JSONValue, against schema: JSONValue, path: String) throws(SchemaViolation) {
        if let accepts = schema.boolValue {
            if !accepts { throw SchemaViolation(path: path, reason: "no value is allowed here") }
            return
        }
        guard let members = schema.objectValue else { return }
        if let reference = members["$ref"]?.stringValue {
            let name = reference.split(separator: "/").last.map(String.init) ?? ""
            guard let target = (self.schema["$defs"] ?? self.schema["definitions"])?[name] else {
                throw SchemaViolation(path: path, reason: "the schema refers to \(reference), which it does not define")
            }
            try check(value, against: target, path: path)
        }
        if let constant = members["const"], !Self.equal(value, constant) {
            throw SchemaViolation(path: path, reason: "must be \(constant.jsonText)")
        }
        if let options = members["enum"]?.arrayValue, !options.contains(where: { Self.equal(value, $0) }) {
            throw SchemaViolation(
                path: path, reason: "must be one of \(options.map(\.jsonText).joined(separator: ", "))")
        }
        if let alternatives = members["anyOf"]?.arrayValue {
            var reasons: [String] = []
            for alternative in alternatives {
                do {
                    try check(value, against: alternative, path: path)
                    reasons = []
                    break
                } catch {
                    reasons.append(error.description)
                }
            }
            if !reasons.isEmpty {
                throw SchemaViolation(path: path, reason: "matches none of anyOf (\(reasons.joined(separator: "; ")))")
            }
        }
        if let types = Self.types(members["type"]), !types.contains(where: { Self.value(value, is: $0) }) {
            throw SchemaViolation(
                path: path, reason: "must be \(types.joined(separator: " or ")), not \(Self.typeName(of: value))")
        }
        switch value {
        case .string(let string):
            let length = string.unicodeScalars.count
            if let minimum = members["minLength"]?.intValue, length < minimum {
                throw SchemaViolation(path: path, reason: "must have at least \(minimum) characters")
            }
            if let maximum = members["maxLength"]?.intValue, length > maximum {
                throw SchemaViolation(path: path, reason: "must have at most \(maximum) characters")
            }
        case .integer, .number:
            let number = value.doubleValue ?? 0
            if let minimum = members["minimum"]?.doubleValue, number < minimum {
                throw SchemaViolation(path: path, reason: "must be at least \(members["minimum"]!.jsonText)")
            }
            if let maximum = members["maximum"]?.doubleValue, number > maximum {
                throw SchemaViolation(path: path, reason: "must be at most \(members["maximum"]!.jsonText)")
            }
        case .array(let items):
            if let minimum = members["minItems"]?.intValue, items.count < minimum {
                throw SchemaViolation(path: path, reason: "must have at least \(minimum) items")
            }
            if let maximum = members["maxItems"]?.intValue, items.count > maximum {
                throw SchemaViolation(path: path, reason: "must have at most \(maximum) items")
            }
            if let itemSchema = members["items"] {
                for (index, item) in items.enumerated() {
                    try check(item, against: itemSchema, path: "\(path)[\(index)]")
                }
            }
        case .object(let object):
            let properties = members["properties"]?.objectValue ?? [:]
            for name in (members["required"]?.arrayValue ?? []).compactMap(\.stringValue) where object[name] == nil {
                throw SchemaViolation(path: "\(path).\(name)", reason: "is required")
            }
            for (name, member) in object {
                if let propertySchema = properties[name] {
                    try check(member, against: propertySchema, path: "\(path).\(name)")
                } else if let extra = members["additionalProperties"] {
                    if extra == .bool(false) {
                        let known = properties.keys.joined(separator: ", ")
                        throw SchemaViolation(
                            path: "\(path).\(name)", reason: "is not a known field (known: \(known))")
                    }
                    try check(member, against: extra, path: "\(path).\(name)")
                }
            }
        default:
            break
        }
    }

    private static func types(_ value: JSONValue?) -> [String]? {
        switch value {
        case .string(let name)?: [name]
        case .array(let names)?: names.compactMap(\.stringValue)
        default: nil
        }
    }

    private static func value(_ value: JSONValue, is type: String) -> Bool {
        switch (type, value) {
        case ("null", .null), ("boolean", .bool), ("string", .string), ("array", .array), ("object", .object):
            true
        case ("number", .integer), ("number", .number): true
        case ("integer", _): value.intValue != nil && value.doubleValue != nil
        default: false
        }
    }

    private static func typeName(of value: JSONValue) -> String {
        switch value {
        case .null: "null"
        case .bool: "a boolean"
        case .integer: "an integer"
        case .number: "a number"
        case .string: "a string"
        case .array: "an array"
        case .object: "an object"
        }
    }

    /// JSON equality, where `1` and `1.0` are the same number.
    private static func equal(_ a: JSONValue, _ b: JSONValue) -> Bool {
        if let x = a.doubleValue, let y = b.doubleValue { return x == y }
        return a == b
    }
}

/// Where a value breaks a schema (or where a schema uses what the validator cannot check).
public struct SchemaViolation: Error, Equatable, CustomStringConvertible {
    /// The field at fault, such as `input.diff` or `input.issues[2].title`.
    public var path: String
    /// What is wrong with it.
    public var reason: String

    /// Describes a violation.
    public init(path: String, reason: String) {
        self.path = path
        self.reason = reason
    }

    /// `path: reason`.
    public var description: String { "\(path): \(reason)" }
}
