import OnebitModel

/// Reads the arguments of one tool call with the types the tool's input schema promises; a wrong type or a value
/// out of range is a ``ToolError/invalidArgument(name:message:)`` naming the argument. Absent and `null` read as
/// `nil`. (The MCP SDK leaves argument validation to the server.)
public struct ToolArguments: Sendable {
    /// The call's arguments.
    public let members: [String: JSONValue]

    /// Wraps the arguments of a call, which must be an object.
    public init(_ value: JSONValue) throws(ToolError) {
        guard let members = value.objectValue else {
            throw .invalidArgument(name: "arguments", message: "the arguments must be a JSON object")
        }
        self.members = Dictionary(members.map { ($0.key, $0.value) }, uniquingKeysWith: { _, last in last })
    }

    /// The value of `name`, `nil` when absent or `null`.
    public func value(_ name: String) -> JSONValue? {
        guard let value = members[name], value != .null else { return nil }
        return value
    }

    /// A string argument.
    public func string(_ name: String) throws(ToolError) -> String? {
        guard let value = value(name) else { return nil }
        guard let string = value.stringValue else { throw Self.wrongType(name, "a string") }
        return string
    }

    /// A string argument that must be present.
    public func requiredString(_ name: String) throws(ToolError) -> String {
        guard let string = try string(name) else { throw .invalidArgument(name: name, message: "it is required") }
        return string
    }

    /// A boolean argument.
    public func bool(_ name: String) throws(ToolError) -> Bool? {
        guard let value = value(name) else { return nil }
        guard let bool = value.boolValue else { throw Self.wrongType(name, "a boolean") }
        return bool
    }

    /// An integer argument, within `range` when given.
    public func integer(_ name: String, in range: ClosedRange<Int>? = nil) throws(ToolError) -> Int? {
        guard let value = value(name) else { return nil }
        guard let integer = value.intValue else { throw Self.wrongType(name, "an integer") }
        if let range, !range.contains(integer) {
            throw .invalidArgument(
                name: name, message: "it must be between \(range.lowerBound) and \(range.upperBound)")
        }
        return integer
    }

    /// A number argument, within `range` when given.
    public func number(_ name: String, in range: ClosedRange<Double>? = nil) throws(ToolError) -> Double? {
        guard let value = value(name) else { return nil }
        guard let number = value.doubleValue, number.isFinite else { throw Self.wrongType(name, "a number") }
        if let range, !range.contains(number) {
            throw .invalidArgument(
                name: name, message: "it must be between \(range.lowerBound) and \(range.upperBound)")
        }
        return number
    }

    /// An array argument.
    public func array(_ name: String) throws(ToolError) -> [JSONValue]? {
        guard let value = value(name) else { return nil }
        guard let array = value.arrayValue else { throw Self.wrongType(name, "an array") }
        return array
    }

    /// An object argument.
    public func object(_ name: String) throws(ToolError) -> JSONValue? {
        guard let value = value(name) else { return nil }
        guard value.objectValue != nil else { throw Self.wrongType(name, "an object") }
        return value
    }

    private static func wrongType(_ name: String, _ expected: String) -> ToolError {
        .invalidArgument(name: name, message: "it must be \(expected)")
    }
}
