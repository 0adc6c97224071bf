import MCP
import OnebitEngine
import OnebitMCP
import OnebitModel
import Testing

/// The built-in demo model's tools, served in-process to an SDK client over the SDK's in-memory transport.
enum TestTools {
    /// The demo model, loaded once.
    static let model: LoadedModel = {
        do {
            return try EmbeddedModel.load()
        } catch {
            preconditionFailure("the built-in model must load: \(error)")
        }
    }()

    /// Tokens of one request; small, so the context limit is cheap to reach.
    static let contextLength = 128

    /// The scheduler every test shares.
    static let scheduler = Scheduler(
        model: LanguageModel(model), configuration: SchedulerConfiguration(contextLength: contextLength))

    /// The model's tools over the shared scheduler.
    static let registry: ToolRegistry = {
        let registry = ToolRegistry()
        let served = ServedModel(id: EmbeddedModel.id, tokenizer: model.tokenizer, chatTemplate: model.chatTemplate)
        let info = ModelInfo(
            id: EmbeddedModel.id, format: "embedded", layers: model.config.layerCount,
            vocabularySize: model.config.vocabSize, contextLength: contextLength, device: "CPU")
        ModelTools(model: served, scheduler: scheduler, info: info).register(in: registry)
        return registry
    }()

    /// A client connected to a new server session over the registry.
    static func connect(_ registry: ToolRegistry = registry) async throws -> Client {
        let (clientSide, serverSide) = await InMemoryTransport.createConnectedPair()
        let server = await registry.makeServer()
        try await server.start(transport: serverSide)
        let client = Client(name: "onebit-tests", version: "1")
        _ = try await client.connect(transport: clientSide)
        return client
    }

    /// The whole result of a `tools/call` (the SDK's `callTool` drops `structuredContent`).
    static func call(_ client: Client, _ name: String, _ arguments: [String: Value] = [:]) async throws
        -> CallTool.Result
    {
        try await client.send(CallTool.request(.init(name: name, arguments: arguments))).value
    }

    /// The text of a result's only content item.
    static func text(_ result: CallTool.Result) -> String? {
        guard result.content.count == 1, case .text(let text, _, _) = result.content[0] else { return nil }
        return text
    }
}
