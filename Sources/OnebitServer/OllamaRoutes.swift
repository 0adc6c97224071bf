import FoundationEssentials
import Hummingbird
import OnebitEngine
import OnebitModel

/// Ollama's API under `/api`, for the apps that speak it rather than OpenAI's: the served model listed as
/// `ID:latest`, `/api/chat` and `/api/generate` answering one JSON object or (Ollama's default) a stream of
/// newline-delimited JSON objects, and errors as Ollama writes them, `{"error": "..."}`, with the same statuses as the
/// `/v1` routes. Generation runs through the same scheduler as `/v1`, in the same batches.
enum OllamaRoutes {
    /// The Ollama release whose `/api/chat`, `/api/generate`, `/api/tags` and `/api/show` shapes these routes follow;
    /// clients read `/api/version` to tell that a server speaks the API at all.
    static let apiVersion = "0.9.0"

    /// Adds the routes to `group` (behind the API key when the server has one).
    static func add(to group: RouterGroup<ServerContext>, service: CompletionService) {
        let model = service.model
        group.get("api/version") { _, _ in CompletionService.json(.object(["version": .string(apiVersion)])) }
        group.get("api/tags") { _, _ in CompletionService.json(.object(["models": .array([listing(model)])])) }
        group.get("api/ps") { _, _ in CompletionService.json(.object(["models": .array([listing(model)])])) }
        group.post("api/show") { request, context in
            await answer { () async throws(APIError) -> Response in
                let fields = try await RequestFields(of: request, context)
                let name = try fields.string("name")
                try check(try fields.string("model") ?? name, against: model)
                return CompletionService.json(
                    .object([
                        "details": details, "model_info": .object(["general.architecture": .string("bitnet")]),
                        "capabilities": .array([.string("completion")]), "modified_at": .string(modified(model)),
                    ]))
            }
        }
        group.post("api/chat") { request, context in
            await answer { () async throws(APIError) -> Response in
                let fields = try await RequestFields(of: request, context)
                try check(try fields.string("model"), against: model)
                let messages = try chatMessages(fields)
                guard !messages.isEmpty else {
                    return loaded(model, "message", .object(["role": .string("assistant"), "content": .string("")]))
                }
                let prompt = try service.chatPrompt(messages, param: "messages")
                return try await run(service, fields, prompt: prompt, param: "messages", field: "message")
            }
        }
        group.post("api/generate") { request, context in
            await answer { () async throws(APIError) -> Response in
                let fields = try await RequestFields(of: request, context)
                try check(try fields.string("model"), against: model)
                if let images = fields.value("images"), images.arrayValue?.isEmpty != true {
                    throw .invalid("images", "images are not supported: this model reads text only")
                }
                if let suffix = try fields.string("suffix"), !suffix.isEmpty {
                    throw .invalid("suffix", "suffix is not supported: this model does not fill in the middle")
                }
                let text = try fields.string("prompt") ?? ""
                guard !text.isEmpty else { return loaded(model, "response", .string("")) }
                let prompt: [Int]
                if try fields.bool("raw") == true {
                    prompt = model.tokenizer.encode(text, addSpecialTokens: true)
                } else {
                    var messages: [JSONValue] = []
                    if let system = try fields.string("system") {
                        messages.append(.object(["role": .string("system"), "content": .string(system)]))
                    }
                    messages.append(.object(["role": .string("user"), "content": .string(text)]))
                    prompt = try service.chatPrompt(messages, param: "prompt")
                }
                return try await run(service, fields, prompt: prompt, param: "prompt", field: "response")
            }
        }
    }

    /// What is known of the model in Ollama's `details` object.
    private static let details = JSONValue.object([
        "family": .string("bitnet"), "families": .array([.string("bitnet")]), "quantization_level": .string("ternary"),
    ])

    /// The model as `/api/tags` and `/api/ps` list it.
    private static func listing(_ model: ServedModel) -> JSONValue {
        .object([
            "name": .string(model.id + ":latest"), "model": .string(model.id + ":latest"),
            "modified_at": .string(modified(model)), "details": details,
        ])
    }

    private static func modified(_ model: ServedModel) -> String {
        Date(timeIntervalSince1970: Double(model.created)).ISO8601Format()
    }

    /// Ollama names models `name:tag`; the served model answers to its id with or without `:latest`.
    private static func check(_ requested: String?, against model: ServedModel) throws(APIError) {
        guard let requested, !requested.isEmpty else {
            throw .invalid("model", "model is required: this server serves '\(model.id)'")
        }
        guard requested == model.id || requested == model.id + ":latest" else {
            throw .modelNotFound(requested, served: model.id)
        }
    }

    /// The messages of an `/api/chat` request with text content (Ollama sends strings; OpenAI's content parts are
    /// taken too).
    private static func chatMessages(_ fields: RequestFields) throws(APIError) -> [JSONValue] {
        guard let value = fields.value("messages") else { return [] }
        guard let list = value.arrayValue else { throw fields.wrongType("messages", "an array of message objects") }
        var messages: [JSONValue] = []
        for (index, message) in list.enumerated() {
            if let images = message["images"], images.arrayValue?.isEmpty != true, images != .null {
                let path = "messages[\(index)].images"
                throw .invalid(path, "\(path): images are not supported, this model reads text only")
            }
            messages.append(try ChatCompletionRequest.normalized(message, at: "messages[\(index)]"))
        }
        return messages
    }

    /// The answer to a request with nothing to generate: Ollama's "model loaded" reply.
    private static func loaded(_ model: ServedModel, _ field: String, _ empty: JSONValue) -> Response {
        CompletionService.json(
            .object([
                "model": .string(model.id), "created_at": .string(Date.now.ISO8601Format()), field: empty,
                "done": .bool(true), "done_reason": .string("load"),
            ]))
    }

    /// Starts the generation of `prompt` and answers with Ollama's objects, `field` (`message` or `response`)
    /// carrying the text.
    private static func run(
        _ service: CompletionService, _ fields: RequestFields, prompt: [Int], param: String, field: String
    ) async throws(APIError) -> Response {
        let options = try GenerationOptions(ollama: fields, vocabularySize: service.scheduler.vocabularySize)
        let started = ContinuousClock.now
        let makeGeneration = try service.start(options, prompt: prompt, param: param)
        let encoder = OllamaEncoder(model: service.model.id, field: field, started: started)
        guard options.stream else {
            var generation = makeGeneration()
            let outcome = await generation.collect()
            if let failure = outcome.failure {
                throw APIError(status: .internalServerError, message: failure, type: "server_error")
            }
            return CompletionService.json(encoder.final(text: outcome.text, reason: outcome.finishReason, generation))
        }
        return Response(
            status: .ok, headers: [.contentType: "application/x-ndjson"],
            body: ResponseBody { writer in
                var generation = makeGeneration()
                defer { generation.cancel() }
                var reason = "stop"
                func send(_ value: JSONValue) async throws {
                    try await writer.write(ByteBuffer(string: value.jsonText + "\n"))
                }
                while let piece = await generation.next() {
                    if let failure = piece.failure {
                        try await send(OllamaEncoder.error(failure))
                        try await writer.finish(nil)
                        return
                    }
                    if let finish = piece.finishReason { reason = finish }
                    if !piece.text.isEmpty { try await send(encoder.piece(piece.text)) }
                }
                try await send(encoder.final(text: "", reason: reason, generation))
                try await writer.finish(nil)
            })
    }

    /// Runs `body`, answering an error as Ollama does.
    private static func answer(_ body: () async throws(APIError) -> Response) async -> Response {
        do {
            return try await body()
        } catch {
            var headers: HTTPFields = [.contentType: "application/json"]
            if let retryAfter = error.retryAfter { headers[.retryAfter] = String(retryAfter) }
            return Response(
                status: error.status, headers: headers,
                body: .init(byteBuffer: ByteBuffer(string: OllamaEncoder.error(error.message).jsonText)))
        }
    }
}

/// Builds Ollama's response objects for one generation.
struct OllamaEncoder: Sendable {
    let model: String
    /// `message` (`/api/chat`) or `response` (`/api/generate`).
    let field: String
    /// When the request came in.
    let started: ContinuousClock.Instant

    /// A streamed piece of text.
    func piece(_ text: String) -> JSONValue {
        .object([
            "model": .string(model), "created_at": .string(Date.now.ISO8601Format()), field: content(text),
            "done": .bool(false),
        ])
    }

    /// The last object of `generation`, which has ended: the rest of the text (all of it when not streamed), why it
    /// ended, token counts and durations in nanoseconds (prompt: until the first token; generation: from the first
    /// token to the last).
    func final(text: String, reason: String, _ generation: Generation) -> JSONValue {
        let (now, usage) = (ContinuousClock.now, generation.usage)
        let first = generation.firstToken ?? now
        return .object([
            "model": .string(model), "created_at": .string(Date.now.ISO8601Format()), field: content(text),
            "done": .bool(true), "done_reason": .string(reason),
            "total_duration": .integer(Self.nanoseconds(now - started)), "load_duration": .integer(0),
            "prompt_eval_count": .integer(usage.promptTokens),
            "prompt_eval_duration": .integer(Self.nanoseconds(first - started)),
            "eval_count": .integer(usage.completionTokens),
            "eval_duration": .integer(Self.nanoseconds((generation.lastToken ?? first) - first)),
        ])
    }

    /// An error object, as Ollama writes one (also as the last line of a stream that failed).
    static func error(_ message: String) -> JSONValue { .object(["error": .string(message)]) }

    private func content(_ text: String) -> JSONValue {
        field == "message" ? .object(["role": .string("assistant"), "content": .string(text)]) : .string(text)
    }

    private static func nanoseconds(_ duration: Duration) -> Int {
        let (seconds, attoseconds) = duration.components
        return Int(seconds) * 1_000_000_000 + Int(attoseconds / 1_000_000_000)
    }
}
