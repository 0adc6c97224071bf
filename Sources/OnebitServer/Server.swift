import Hummingbird
import OnebitEngine
import OnebitMCP
import OnebitModel
import OnebitSpecialists

/// How `onebit serve` listens and what it allows.
public struct ServerConfiguration: Sendable {
    /// The address to bind; 127.0.0.1 keeps the server local.
    public var host: String
    /// The TCP port.
    public var port: Int
    /// When set, `/v1`, `/mcp` and the tokenizer routes require `Authorization: Bearer <apiKey>`.
    public var apiKey: String?
    /// Sequences generating at once, cache size per sequence, and the wait queue.
    public var scheduler: SchedulerConfiguration
    /// The specialists to serve and to run on their triggers; `nil` serves none.
    public var specialists: SpecialistCatalog?
    /// Where specialist reports are kept as files (`nil`: in memory only).
    public var reportsDirectory: String?

    /// Describes a server.
    public init(
        host: String = "127.0.0.1", port: Int = 8080, apiKey: String? = nil, scheduler: SchedulerConfiguration,
        specialists: SpecialistCatalog? = nil, reportsDirectory: String? = nil
    ) {
        self.host = host
        self.port = port
        self.apiKey = apiKey
        self.scheduler = scheduler
        self.specialists = specialists
        self.reportsDirectory = reportsDirectory
    }
}

extension ServerConfiguration {
    /// Whether ``host`` is a loopback address, reachable from this machine only.
    var isLoopback: Bool { host == "localhost" || host == "::1" || host.hasPrefix("127.") }
}

/// The OpenAI-compatible server of one model.
public enum OnebitServer {
    /// Serves `model` until SIGINT or SIGTERM; in-flight responses finish first. `onListening` receives the bound
    /// port once requests are accepted (useful with port 0).
    /// Specialists with a trigger run in the background from then until shutdown; `log` receives their lines.
    public static func run(
        model: sending LanguageModel, id: String, configuration: ServerConfiguration,
        onListening: @escaping @Sendable (Int) -> Void = { _ in }, log: @escaping @Sendable (String) -> Void = { _ in }
    ) async throws {
        let format = model.model.formatDetails.first { $0.key == "format" }?.value ?? "unknown format"
        let summary =
            "\(format), \(model.model.config.layerCount) layers, on \(model.deviceDescription), "
            + "context \(configuration.scheduler.contextLength)"
        let served = ServedModel(
            id: id, tokenizer: model.model.tokenizer, chatTemplate: model.model.chatTemplate, summary: summary)
        let info = ModelInfo(id: id, model: model, contextLength: configuration.scheduler.contextLength)
        let scheduler = Scheduler(model: model, configuration: configuration.scheduler)
        let metrics = ServerMetrics()
        let runner = configuration.specialists.map { catalog in
            SpecialistRunner(
                catalog: catalog,
                model: SpecialistModel(
                    scheduler: scheduler, tokenizer: served.tokenizer, chatTemplate: served.chatTemplate,
                    vocabulary: served.vocabulary),
                reports: ReportStore(directory: configuration.reportsDirectory))
        }
        let triggers = runner.map { SpecialistTriggers(runner: $0, log: log) }
        let tools = ToolRegistry()
        ModelTools(model: served, scheduler: scheduler, info: info).register(in: tools)
        if let runner { SpecialistTools.register(runner, in: tools) }
        let mcp = MCPSessions(registry: tools, loopback: configuration.isLoopback)
        let router = Routes.makeRouter(
            model: served, scheduler: scheduler, metrics: metrics, apiKey: configuration.apiKey, mcp: mcp,
            specialists: runner)
        let app = Application(
            router: router,
            server: .http1(configuration: .init(idleTimeout: .seconds(300))),
            configuration: .init(
                address: .hostname(configuration.host, port: configuration.port), serverName: "onebit"),
            onServerRunning: { channel in
                let port = channel.localAddress?.port ?? configuration.port
                let host = configuration.host == "0.0.0.0" ? "127.0.0.1" : configuration.host
                runner?.serverURL = "http://\(host):\(port)"
                triggers?.start()
                onListening(port)
            })
        try await app.runService()
        await mcp.closeAll()
        triggers?.stop()
        scheduler.shutdown()
    }
}
