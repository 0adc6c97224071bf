import MCP
import OnebitModel
import Synchronization

/// One tool: what `tools/list` shows and the code that answers `tools/call`.
public struct ToolDefinition: Sendable {
    /// The name clients call it by.
    public var name: String
    /// What it does, for the calling model.
    public var description: String
    /// JSON Schema of the arguments (an object schema).
    public var inputSchema: JSONValue
    /// JSON Schema of the structured result every successful call returns.
    public var outputSchema: JSONValue
    /// Answers a call: receives the arguments object, returns the structured result (a JSON object). Throw
    /// ``ToolError`` for bad arguments or a failure the caller should read.
    public var handler: @Sendable (JSONValue) async throws -> JSONValue

    /// Describes a tool.
    public init(
        name: String, description: String, inputSchema: JSONValue, outputSchema: JSONValue,
        handler: @escaping @Sendable (JSONValue) async throws -> JSONValue
    ) {
        self.name = name
        self.description = description
        self.inputSchema = inputSchema
        self.outputSchema = outputSchema
        self.handler = handler
    }
}

/// The tools an MCP server offers, in the order they were added; any module may add its own.
///
/// The registry is shared by every MCP session (one per stdio process, one per HTTP session), so a tool added once
/// is offered everywhere. It answers `tools/list` and `tools/call`; a call's arguments are checked against the
/// tool's input schema for `required` members and, when `additionalProperties` is `false`, unknown ones, before
/// the handler reads them.
public final class ToolRegistry: Sendable {
    private let tools = Mutex<[ToolDefinition]>([])

    /// An empty registry.
    public init() {}

    /// Adds `tool`; a tool of the same name is replaced in place.
    public func add(_ tool: ToolDefinition) {
        tools.withLock { tools in
            if let index = tools.firstIndex(where: { $0.name == tool.name }) {
                tools[index] = tool
            } else {
                tools.append(tool)
            }
        }
    }

    /// Adds a tool from its parts; a tool of the same name is replaced in place.
    public func add(
        name: String, description: String, inputSchema: JSONValue, outputSchema: JSONValue,
        handler: @escaping @Sendable (JSONValue) async throws -> JSONValue
    ) {
        add(
            ToolDefinition(
                name: name, description: description, inputSchema: inputSchema, outputSchema: outputSchema,
                handler: handler))
    }

    /// The tools, in the order they were added.
    public var definitions: [ToolDefinition] { tools.withLock { $0 } }

    /// The `tools/list` entries.
    public var listing: [Tool] {
        definitions.map {
            Tool(
                name: $0.name, description: $0.description, inputSchema: Value($0.inputSchema),
                outputSchema: Value($0.outputSchema))
        }
    }

    /// Answers `tools/call`. An unknown tool is a JSON-RPC invalid-params error; bad arguments and failures are a
    /// result with `isError: true` and a message; success carries the structured result and, for clients older
    /// than structured content, the same JSON as text.
    public func call(_ name: String, arguments: [String: Value]?) async throws -> CallTool.Result {
        guard let tool = tools.withLock({ $0.first { $0.name == name } }) else {
            let names = definitions.map(\.name).joined(separator: ", ")
            throw MCPError.invalidParams("unknown tool '\(name)'; this server offers: \(names)")
        }
        let input = JSONValue(Value.object(arguments ?? [:]))
        do {
            try Self.check(input, against: tool.inputSchema)
            let output = try await tool.handler(input)
            // The protocol's structuredContent is an object; anything else is a bug in the tool, told to the caller.
            guard output.objectValue != nil else {
                throw ToolError.failed("the tool '\(name)' produced \(output.jsonText), not a JSON object")
            }
            return CallTool.Result(
                content: [.text(text: output.jsonText, annotations: nil, _meta: nil)],
                structuredContent: Value(output) as Value?, isError: false)
        } catch is CancellationError {
            throw CancellationError()
        } catch {
            let message = String(describing: error)
            return CallTool.Result(content: [.text(text: message, annotations: nil, _meta: nil)], isError: true)
        }
    }

    /// The version servers report in their `initialize` answer.
    public static let serverVersion = "0.1.0"

    /// A new MCP server (one per session) that offers these tools.
    public func makeServer(name: String = "onebit", version: String = serverVersion) async -> Server {
        let server = Server(
            name: name, version: version, capabilities: .init(tools: .init(listChanged: false)))
        await server.withMethodHandler(ListTools.self) { [self] _ in ListTools.Result(tools: listing) }
        await server.withMethodHandler(CallTool.self) { [self] parameters in
            try await call(parameters.name, arguments: parameters.arguments)
        }
        return server
    }

    /// Checks the members of `input` that the schema's `required` and `additionalProperties: false` speak about.
    private static func check(_ input: JSONValue, against schema: JSONValue) throws(ToolError) {
        let given = input.objectValue ?? [:]
        for case .string(let name) in schema["required"]?.arrayValue ?? [] where (given[name] ?? .null) == .null {
            throw .invalidArgument(name: name, message: "it is required")
        }
        guard schema["additionalProperties"] == .bool(false) else { return }
        let known = schema["properties"]?.objectValue?.keys.map { $0 } ?? []
        if let unknown = given.keys.first(where: { !known.contains($0) }) {
            let list = known.isEmpty ? "no arguments" : known.joined(separator: ", ")
            throw .invalidArgument(name: unknown, message: "this tool has no such argument; it takes \(list)")
        }
    }
}
