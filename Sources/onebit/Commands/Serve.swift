import ArgumentParser
import OnebitEngine
import OnebitModel
import OnebitServer

/// `onebit serve`: the OpenAI-compatible HTTP server.
struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Serve the model over an OpenAI-compatible HTTP API, with a chat page at /.",
        discussion: """
            Routes: /v1/chat/completions, /v1/completions, /v1/models, /tokenize, /detokenize, /health, /metrics, \
            and /mcp (the model's tools for MCP clients, over streamable HTTP). \
            Requests run in continuous batches of up to --max-concurrency sequences; more wait in a queue, and a \
            full queue is answered with 429.
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
        help: """
            Serve random weights of a published shape instead of a model (\(SyntheticShape.names.joined(separator: ", "))) \
            with the built-in model's tokenizer and vocabulary: for measuring serving speed at a real model's size.
            """)
    var synthetic: String?

    func validate() throws {
        guard (1...64).contains(maxConcurrency) else { throw ValidationError("--max-concurrency must be 1 to 64") }
        guard maxQueue >= 0 else { throw ValidationError("--max-queue must be at least 0") }
        guard (0...65535).contains(port) else { throw ValidationError("--port must be 0 to 65535") }
        if let ctx, ctx < 2 { throw ValidationError("--ctx must be at least 2") }
        if let kvBlocks, kvBlocks < 1 { throw ValidationError("--kv-blocks must be at least 1") }
        if let synthetic, SyntheticShape(name: synthetic) == nil {
            throw ValidationError("unknown shape \(synthetic); known: \(SyntheticShape.names.joined(separator: ", "))")
        }
        if synthetic != nil, options.model != nil {
            throw ValidationError("--synthetic and --model exclude each other")
        }
    }

    func run() async throws {
        let language = try synthetic.map(loadSynthetic) ?? options.loadPrepared()
        let model = language.model
        let context = ctx ?? min(model.config.contextLength, 4096)
        let id = synthetic ?? options.model.map(Self.modelID) ?? EmbeddedModel.id
        let configuration = ServerConfiguration(
            host: host, port: port, apiKey: apiKey,
            scheduler: SchedulerConfiguration(
                maxConcurrency: maxConcurrency, contextLength: context, maxQueued: maxQueue, keyValueBlocks: kvBlocks))
        let host = host
        try await OnebitServer.run(model: language, id: id, configuration: configuration) { port in
            writeError(
                "onebit: serving \(id) on http://\(host):\(port) (context \(context), \(maxConcurrency) at once)\n")
        }
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
