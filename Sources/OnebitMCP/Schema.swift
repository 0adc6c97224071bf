import OnebitModel

/// Builders for the JSON Schemas of tool inputs and outputs, so a schema reads like its shape.
public enum Schema {
    /// An object with these properties in this order; `closed` forbids any other member.
    public static func object(
        _ properties: KeyValuePairs<String, JSONValue>, required: [String] = [], closed: Bool = true,
        description: String? = nil
    ) -> JSONValue {
        object(properties.map { ($0.key, $0.value) }, required: required, closed: closed, description: description)
    }

    /// An object with these properties in this order; `closed` forbids any other member.
    public static func object(
        _ properties: [(String, JSONValue)], required: [String] = [], closed: Bool = true,
        description: String? = nil
    ) -> JSONValue {
        var members: [(String, JSONValue)] = [
            ("type", .string("object")),
            ("properties", .object(.init(properties, uniquingKeysWith: { _, last in last }))),
        ]
        if !required.isEmpty { members.append(("required", .array(required.map(JSONValue.string)))) }
        if closed { members.append(("additionalProperties", .bool(false))) }
        return annotated(members, description)
    }

    /// A string.
    public static func string(_ description: String? = nil, enumeration: [String]? = nil) -> JSONValue {
        var members: [(String, JSONValue)] = [("type", .string("string"))]
        if let enumeration { members.append(("enum", .array(enumeration.map(JSONValue.string)))) }
        return annotated(members, description)
    }

    /// An integer within optional bounds.
    public static func integer(_ description: String? = nil, minimum: Int? = nil, maximum: Int? = nil) -> JSONValue {
        var members: [(String, JSONValue)] = [("type", .string("integer"))]
        if let minimum { members.append(("minimum", .integer(minimum))) }
        if let maximum { members.append(("maximum", .integer(maximum))) }
        return annotated(members, description)
    }

    /// A number within optional bounds.
    public static func number(_ description: String? = nil, minimum: Double? = nil, maximum: Double? = nil)
        -> JSONValue
    {
        var members: [(String, JSONValue)] = [("type", .string("number"))]
        if let minimum { members.append(("minimum", .number(minimum))) }
        if let maximum { members.append(("maximum", .number(maximum))) }
        return annotated(members, description)
    }

    /// A number, or `null` where there is none.
    public static func nullableNumber(_ description: String? = nil) -> JSONValue {
        annotated([("type", .array([.string("number"), .string("null")]))], description)
    }

    /// A boolean.
    public static func boolean(_ description: String? = nil) -> JSONValue {
        annotated([("type", .string("boolean"))], description)
    }

    /// An array of `items`.
    public static func array(_ items: JSONValue, description: String? = nil) -> JSONValue {
        annotated([("type", .string("array")), ("items", items)], description)
    }

    /// Any JSON value.
    public static func any(_ description: String? = nil) -> JSONValue {
        annotated([], description)
    }

    private static func annotated(_ members: [(String, JSONValue)], _ description: String?) -> JSONValue {
        var members = members
        if let description { members.append(("description", .string(description))) }
        return .object(.init(uniqueKeysWithValues: members))
    }
}
