import FoundationEssentials
import MCP
import OnebitModel

extension JSONValue {
    /// The project's JSON value for an MCP SDK value.
    ///
    /// The SDK keeps objects in a `Dictionary`, so their member order is already lost when they arrive; members are
    /// sorted by key here so that the same arguments always give the same value (and the same member order in a
    /// structured-output grammar). The SDK decodes any string that looks like a data URL as `.data`; it becomes that
    /// URL again, as the client sent it.
    public init(_ value: Value) {
        switch value {
        case .null: self = .null
        case .bool(let b): self = .bool(b)
        case .int(let i): self = .integer(i)
        case .double(let d): self = .number(d)
        case .string(let s): self = .string(s)
        case .data(let mimeType, let data): self = .string(data.dataURLEncoded(mimeType: mimeType))
        case .array(let items): self = .array(items.map(JSONValue.init))
        case .object(let members):
            self = .object(
                .init(uniqueKeysWithValues: members.sorted { $0.key < $1.key }.map { ($0.key, JSONValue($0.value)) }))
        }
    }
}

extension Value {
    /// The MCP SDK value for one of the project's JSON values (object member order is not kept: the SDK's objects are
    /// dictionaries).
    public init(_ value: JSONValue) {
        switch value {
        case .null: self = .null
        case .bool(let b): self = .bool(b)
        case .integer(let i): self = .int(i)
        case .number(let d): self = .double(d)
        case .string(let s): self = .string(s)
        case .array(let items): self = .array(items.map(Value.init))
        case .object(let members):
            self = .object(Dictionary(members.map { ($0.key, Value($0.value)) }, uniquingKeysWith: { _, last in last }))
        }
    }
}
