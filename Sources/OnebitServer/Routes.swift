import Hummingbird
import OnebitEngine
import OnebitModel
import OnebitSpecialists

/// The HTTP API: OpenAI's `/v1` routes, Lemonade's (the same under `/api/v1`, `/api/v0` and `/v0`, with its health,
/// statistics and model routes), Ollama's `/api` routes, tokenizer routes, MCP, health, metrics, statistics and the
/// web page.
public enum Routes {
    /// A router serving `model` through `scheduler`; with `apiKey`, the `/v1`, `/v0`, `/api`, tokenizer and `/mcp`
    /// routes require it. `/mcp` is served when `mcp` is given; the specialist and report routes when `specialists` is.
    public static func makeRouter(
        model: ServedModel, scheduler: Scheduler, metrics: ServerMetrics, apiKey: String?, mcp: MCPSessions? = nil,
        specialists: SpecialistRunner? = nil
    ) -> Router<ServerContext> {
        let service = CompletionService(model: model, scheduler: scheduler, metrics: metrics)
        let router = Router(context: ServerContext.self)
        // Middleware applies to the routes added after it. CORS goes outside the error middleware: it wraps errors
        // that pass through it in a type of its own, so it must only ever see the finished error response.
        router.add(middleware: CORSMiddleware(allowOrigin: .all, allowHeaders: [.authorization, .contentType]))
        router.add(middleware: ErrorMiddleware(metrics: metrics))

        router.get("/") { _, _ in
            Response(
                status: .ok, headers: [.contentType: "text/html; charset=utf-8"],
                body: .init(byteBuffer: ByteBuffer(string: WebPage.html)))
        }
        router.get("health") { _, _ in CompletionService.json(.object(["status": .string("ok")])) }
        router.get("metrics") { _, _ in
            Response(
                status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                body: .init(byteBuffer: ByteBuffer(string: metrics.render(scheduler.statistics))))
        }
        router.get("stats") { _, _ in
            let stats = scheduler.statistics
            return CompletionService.json(
                .object([
                    "model": .string(model.id), "summary": .string(model.summary), "queued": .integer(stats.queued),
                    "running": .integer(stats.running),
                    "batch_tokens": .integer(stats.lastStepTokens),
                    "batch_sequences": .integer(stats.lastStepSequences),
                    "generated_tokens": .integer(stats.generatedTokens), "prompt_tokens": .integer(stats.promptTokens),
                    "reused_prompt_tokens": .integer(stats.reusedPromptTokens),
                    "kv_cache_tokens": .integer(stats.cachedTokens),
                    "kv_cache_capacity": .integer(stats.cacheCapacity),
                    "kv_blocks": .integer(stats.keyValueBlocks), "kv_blocks_used": .integer(stats.keyValueBlocksUsed),
                    "kv_blocks_cached": .integer(stats.keyValueBlocksCached),
                    "kv_blocks_free": .integer(stats.keyValueBlocksFree),
                    "kv_block_positions": .integer(stats.keyValueBlockPositions),
                ]))
        }

        var api = router.group()
        if let apiKey { api = api.add(middleware: AuthMiddleware(apiKey: apiKey)) }
        // Lemonade serves its routes and OpenAI's under /api/v1, /api/v0 and /v0 as well as /v1, and its clients look
        // for them there.
        for prefix in ["v1", "api/v1", "api/v0", "v0"] {
            addOpenAIRoutes(to: api, prefix: prefix, service: service)
            LemonadeRoutes.add(to: api, prefix: prefix, service: service)
        }
        api.post("tokenize") { request, context in
            let fields = try await RequestFields(of: request, context)
            guard let text = try fields.string("content") ?? fields.string("prompt") else {
                throw APIError.invalid("content", "content is required: the text to tokenize")
            }
            let ids = model.tokenizer.encode(text, addSpecialTokens: try fields.bool("add_special") ?? false)
            return CompletionService.json(
                .object([
                    "tokens": .array(ids.map(JSONValue.integer)), "count": .integer(ids.count),
                    "max_model_len": .integer(scheduler.configuration.contextLength),
                ]))
        }
        api.post("detokenize") { request, context in
            let fields = try await RequestFields(of: request, context)
            guard let list = fields.value("tokens")?.arrayValue else {
                throw APIError.invalid("tokens", "tokens is required: an array of token ids")
            }
            var ids: [Int] = []
            for item in list {
                guard let id = item.intValue, id >= 0, id < model.tokenizer.vocabularySize else {
                    throw APIError.invalid(
                        "tokens", "tokens must be token ids below \(model.tokenizer.vocabularySize)")
                }
                ids.append(id)
            }
            return CompletionService.json(.object(["content": .string(model.tokenizer.decode(ids))]))
        }
        OllamaRoutes.add(to: api, service: service)
        mcp?.addRoutes(to: api)
        if let specialists { SpecialistRoutes.add(to: api, runner: specialists) }
        return router
    }

    /// OpenAI's model and completion routes under `prefix`.
    private static func addOpenAIRoutes(
        to api: RouterGroup<ServerContext>, prefix: String, service: CompletionService
    ) {
        let model = service.model
        api.get("\(prefix)/models") { _, _ in
            CompletionService.json(.object(["object": .string("list"), "data": .array([modelObject(model)])]))
        }
        api.get("\(prefix)/models/{id}") { _, context in
            let id = context.parameters.get("id") ?? ""
            guard id == model.id else { throw APIError.modelNotFound(id, served: model.id) }
            return CompletionService.json(modelObject(model))
        }
        api.post("\(prefix)/chat/completions") { request, context in
            try await service.chat(try await RequestFields(of: request, context))
        }
        api.post("\(prefix)/completions") { request, context in
            try await service.complete(try await RequestFields(of: request, context))
        }
    }

    private static func modelObject(_ model: ServedModel) -> JSONValue {
        .object([
            "id": .string(model.id), "object": .string("model"), "created": .integer(model.created),
            "owned_by": .string("onebit"),
        ])
    }
}
