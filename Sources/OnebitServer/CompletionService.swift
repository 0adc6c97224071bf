import Hummingbird
import OnebitEngine
import OnebitModel

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Runs completions: validates a request, turns it into prompt tokens, submits it to the scheduler, and answers
/// with one JSON object or a stream of server-sent events.
struct CompletionService: Sendable {
    let model: ServedModel
    let scheduler: Scheduler
    let metrics: ServerMetrics

    func chat(_ fields: RequestFields) async throws(APIError) -> Response {
        let request = try ChatCompletionRequest(fields, vocabularySize: scheduler.vocabularySize)
        try checkModel(request.options.model)
        let prompt = try chatPrompt(request.messages, param: "messages")
        return try await run(
            .chat, request.options, prompt: prompt, topLogprobs: request.topLogprobs, param: "messages")
    }

    func complete(_ fields: RequestFields) async throws(APIError) -> Response {
        let request = try TextCompletionRequest(fields, vocabularySize: scheduler.vocabularySize)
        try checkModel(request.options.model)
        let prompt: [Int]
        let echo: String
        switch request.prompt {
        case .text(let text):
            prompt = model.tokenizer.encode(text, addSpecialTokens: true)
            echo = text
        case .tokens(let ids):
            prompt = ids
            echo = model.tokenizer.decode(ids)
        }
        return try await run(
            .text, request.options, prompt: prompt, topLogprobs: request.topLogprobs, param: "prompt",
            echo: request.echo ? echo : "")
    }

    /// `messages` rendered by the model's chat template and tokenized; `param` names the field at fault.
    func chatPrompt(_ messages: [JSONValue], param: String) throws(APIError) -> [Int] {
        do {
            return try model.chatPrompt(messages)
        } catch {
            throw .invalid(param, "the chat template could not render the \(param): \(error.description)")
        }
    }

    private func checkModel(_ requested: String?) throws(APIError) {
        guard let requested, requested != model.id else { return }
        throw .modelNotFound(requested, served: model.id)
    }

    private func run(
        _ kind: CompletionKind, _ options: GenerationOptions, prompt: [Int], topLogprobs: Int?, param: String,
        echo: String = ""
    ) async throws(APIError) -> Response {
        let makeGeneration = try start(options, prompt: prompt, topLogprobs: topLogprobs, param: param)
        let encoder = ResponseEncoder(
            kind: kind, id: (kind == .chat ? "chatcmpl-" : "cmpl-") + Self.randomID(), created: Int(time(nil)),
            model: model.id, tokenizer: model.tokenizer)
        if options.stream {
            return streamed(makeGeneration, encoder: encoder, includeUsage: options.includeUsage, echo: echo)
        }
        var generation = makeGeneration()
        let outcome = await generation.collect()
        if let failure = outcome.failure {
            throw APIError(status: .internalServerError, message: failure, type: "server_error")
        }
        let body = encoder.completion(
            text: echo + outcome.text, logprobs: topLogprobs != nil ? outcome.logprobs : nil,
            finishReason: outcome.finishReason, usage: outcome.usage)
        return Self.json(body)
    }

    /// Checks `prompt` against the context (`param` names the field at fault in errors) and submits it to the
    /// scheduler; the generation it returns is read on the task that answers.
    func start(
        _ options: GenerationOptions, prompt: [Int], topLogprobs: Int? = nil, param: String
    ) throws(APIError) -> @Sendable () -> Generation {
        let context = scheduler.configuration.contextLength
        guard !prompt.isEmpty else { throw .invalid(param, "the prompt is empty") }
        guard prompt.count < context else {
            throw .invalid(
                param,
                "this model's context holds \(context) tokens, but the prompt has \(prompt.count); shorten it or "
                    + "start the server with a larger --ctx",
                code: "context_length_exceeded")
        }
        if options.grammar != nil, model.vocabulary.longestToken == 0 {
            throw .invalid(
                "response_format",
                "this model's tokenizer has no decoder (tokenizer.json \"decoder\": null), so its tokens have no "
                    + "fixed bytes and response_format cannot be enforced; leave response_format out")
        }
        let request = GenerationRequest(
            prompt: prompt, maxTokens: options.maxTokens ?? (context - prompt.count), sampling: options.sampling,
            presencePenalty: options.presencePenalty, frequencyPenalty: options.frequencyPenalty,
            logitBias: options.logitBias, topLogprobs: topLogprobs,
            constraint: options.grammar.map { TokenConstraint(grammar: $0, vocabulary: model.vocabulary) })
        let stream: GenerationStream
        do {
            stream = try scheduler.submit(request)
        } catch {
            throw Self.apiError(error, param: param)
        }
        metrics.recordPromptTokens(prompt.count)
        let (tokenizer, stop, metrics) = (model.tokenizer, options.stop, metrics)
        return { @Sendable in
            Generation(
                stream: stream, assembler: TextAssembler(tokenizer: tokenizer, stop: stop),
                promptTokens: prompt.count, wantsLogprobs: topLogprobs != nil, metrics: metrics)
        }
    }

    /// An SSE response. The body runs after the handler returns; a client that goes away makes a write throw,
    /// and the generation is cancelled on the way out.
    private func streamed(
        _ makeGeneration: @escaping @Sendable () -> Generation, encoder: ResponseEncoder, includeUsage: Bool,
        echo: String
    ) -> Response {
        let headers: HTTPFields = [
            .contentType: "text/event-stream", .cacheControl: "no-cache", .connection: "keep-alive",
        ]
        return Response(
            status: .ok, headers: headers,
            body: ResponseBody { writer in
                var generation = makeGeneration()
                defer { generation.cancel() }
                func send(_ value: JSONValue) async throws {
                    try await writer.write(ByteBuffer(string: ServerSentEvents.frame(value)))
                }
                if encoder.kind == .chat || !echo.isEmpty {
                    try await send(
                        encoder.chunk(
                            text: echo, role: encoder.kind == .chat, logprobs: nil, finishReason: nil,
                            usage: includeUsage))
                }
                while let piece = await generation.next() {
                    if let failure = piece.failure {
                        let error = APIError(status: .internalServerError, message: failure, type: "server_error")
                        try await writer.write(ByteBuffer(string: ServerSentEvents.frame(error.json)))
                        try await writer.finish(nil)
                        return
                    }
                    let logprobs = generation.wantsLogprobs && !piece.tokens.isEmpty ? piece.tokens : nil
                    if !piece.text.isEmpty || logprobs != nil || piece.finishReason != nil {
                        try await send(
                            encoder.chunk(
                                text: piece.text, logprobs: logprobs, finishReason: piece.finishReason,
                                usage: includeUsage))
                    }
                }
                if includeUsage { try await send(encoder.usageChunk(generation.usage)) }
                try await writer.write(ByteBuffer(string: ServerSentEvents.done))
                try await writer.finish(nil)
            })
    }

    static func apiError(_ error: SchedulerError, param: String) -> APIError {
        switch error {
        case .overloaded:
            APIError(
                status: .tooManyRequests, message: error.description, type: "rate_limit_error", code: "server_busy",
                retryAfter: 1)
        case .promptTooLong:
            .invalid(param, error.description, code: "context_length_exceeded")
        case .emptyPrompt, .invalidToken:
            .invalid(param, error.description)
        case .shutDown:
            APIError(status: .serviceUnavailable, message: error.description, type: "server_error")
        }
    }

    static func json(_ value: JSONValue, status: HTTPResponse.Status = .ok) -> Response {
        Response(
            status: status, headers: [.contentType: "application/json"],
            body: .init(byteBuffer: ByteBuffer(string: value.jsonText)))
    }

    private static func randomID() -> String {
        let digits = Array("0123456789abcdef")
        return String((0..<24).map { _ in digits[Int.random(in: 0..<16)] })
    }
}
