import Hummingbird
import OnebitEngine
import OnebitModel

/// Lemonade Server's own routes, which its clients call beside the OpenAI ones under the same prefixes: `health`,
/// `stats` of the last generation, and the model-management routes, which a server of one model answers for that
/// model (`load` and `pull` of it succeed, as it is loaded; `unload` and `delete` are refused, saying why).
enum LemonadeRoutes {
    /// Adds the routes under `prefix` (`v1`, `api/v1`, ...) to `group`.
    static func add(to group: RouterGroup<ServerContext>, prefix: String, service: CompletionService) {
        let (model, metrics) = (service.model, service.metrics)
        group.get("\(prefix)/health") { _, _ in
            CompletionService.json(
                .object([
                    "status": .string("ok"), "model_loaded": .string(model.id),
                    "all_models_loaded": .array([
                        .object(["model_name": .string(model.id), "type": .string("llm")])
                    ]),
                ]))
        }
        group.get("\(prefix)/stats") { _, _ in
            let last = metrics.lastCompletion
            return CompletionService.json(
                .object([
                    "time_to_first_token": last.map { .number($0.timeToFirstToken) } ?? .null,
                    "tokens_per_second": last.map { .number($0.tokensPerSecond) } ?? .null,
                    "input_tokens": last.map { .integer($0.promptTokens) } ?? .null,
                    "output_tokens": last.map { .integer($0.completionTokens) } ?? .null,
                    "prompt_tokens": last.map { .integer($0.promptTokens) } ?? .null,
                ]))
        }
        // `load_model` and `model` are what some Lemonade clients send instead of `load` and `model_name`.
        for route in ["load", "load_model", "pull"] {
            group.post("\(prefix)/\(route)") { request, context in
                let name = try await modelName(request, context)
                guard name == model.id else {
                    throw APIError.modelNotFound(name, served: model.id, param: "model_name")
                }
                return CompletionService.json(
                    .object(["status": .string("success"), "message": .string("Loaded model: \(model.id)")]))
            }
        }
        for route in ["unload", "unload_model", "delete"] {
            group.post("\(prefix)/\(route)") { _, _ -> Response in
                throw APIError(
                    status: .badRequest,
                    message: "this server serves '\(model.id)', the model it was started with, and keeps it loaded; "
                        + "start onebit serve with another --model to serve another")
            }
        }
    }

    /// `model_name` (or `model`) of a model-management request.
    private static func modelName(_ request: Request, _ context: ServerContext) async throws(APIError) -> String {
        let fields = try await RequestFields(of: request, context)
        let name = try fields.string("model")
        guard let given = try fields.string("model_name") ?? name, !given.isEmpty else {
            throw APIError.invalid("model_name", "model_name is required: this server serves one model")
        }
        return given
    }
}
