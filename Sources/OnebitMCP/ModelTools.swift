import OnebitEngine
import OnebitModel

/// What `model_info` reports about the loaded model.
public struct ModelInfo: Sendable, Equatable {
    /// The id the server names the model by.
    public var id: String
    /// The file format it was loaded from.
    public var format: String
    /// Transformer layers.
    public var layers: Int
    /// Tokens in the vocabulary.
    public var vocabularySize: Int
    /// Tokens one request may hold (prompt plus output).
    public var contextLength: Int
    /// Where it runs, in words.
    public var device: String

    /// Describes a model.
    public init(id: String, format: String, layers: Int, vocabularySize: Int, contextLength: Int, device: String) {
        self.id = id
        self.format = format
        self.layers = layers
        self.vocabularySize = vocabularySize
        self.contextLength = contextLength
        self.device = device
    }

    /// Reads the description off a prepared model served with a context of `contextLength` tokens.
    public init(id: String, model: LanguageModel, contextLength: Int) {
        self.init(
            id: id, format: model.model.formatDetails.first { $0.key == "format" }?.value ?? "unknown",
            layers: model.model.config.layerCount, vocabularySize: model.model.config.vocabSize,
            contextLength: contextLength, device: model.deviceDescription)
    }
}

/// The model's own tools: `chat`, `complete`, `tokenize`, `score`, `perplexity`, `model_info` and `health`.
///
/// Generation goes through the scheduler, so MCP calls are batched with HTTP requests; scoring and perplexity run
/// on the engine thread between steps (``Scheduler/withExclusiveModel(_:)``) and are limited to one context.
public struct ModelTools: Sendable {
    /// Tokenizer, chat template and vocabulary trie.
    public let model: ServedModel
    /// The engine every generation goes through.
    public let scheduler: Scheduler
    /// What `model_info` reports.
    public let info: ModelInfo
    private let started = ContinuousClock.now

    /// Tools over `model` served by `scheduler`.
    public init(model: ServedModel, scheduler: Scheduler, info: ModelInfo) {
        self.model = model
        self.scheduler = scheduler
        self.info = info
    }

    /// Tokens a score or perplexity text may have, and a generation's prompt plus output.
    var contextLength: Int { scheduler.configuration.contextLength }

    /// Adds every tool to `registry`.
    public func register(in registry: ToolRegistry) {
        registry.add(
            name: "chat",
            description: """
                Reply to a conversation with the local model. Send `messages` (role and content) or a single \
                `prompt`; `json_schema` constrains the reply to JSON that validates against it (the parsed value \
                is returned as `json`; object members come out in key order).
                """,
            inputSchema: Schema.object(
                Self.withSampling([
                    "messages": Schema.array(
                        Schema.object(
                            [
                                "role": Schema.string("system, user, assistant or tool"),
                                "content": Schema.string(),
                            ], required: ["role", "content"], closed: false),
                        description: "The conversation so far; give this or prompt."),
                    "prompt": Schema.string("A single user message; give this or messages."),
                    "json_schema": Schema.object(
                        [:], closed: false, description: "A JSON Schema the reply must validate against."),
                ])),
            outputSchema: Self.generationOutput(withJSON: true)
        ) { [self] input in try await chat(ToolArguments(input)) }

        registry.add(
            name: "complete",
            description: "Continue a text with the local model (no chat template).",
            inputSchema: Schema.object(
                Self.withSampling(["prompt": Schema.string("The text to continue.")]),
                required: ["prompt"]),
            outputSchema: Self.generationOutput(withJSON: false)
        ) { [self] input in try await complete(ToolArguments(input)) }

        registry.add(
            name: "tokenize",
            description: "Split a text into the model's token ids.",
            inputSchema: Schema.object(
                [
                    "text": Schema.string("The text."),
                    "add_special": Schema.boolean("Add the tokens the model puts around a text (BOS); default false."),
                ], required: ["text"]),
            outputSchema: Schema.object(
                ["ids": Schema.array(Schema.integer()), "count": Schema.integer(minimum: 0)],
                required: ["ids", "count"])
        ) { [self] input in try tokenize(ToolArguments(input)) }

        registry.add(
            name: "score",
            description: """
                Teacher-forced log-probabilities of a text: each token with its text and natural-log \
                probability given the tokens before it (null for the first). The text must fit the context.
                """,
            inputSchema: Schema.object(["text": Schema.string("The text to score.")], required: ["text"]),
            outputSchema: Schema.object(
                [
                    "tokens": Schema.array(
                        Schema.object(
                            ["id": Schema.integer(), "text": Schema.string(), "logprob": Schema.nullableNumber()],
                            required: ["id", "text", "logprob"])),
                    "count": Schema.integer(minimum: 0),
                    "total_logprob": Schema.number("Sum of the log-probabilities."),
                ], required: ["tokens", "count", "total_logprob"])
        ) { [self] input in try await score(ToolArguments(input)) }

        registry.add(
            name: "perplexity",
            description: "Perplexity of the model on a text (one window; the text must fit the context).",
            inputSchema: Schema.object(["text": Schema.string("The text, at least two tokens.")], required: ["text"]),
            outputSchema: Schema.object(
                [
                    "perplexity": Schema.number(minimum: 1), "mean_nll": Schema.number("Nats per token."),
                    "tokens": Schema.integer("Tokens predicted.", minimum: 1),
                ], required: ["perplexity", "mean_nll", "tokens"])
        ) { [self] input in try await perplexity(ToolArguments(input)) }

        registry.add(
            name: "model_info",
            description: "What model is loaded: id, format, layers, vocabulary, context and device.",
            inputSchema: Schema.object([:]),
            outputSchema: Schema.object(
                [
                    "id": Schema.string(), "format": Schema.string(), "layers": Schema.integer(minimum: 1),
                    "vocab_size": Schema.integer(minimum: 1), "context_length": Schema.integer(minimum: 1),
                    "device": Schema.string(),
                ], required: ["id", "format", "layers", "vocab_size", "context_length", "device"])
        ) { [info] _ in
            .object([
                "id": .string(info.id), "format": .string(info.format), "layers": .integer(info.layers),
                "vocab_size": .integer(info.vocabularySize), "context_length": .integer(info.contextLength),
                "device": .string(info.device),
            ])
        }

        registry.add(
            name: "health",
            description: "Whether the engine is up, how busy it is, and for how long it has run.",
            inputSchema: Schema.object([:]),
            outputSchema: Schema.object(
                [
                    "status": Schema.string(enumeration: ["ok"]),
                    "queued": Schema.integer("Requests waiting for a slot.", minimum: 0),
                    "running": Schema.integer("Sequences generating.", minimum: 0),
                    "uptime_seconds": Schema.number(minimum: 0),
                ], required: ["status", "queued", "running", "uptime_seconds"])
        ) { [self] _ in
            let statistics = scheduler.statistics
            let (seconds, attoseconds) = (ContinuousClock.now - started).components
            return .object([
                "status": .string("ok"), "queued": .integer(statistics.queued),
                "running": .integer(statistics.running),
                "uptime_seconds": .number(Double(seconds) + Double(attoseconds) * 1e-18),
            ])
        }
    }

    // MARK: - Tools

    private func chat(_ arguments: ToolArguments) async throws -> JSONValue {
        let messages = try Self.messages(arguments)
        let prompt: [Int]
        do {
            prompt = try model.chatPrompt(messages)
        } catch {
            throw ToolError.invalidArgument(
                name: "messages", message: "the chat template could not render them: \(error.description)")
        }
        let grammar = try grammar(arguments)
        return try await generate(
            prompt, arguments, promptArgument: arguments.value("prompt") != nil ? "prompt" : "messages",
            grammar: grammar)
    }

    private func complete(_ arguments: ToolArguments) async throws -> JSONValue {
        let text = try arguments.requiredString("prompt")
        return try await generate(
            model.tokenizer.encode(text, addSpecialTokens: true), arguments, promptArgument: "prompt", grammar: nil)
    }

    private func tokenize(_ arguments: ToolArguments) throws -> JSONValue {
        let text = try arguments.requiredString("text")
        let ids = model.tokenizer.encode(text, addSpecialTokens: try arguments.bool("add_special") ?? false)
        return .object(["ids": .array(ids.map(JSONValue.integer)), "count": .integer(ids.count)])
    }

    private func score(_ arguments: ToolArguments) async throws -> JSONValue {
        let tokens = model.tokenizer.encode(try arguments.requiredString("text"), addSpecialTokens: true)
        guard !tokens.isEmpty else { throw ToolError.invalidArgument(name: "text", message: "it has no tokens") }
        try checkFits(tokens.count, "text")
        let logprobs = try await scheduler.withExclusiveModel { try $0.score(tokens) }
        let tokenizer = model.tokenizer
        let entries = zip(tokens, logprobs).map { id, logprob -> JSONValue in
            .object([
                "id": .integer(id), "text": .string(tokenizer.decode([id])),
                "logprob": logprob.map(JSONValue.number) ?? .null,
            ])
        }
        return .object([
            "tokens": .array(entries), "count": .integer(tokens.count),
            "total_logprob": .number(logprobs.reduce(0) { $0 + ($1 ?? 0) }),
        ])
    }

    private func perplexity(_ arguments: ToolArguments) async throws -> JSONValue {
        let tokens = model.tokenizer.encode(try arguments.requiredString("text"), addSpecialTokens: false)
        let tokenizer = model.tokenizer
        let prefix = tokenizer.addsBOS ? tokenizer.bosTokenID.map { [$0] } ?? [] : []
        guard prefix.count + tokens.count >= 2, !tokens.isEmpty else {
            throw ToolError.invalidArgument(name: "text", message: "it needs at least two tokens to predict one")
        }
        let window = prefix.count + tokens.count
        try checkFits(window, "text")
        let result = try await scheduler.withExclusiveModel {
            try $0.perplexity(tokens, prefix: prefix, context: window, stride: window)
        }
        return .object([
            "perplexity": .number(result.perplexity), "mean_nll": .number(result.meanNegativeLogLikelihood),
            "tokens": .integer(result.tokenCount),
        ])
    }

    // MARK: - Generation

    /// `properties` followed by the sampling arguments that `chat` and `complete` share.
    static func withSampling(_ properties: KeyValuePairs<String, JSONValue>) -> [(String, JSONValue)] {
        properties.map { ($0.key, $0.value) } + samplingProperties.map { ($0.key, $0.value) }
    }

    private static let samplingProperties: KeyValuePairs<String, JSONValue> = [
        "max_tokens": Schema.integer("Most tokens to generate (default 256, within the context).", minimum: 1),
        "temperature": Schema.number("Sampling temperature; 0 is greedy (default 0.8).", minimum: 0, maximum: 2),
        "seed": Schema.integer("Seed for reproducible sampling (default random)."),
    ]

    /// Output of `chat` and `complete`.
    static func generationOutput(withJSON: Bool) -> JSONValue {
        let usage = Schema.object(
            ["prompt_tokens": Schema.integer(minimum: 0), "completion_tokens": Schema.integer(minimum: 0)],
            required: ["prompt_tokens", "completion_tokens"])
        let finish = Schema.string(
            "stop: the model ended or the JSON value is complete; length: max_tokens or the context was reached.",
            enumeration: ["stop", "length"])
        if withJSON {
            return Schema.object(
                [
                    "text": Schema.string(), "finish_reason": finish, "usage": usage,
                    "json": Schema.any("The reply parsed, when json_schema was given and the reply is complete."),
                ], required: ["text", "finish_reason", "usage"])
        }
        return Schema.object(
            ["text": Schema.string(), "finish_reason": finish, "usage": usage],
            required: ["text", "finish_reason", "usage"])
    }

    /// Runs one generation through the scheduler and collects its text.
    private func generate(
        _ prompt: [Int], _ arguments: ToolArguments, promptArgument: String, grammar: JSONGrammar?
    ) async throws -> JSONValue {
        guard !prompt.isEmpty else { throw ToolError.invalidArgument(name: promptArgument, message: "it is empty") }
        guard prompt.count < contextLength else {
            throw ToolError.invalidArgument(
                name: promptArgument,
                message: "it has \(prompt.count) tokens but the context holds \(contextLength); shorten it")
        }
        let maxTokens = try arguments.integer("max_tokens", in: 1...Int.max) ?? 256
        let sampling = SamplingParameters(
            temperature: Float(try arguments.number("temperature", in: 0...2) ?? 0.8),
            seed: try arguments.integer("seed").map { UInt64(bitPattern: Int64($0)) } ?? .random(in: 0...UInt64.max))
        let request = GenerationRequest(
            prompt: prompt, maxTokens: min(maxTokens, contextLength - prompt.count), sampling: sampling,
            constraint: grammar.map { TokenConstraint(grammar: $0, vocabulary: model.vocabulary) })
        let stream: GenerationStream
        do {
            stream = try scheduler.submit(request)
        } catch {
            switch error {
            case .promptTooLong, .emptyPrompt, .invalidToken:
                throw ToolError.invalidArgument(name: promptArgument, message: error.description)
            case .overloaded, .shutDown:
                throw ToolError.failed(error.description)
            }
        }
        var ids: [Int] = []
        var ending: (FinishReason, GenerationUsage)?
        // A cancelled call (notifications/cancelled) ends this loop; the stream's end frees the sequence.
        for await event in stream {
            switch event {
            case .token(let token): ids.append(token.id)
            case .finished(let reason, let usage): ending = (reason, usage)
            case .failed(let message): throw ToolError.failed("generation failed: \(message)")
            }
        }
        guard let (reason, usage) = ending else { throw CancellationError() }
        let text = model.tokenizer.decode(ids, skipSpecialTokens: true)
        var output: [(String, JSONValue)] = [
            ("text", .string(text)), ("finish_reason", .string(reason == .length ? "length" : "stop")),
            (
                "usage",
                .object([
                    "prompt_tokens": .integer(usage.promptTokens),
                    "completion_tokens": .integer(usage.completionTokens),
                ])
            ),
        ]
        if grammar != nil, let value = try? JSONValue(parsing: text) { output.append(("json", value)) }
        return .object(.init(uniqueKeysWithValues: output))
    }

    /// The conversation of a `chat` call: `messages`, or `prompt` as one user message.
    private static func messages(_ arguments: ToolArguments) throws(ToolError) -> [JSONValue] {
        let list = try arguments.array("messages")
        let prompt = try arguments.string("prompt")
        switch (list, prompt) {
        case (nil, nil):
            throw .invalidArgument(name: "messages", message: "give messages or prompt")
        case (.some, .some):
            throw .invalidArgument(name: "prompt", message: "give messages or prompt, not both")
        case (nil, let prompt?):
            return [.object(["role": .string("user"), "content": .string(prompt)])]
        case (let list?, nil):
            guard !list.isEmpty else { throw .invalidArgument(name: "messages", message: "it holds no message") }
            return try list.enumerated().map { (index, message) throws(ToolError) -> JSONValue in
                let path = "messages[\(index)]"
                guard message.objectValue != nil else {
                    throw .invalidArgument(name: path, message: "it must be an object")
                }
                guard let role = message["role"]?.stringValue else {
                    throw .invalidArgument(
                        name: path + ".role", message: "it must be a string (system, user, assistant or tool)")
                }
                guard let content = message["content"]?.stringValue else {
                    throw .invalidArgument(name: path + ".content", message: "it must be a string")
                }
                return .object(["role": .string(role), "content": .string(content)])
            }
        }
    }

    /// The grammar `json_schema` asks for, if any.
    private func grammar(_ arguments: ToolArguments) throws(ToolError) -> JSONGrammar? {
        guard let schema = try arguments.object("json_schema") else { return nil }
        guard model.vocabulary.longestToken > 0 else {
            throw .invalidArgument(
                name: "json_schema",
                message: "this model's tokenizer has no decoder, so its tokens have no fixed bytes and the output "
                    + "cannot be constrained; leave json_schema out")
        }
        do {
            return try JSONGrammar(schema: schema, strict: false)
        } catch {
            throw .invalidArgument(name: "json_schema", message: error.description)
        }
    }

    private func checkFits(_ count: Int, _ argument: String) throws(ToolError) {
        guard count <= contextLength else {
            throw .invalidArgument(
                name: argument,
                message: "it has \(count) tokens but at most \(contextLength) fit the context; send a shorter text")
        }
    }
}
