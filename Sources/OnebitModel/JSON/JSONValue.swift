import OrderedCollections

/// A parsed JSON document that keeps object keys in document order.
///
/// Order matters here: chat templates serialise tool schemas with `tojson`, and the output must match Python's
/// `json.dumps`, which preserves insertion order. Foundation's `JSONDecoder` does not expose key order, so the
/// project parses JSON itself (see ``JSONParser``).
public enum JSONValue: Sendable, Equatable {
    case null
    case bool(Bool)
    /// An integer literal that fits in 64 bits (`1`, `-3`); JSON numbers with a fraction or exponent are ``number``.
    case integer(Int)
    case number(Double)
    case string(String)
    case array([JSONValue])
    case object(OrderedDictionary<String, JSONValue>)

    /// Parses UTF-8 JSON text.
    public init(parsing bytes: some Collection<UInt8>) throws(JSONError) {
        self = try JSONParser.parse(Array(bytes))
    }

    /// Parses JSON text.
    public init(parsing text: String) throws(JSONError) {
        self = try JSONParser.parse(Array(text.utf8))
    }

    /// The member named `key` when this is an object, otherwise `nil`.
    public subscript(key: String) -> JSONValue? {
        if case .object(let members) = self { return members[key] }
        return nil
    }

    /// The string payload, or `nil` for any other kind of value.
    public var stringValue: String? {
        if case .string(let s) = self { return s }
        return nil
    }

    /// The integer payload; a number with no fractional part counts too.
    public var intValue: Int? {
        switch self {
        case .integer(let i): return i
        case .number(let d) where d.rounded() == d && abs(d) < 9.0e15: return Int(d)
        default: return nil
        }
    }

    /// The numeric payload as a `Double`, integers included.
    public var doubleValue: Double? {
        switch self {
        case .integer(let i): return Double(i)
        case .number(let d): return d
        default: return nil
        }
    }

    /// The boolean payload, or `nil` for any other kind of value.
    public var boolValue: Bool? {
        if case .bool(let b) = self { return b }
        return nil
    }

    /// The elements when this is an array, otherwise `nil`.
    public var arrayValue: [JSONValue]? {
        if case .array(let a) = self { return a }
        return nil
    }

    /// The members when this is an object, otherwise `nil`.
    public var objectValue: OrderedDictionary<String, JSONValue>? {
        if case .object(let o) = self { return o }
        return nil
    }

    /// `true` for `null`.
    public var isNull: Bool { self == .null }
}

/// Why a JSON text could not be parsed; `offset` is the byte position of the problem.
public struct JSONError: Error, CustomStringConvertible, Equatable {
    /// What was wrong.
    public var reason: String
    /// Byte offset into the text.
    public var offset: Int

    /// A message that names the problem and, where there is one, the fix.
    public var description: String { "invalid JSON at byte \(offset): \(reason)" }
}
