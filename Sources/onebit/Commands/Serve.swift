import ArgumentParser
import Dispatch
import OnebitEngine
import OnebitModel
import OnebitServer
import OnebitSpecialists

#if canImport(Glibc)
    import Glibc
#endif

/// `onebit serve`: the OpenAI-compatible HTTP server.
struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Serve the model over an OpenAI-compatible HTTP API, with a chat page at /.",
        discussion: """
            Routes: /v1/chat/completions, /v1/completions, /v1/models, /v1/specialists, /v1/reports, /tokenize, \
            /detokenize, /health, /metrics, and /mcp (the model's tools for MCP clients, over streamable HTTP). \
            Requests run in continuous batches of up to --max-concurrency sequences; more wait in a queue, and a \
            full queue is answered with 429. Specialists with a schedule or git-commit trigger, and every --watch, \
            run in the background; their reports are kept in the reports/ folder of the configuration directory.
            """
    )

    @OptionGroup var options: ModelOptions

    @Option(help: "Address to listen on; 0.0.0.0 makes the server reachable from other machines.")
    var host = "127.0.0.1"

    @Option(help: "TCP port (0 picks a free one).")
    var port = 8080

    @Option(help: "Require 'Authorization: Bearer KEY' on the API routes.")
    var apiKey: String?

    @Option(help: "Most requests generating at once (1-64).")
    var maxConcurrency = 4

    @Option(help: "Most requests waiting for a free slot before new ones are refused with 429.")
    var maxQueue = 64

    @Option(help: "Context window per request in tokens (default: the model's, at most 4096).")
    var ctx: Int?

    @Option(
        help: """
            KV cache blocks all requests share (default: enough for every request to fill its context). Fewer bound \
            the cache memory; requests then wait for blocks, and one that finds none while generating ends with \
            finish_reason "length".
            """)
    var kvBlocks: Int?

    @Option(
        help: ArgumentHelp(
            "Decoding steps queued before their tokens are read back, while every running request decodes greedily "
                + "or samples at a temperature (with min-p, top-k and top-p) (default: 8 on the GPU, which chooses each "
                + "step's tokens and feeds them to the next itself; 1 on the CPU); tokens then stream in bursts of up "
                + "to this many.", valueName: "steps"))
    var stepsAhead: Int?

    @Option(
        help: """
            Serve random weights of a published shape instead of a model (\(SyntheticShape.names.joined(separator: ", "))) \
            with the built-in model's tokenizer and vocabulary: for measuring serving speed at a real model's size.
            """)
    var synthetic: String?

    @Option(
        help: ArgumentHelp(
            "The directory of specialist definitions (*.toml) to serve beside the built-ins (default: specialists/ "
                + "of $ONEBIT_CONFIG_DIR, $XDG_CONFIG_HOME/onebit or ~/.config/onebit).", valueName: "dir"))
    var specialistsConfig: String?

    @Option(
        help: ArgumentHelp(
            "Run COMMAND (default: swift build) in the git repository REPO on each of its new commits and keep an "
                + "anvil report of it; repeatable.", valueName: "REPO[=COMMAND]"))
    var watch: [String] = []

    @Option(help: "Seconds between looks at a watched repository's HEAD.")
    var watchInterval = 30

    @Flag(help: "Run the server as a child process and restart it when it exits or fails its health checks.")
    var supervise = false

    func validate() throws {
        guard (1...64).contains(maxConcurrency) else { throw ValidationError("--max-concurrency must be 1 to 64") }
        guard maxQueue >= 0 else { throw ValidationError("--max-queue must be at least 0") }
        guard (0...65535).contains(port) else { throw ValidationError("--port must be 0 to 65535") }
        if let ctx, ctx < 2 { throw ValidationError("--ctx must be at least 2") }
        if let kvBlocks, kvBlocks < 1 { throw ValidationError("--kv-blocks must be at least 1") }
        if let stepsAhead, stepsAhead < 1 { throw ValidationError("--steps-ahead must be at least 1") }
        if let synthetic, SyntheticShape(name: synthetic) == nil {
            throw ValidationError("unknown shape \(synthetic); known: \(SyntheticShape.names.joined(separator: ", "))")
        }
        if synthetic != nil, options.model != nil {
            throw ValidationError("--synthetic and --model exclude each other")
        }
        guard watchInterval >= 1 else { throw ValidationError("--watch-interval must be at least 1 second") }
        if supervise, port == 0 { throw ValidationError("--supervise needs a fixed --port to check the server") }
        if watch.contains(where: { $0.isEmpty || $0.hasPrefix("=") }) {
            throw ValidationError("--watch needs a repository path: --watch REPO or --watch REPO=COMMAND")
        }
    }

    func run() async throws {
        if supervise { return try runSupervisor() }
        let root = SpecialistPaths.configRoot()
        var catalog = try SpecialistCatalog.load(
            configDirectory: specialistsConfig ?? SpecialistPaths.specialistsDirectory(root: root))
        for spec in watch {
            let parts = spec.split(separator: "=", maxSplits: 1)
            let command = parts.count == 2 ? String(parts[1]) : "swift build"
            let name = catalog.watch(repository: String(parts[0]), command: command, interval: watchInterval)
            writeError("onebit: watching \(parts[0]) (\(name): \(command))\n")
        }
        let language = try synthetic.map(loadSynthetic) ?? options.loadPrepared()
        let model = language.model
        let context = ctx ?? min(model.config.contextLength, 4096)
        let id = synthetic ?? options.model.map(Self.modelID) ?? EmbeddedModel.id
        let configuration = ServerConfiguration(
            host: host, port: port, apiKey: apiKey,
            scheduler: SchedulerConfiguration(
                maxConcurrency: maxConcurrency, contextLength: context, maxQueued: maxQueue, keyValueBlocks: kvBlocks,
                stepsAhead: stepsAhead),
            specialists: catalog, reportsDirectory: SpecialistPaths.reportsDirectory(root: root))
        let host = host
        try await OnebitServer.run(
            model: language, id: id, configuration: configuration,
            onListening: { port in
                writeError(
                    "onebit: serving \(id) on http://\(host):\(port) (context \(context), \(maxConcurrency) at once)\n")
            }, log: { writeError("onebit: \($0)\n") })
    }

    /// `--supervise`: this process starts the same command without the flag as its child and keeps it alive.
    private func runSupervisor() throws {
        var arguments = CommandLine.arguments.filter { $0 != "--supervise" }
        arguments[0] = Self.executablePath() ?? arguments[0]
        let checkHost = host == "0.0.0.0" ? "127.0.0.1" : host
        let supervisor = ServerSupervisor(
            configuration: SupervisorConfiguration(
                arguments: arguments, healthURL: "http://\(checkHost):\(port)/health"),
            log: { writeError("onebit: \($0)\n") })
        // Signals stop the child first; the sources keep the default action from killing the parent before that.
        let sources = [SIGINT, SIGTERM].map { number in
            signal(number, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
            source.setEventHandler { supervisor.stop() }
            source.resume()
            return source
        }
        defer { sources.forEach { $0.cancel() } }
        try supervisor.run()
    }

    /// This executable's path, so the child is the same binary however it was started.
    private static func executablePath() -> String? {
        var buffer = [CChar](repeating: 0, count: 4096)
        let count = readlink("/proc/self/exe", &buffer, buffer.count - 1)
        guard count > 0 else { return nil }
        return String(decoding: buffer[0..<count].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// The built-in model with the layers of shape `name` (random ternary weights) and its own vocabulary, so every
    /// generated token has text to stream.
    private func loadSynthetic(_ name: String) throws -> LanguageModel {
        var model = try EmbeddedModel.load()
        var shape = SyntheticShape(name: name)!
        shape.config.vocabSize = model.config.vocabSize
        model.config = shape.config
        model.weights = shape.makeWeights()
        return try options.prepare(model)
    }

    /// The last path component, without a `.gguf` extension.
    static func modelID(_ origin: String) -> String {
        let name = origin.split(separator: "/").last.map(String.init) ?? origin
        return name.hasSuffix(".gguf") ? String(name.dropLast(5)) : name
    }
}
