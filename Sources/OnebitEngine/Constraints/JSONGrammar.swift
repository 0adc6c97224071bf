import OnebitModel

/// A JSON Schema compiled for constrained decoding: the values it accepts, written as compact JSON.
///
/// Supported subset: `type` (`object`, `array`, `string`, `number`, `integer`, `boolean`, `null`, or a list of
/// them), `properties`, `required`, `additionalProperties`, `items`, `minItems`, `maxItems`, `minLength`,
/// `maxLength`, `enum`, `const`, `anyOf`, `$ref` to the root's `$defs` (not recursive), nested to any depth, plus
/// annotations (`title`, `description`,
/// `default`, `examples`, `$schema`, `$id`, `$comment`), which are ignored. Anything else (`pattern`, `format`,
/// `minimum`, `$ref`, `oneOf`, ...) is refused with ``GrammarError/unsupported(keyword:path:)``, since the output
/// could not be guaranteed to validate.
///
/// Generated text is compact: no whitespace outside strings (a small model would otherwise pad forever), object
/// members in the schema's order. Properties are all emitted under `strict`; otherwise only `required` ones must
/// be. No member beyond `properties` is ever emitted, which any `additionalProperties` accepts. An object schema
/// without `properties` takes members with any key whose values follow `additionalProperties`; `{}` (and such
/// values when `additionalProperties` is absent or `true`) accepts any JSON value nested at most ``freeDepth`` deep.
public struct JSONGrammar: Sendable {
    /// One schema, compiled; the matcher refers to nodes by index.
    enum Node: Sendable {
        /// One of the nodes.
        case anyOf([Int])
        /// An object with these members in this order; `free` (when there are no properties) is the value node
        /// of members with any key.
        case object(properties: [Property], free: Int?)
        case array(item: Int, minItems: Int, maxItems: Int?)
        /// A string of `minLength...maxLength` characters (code points; an escape counts as one).
        case string(minLength: Int, maxLength: Int?)
        case number(integer: Bool)
        /// Exactly one of these JSON texts.
        case literals([[UInt8]])
    }

    /// An object member: its key as JSON text (quotes included) and its value's node.
    struct Property: Sendable {
        var key: [UInt8]
        var value: Int
        var required: Bool
    }

    /// How deep values inside an object or array without a schema may nest.
    public static let freeDepth = 4
    /// Most digits before the point, after it, and in the exponent of a number, so a number always ends.
    static let numberDigits = (integer: 15, fraction: 15, exponent: 2)

    private(set) var nodes: [Node] = []
    /// The node of the whole value.
    private(set) var root = 0
    /// The node of a free object's keys: any string.
    private(set) var keyNode = 0

    /// Any JSON object (`response_format: {"type": "json_object"}`).
    public static let anyObject: JSONGrammar = {
        var grammar = JSONGrammar()
        grammar.keyNode = grammar.add(.string(minLength: 0, maxLength: nil))
        let value = grammar.anyValue(depth: freeDepth - 1)
        grammar.root = grammar.add(.object(properties: [], free: value))
        return grammar
    }()

    private init() {}

    /// Compiles `schema`; `strict` makes every listed property required (OpenAI's strict mode).
    public init(schema: JSONValue, strict: Bool) throws(GrammarError) {
        keyNode = add(.string(minLength: 0, maxLength: nil))
        definitions = schema["$defs"] ?? schema["definitions"]
        root = try compile(schema, path: "schema", strict: strict)
    }

    /// The root schema's `$defs` (or `definitions`), which `$ref` points into.
    private var definitions: JSONValue?
    /// The references being compiled, outermost first, to refuse recursion.
    private var resolving: [String] = []

    private mutating func add(_ node: Node) -> Int {
        nodes.append(node)
        return nodes.count - 1
    }

    /// Any JSON value whose objects and arrays nest at most `depth` more levels.
    private mutating func anyValue(depth: Int) -> Int {
        var choices = [
            add(.string(minLength: 0, maxLength: nil)), add(.number(integer: false)),
            add(.literals([Array("true".utf8), Array("false".utf8), Array("null".utf8)])),
        ]
        if depth > 0 {
            let inner = anyValue(depth: depth - 1)
            choices.append(add(.object(properties: [], free: inner)))
            choices.append(add(.array(item: inner, minItems: 0, maxItems: nil)))
        }
        return add(.anyOf(choices))
    }

    private static let annotations: Set<String> = [
        "title", "description", "default", "examples", "$schema", "$id", "$comment", "$defs", "definitions",
    ]
    private static let keywords: Set<String> = [
        "type", "properties", "required", "additionalProperties", "items", "minItems", "maxItems", "minLength",
        "maxLength", "enum", "const", "anyOf", "$ref",
    ]

    private mutating func compile(_ schema: JSONValue, path: String, strict: Bool) throws(GrammarError) -> Int {
        if let accepts = schema.boolValue {
            guard accepts else { throw .unsatisfiable(path: path, reason: "the schema `false` accepts no value") }
            return anyValue(depth: Self.freeDepth)
        }
        guard let members = schema.objectValue else {
            throw .invalid(path: path, reason: "a schema must be an object or a boolean")
        }
        for key in members.keys where !Self.keywords.contains(key) && !Self.annotations.contains(key) {
            throw .unsupported(keyword: key, path: path, reason: "")
        }
        if let reference = members["$ref"] {
            return try compile(reference: reference, path: path, strict: strict)
        }
        if let value = members["const"] { return add(.literals([Array(value.jsonText.utf8)])) }
        if let values = members["enum"] {
            guard let list = values.arrayValue, !list.isEmpty else {
                throw .invalid(path: path + ".enum", reason: "enum must be a non-empty array")
            }
            return add(.literals(list.map { Array($0.jsonText.utf8) }))
        }
        if let alternatives = members["anyOf"] {
            guard let list = alternatives.arrayValue, !list.isEmpty else {
                throw .invalid(path: path + ".anyOf", reason: "anyOf must be a non-empty array of schemas")
            }
            var choices: [Int] = []
            for (index, alternative) in list.enumerated() {
                choices.append(try compile(alternative, path: "\(path).anyOf[\(index)]", strict: strict))
            }
            return add(.anyOf(choices))
        }
        let types: [String]
        switch members["type"] {
        case nil:
            return anyValue(depth: Self.freeDepth)
        case .string(let name)?:
            types = [name]
        case .array(let names)?:
            types = names.compactMap(\.stringValue)
            guard types.count == names.count, !types.isEmpty else {
                throw .invalid(path: path + ".type", reason: "type must be a type name or a non-empty list of them")
            }
        default:
            throw .invalid(path: path + ".type", reason: "type must be a type name or a non-empty list of them")
        }
        var choices: [Int] = []
        for type in types { choices.append(try compile(type: type, schema, path: path, strict: strict)) }
        return choices.count == 1 ? choices[0] : add(.anyOf(choices))
    }

    /// A `$ref` to `#/$defs/NAME` (or `#/definitions/NAME`), compiled in place; recursive schemas cannot be
    /// compiled to a finite automaton and are refused.
    private mutating func compile(reference: JSONValue, path: String, strict: Bool) throws(GrammarError) -> Int {
        guard let target = reference.stringValue,
            let name = ["#/$defs/", "#/definitions/"].lazy.compactMap({ prefix -> Substring? in
                target.hasPrefix(prefix) ? target.dropFirst(prefix.count) : nil
            }).first,
            let schema = definitions?[String(name)]
        else {
            throw .unsupported(
                keyword: "$ref", path: path, reason: "only references to #/$defs/NAME of the root schema are supported")
        }
        guard !resolving.contains(target) else {
            throw .unsupported(keyword: "$ref", path: path, reason: "\(target) refers to itself (recursive schema)")
        }
        resolving.append(target)
        defer { resolving.removeLast() }
        return try compile(schema, path: path, strict: strict)
    }

    private mutating func compile(
        type: String, _ members: JSONValue, path: String, strict: Bool
    ) throws(GrammarError) -> Int {
        switch type {
        case "string":
            let minLength = try Self.count(members, "minLength", path: path) ?? 0
            let maxLength = try Self.count(members, "maxLength", path: path)
            if let maxLength, maxLength < minLength {
                throw .unsatisfiable(path: path, reason: "maxLength is below minLength")
            }
            return add(.string(minLength: minLength, maxLength: maxLength))
        case "number", "integer":
            return add(.number(integer: type == "integer"))
        case "boolean":
            return add(.literals([Array("true".utf8), Array("false".utf8)]))
        case "null":
            return add(.literals([Array("null".utf8)]))
        case "array":
            let minItems = try Self.count(members, "minItems", path: path) ?? 0
            let maxItems = try Self.count(members, "maxItems", path: path)
            if let maxItems, maxItems < minItems {
                throw .unsatisfiable(path: path, reason: "maxItems is below minItems")
            }
            let item =
                try members["items"].map { (items) throws(GrammarError) in
                    try compile(items, path: path + ".items", strict: strict)
                } ?? anyValue(depth: Self.freeDepth - 1)
            return add(.array(item: item, minItems: minItems, maxItems: maxItems))
        case "object":
            let required = Set((members["required"]?.arrayValue ?? []).compactMap(\.stringValue))
            let properties = members["properties"]?.objectValue
            if members["properties"] != nil, properties == nil {
                throw .invalid(path: path + ".properties", reason: "properties must be an object of schemas")
            }
            for name in required where properties?[name] == nil {
                throw .unsupported(
                    keyword: "required", path: path,
                    reason: "\"\(name)\" is required but not declared in properties; declare it there")
            }
            guard let properties, !properties.isEmpty else {
                // Members with any key: their values follow `additionalProperties` when it is a schema.
                let free: Int?
                switch members["additionalProperties"] {
                case .bool(false)?: free = nil
                case let schema? where schema.objectValue != nil:
                    free = try compile(schema, path: path + ".additionalProperties", strict: strict)
                default: free = anyValue(depth: Self.freeDepth - 1)
                }
                return add(.object(properties: [], free: free))
            }
            var compiled: [Property] = []
            for (name, schema) in properties {
                let value = try compile(schema, path: "\(path).properties.\(name)", strict: strict)
                compiled.append(
                    Property(
                        key: Array(JSONValue.string(name).jsonText.utf8), value: value,
                        required: strict || required.contains(name)))
            }
            return add(.object(properties: compiled, free: nil))
        default:
            throw .invalid(
                path: path + ".type",
                reason: "unknown type \"\(type)\"; use object, array, string, number, integer, boolean or null")
        }
    }

    private static func count(_ members: JSONValue, _ key: String, path: String) throws(GrammarError)
        -> Int?
    {
        guard let value = members[key] else { return nil }
        guard let count = value.intValue, count >= 0 else {
            throw .invalid(path: "\(path).\(key)", reason: "\(key) must be a non-negative integer")
        }
        return count
    }
}

/// Why a schema cannot be enforced.
public enum GrammarError: Error, Equatable, CustomStringConvertible {
    /// The schema uses `keyword`, or uses it in a way (`reason`, when not empty), that generation cannot enforce.
    case unsupported(keyword: String, path: String, reason: String)
    /// The schema is malformed at `path`.
    case invalid(path: String, reason: String)
    /// No value satisfies the schema at `path`.
    case unsatisfiable(path: String, reason: String)

    /// A message that names the problem and the fix.
    public var description: String {
        switch self {
        case .unsupported(let keyword, let path, let reason) where !reason.isEmpty:
            "\(path) uses \"\(keyword)\" in a way constrained decoding cannot enforce: \(reason)"
        case .unsupported(let keyword, let path, _):
            "\(path) uses \"\(keyword)\", which constrained decoding cannot enforce; supported keywords: type, "
                + "properties, required, additionalProperties, items, minItems, maxItems, minLength, maxLength, "
                + "enum, const, anyOf, $ref to $defs (remove \"\(keyword)\" or check the output yourself)"
        case .invalid(let path, let reason): "\(path) is not a valid schema: \(reason)"
        case .unsatisfiable(let path, let reason): "\(path) can never be satisfied: \(reason)"
        }
    }
}
