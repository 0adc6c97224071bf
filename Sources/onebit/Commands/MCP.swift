import ArgumentParser
import MCP
import OnebitEngine
import OnebitMCP
import OnebitModel
import OnebitServer
import OnebitSpecialists

/// `onebit mcp`: the model's tools for an MCP client, over standard input and output.
struct MCPCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "mcp",
        abstract: "Serve the model's tools to an MCP client over standard input and output.",
        discussion: """
            Tools: chat, complete, tokenize, score, perplexity, model_info, health, one per specialist (see \
            `onebit specialists list`), list_reports and get_report. Standard output carries the \
            protocol (newline-delimited JSON-RPC); messages go to standard error. The command ends when standard \
            input closes and every request read has been answered. Register it with a client, e.g. \
            `claude mcp add onebit -- onebit mcp`.
            """
    )

    @OptionGroup var options: ModelOptions

    @Option(help: "Context window per request in tokens (default: the model's, at most 4096).")
    var ctx: Int?

    @Option(help: "Most generations running at once (1-64).")
    var maxConcurrency = 4

    func validate() throws {
        guard (1...64).contains(maxConcurrency) else { throw ValidationError("--max-concurrency must be 1 to 64") }
        if let ctx, ctx < 2 { throw ValidationError("--ctx must be at least 2") }
    }

    func run() async throws {
        let language = try options.loadPrepared()
        let context = ctx ?? min(language.contextLength, 4096)
        let id = options.model.map(Serve.modelID) ?? EmbeddedModel.id
        let served = ServedModel(
            id: id, tokenizer: language.model.tokenizer, chatTemplate: language.model.chatTemplate)
        let info = ModelInfo(id: id, model: language, contextLength: context)
        let scheduler = Scheduler(
            model: language,
            configuration: SchedulerConfiguration(maxConcurrency: maxConcurrency, contextLength: context))
        let tools = ToolRegistry()
        ModelTools(model: served, scheduler: scheduler, info: info).register(in: tools)
        let root = SpecialistPaths.configRoot()
        let catalog = try SpecialistCatalog.load(configDirectory: SpecialistPaths.specialistsDirectory(root: root))
        let runner = SpecialistRunner(
            catalog: catalog,
            model: SpecialistModel(
                scheduler: scheduler, tokenizer: served.tokenizer, chatTemplate: served.chatTemplate,
                vocabulary: served.vocabulary),
            reports: ReportStore(directory: SpecialistPaths.reportsDirectory(root: root)))
        SpecialistTools.register(runner, in: tools)
        let server = await tools.makeServer()
        try await server.start(transport: DrainingTransport(StdioTransport()))
        writeError("onebit: MCP server for \(id) on standard input and output (context \(context))\n")
        await server.waitUntilCompleted()
        scheduler.shutdown()
    }
}
