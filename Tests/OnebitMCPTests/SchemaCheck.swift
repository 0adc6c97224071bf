import OnebitModel

/// Checks a value against the JSON Schema keywords the tools' output schemas use (`type`, `properties`,
/// `required`, `additionalProperties: false`, `items`, `enum`, `minimum`, `maximum`); returns the first violation.
/// The Python tests validate the same outputs with the `jsonschema` package.
enum SchemaCheck {
    static func violation(of value: JSONValue, against schema: JSONValue, at path: String = "$") -> String? {
        if let types = schema["type"] {
            let allowed = types.arrayValue?.compactMap(\.stringValue) ?? [types.stringValue ?? ""]
            guard allowed.contains(where: { matches(value, $0) }) else {
                return "\(path): \(value.jsonText) is not of type \(types.jsonText)"
            }
        }
        if let options = schema["enum"]?.arrayValue, !options.contains(value) {
            return "\(path): \(value.jsonText) is not one of \(options)"
        }
        if let number = value.doubleValue {
            if let minimum = schema["minimum"]?.doubleValue, number < minimum { return "\(path): below \(minimum)" }
            if let maximum = schema["maximum"]?.doubleValue, number > maximum { return "\(path): above \(maximum)" }
        }
        if let members = value.objectValue {
            for case .string(let name) in schema["required"]?.arrayValue ?? [] where members[name] == nil {
                return "\(path): \(name) is missing"
            }
            let properties = schema["properties"]?.objectValue ?? [:]
            for (name, member) in members {
                if let property = properties[name] {
                    if let problem = violation(of: member, against: property, at: "\(path).\(name)") { return problem }
                } else if schema["additionalProperties"] == .bool(false) {
                    return "\(path): \(name) is not allowed"
                }
            }
        }
        if let items = value.arrayValue, let itemSchema = schema["items"] {
            for (index, item) in items.enumerated() {
                if let problem = violation(of: item, against: itemSchema, at: "\(path)[\(index)]") { return problem }
            }
        }
        return nil
    }

    private static func matches(_ value: JSONValue, _ type: String) -> Bool {
        switch (type, value) {
        case ("object", .object), ("array", .array), ("string", .string), ("boolean", .bool), ("null", .null): true
        case ("integer", .integer), ("number", .integer), ("number", .number): true
        default: false
        }
    }
}
