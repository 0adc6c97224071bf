import Hummingbird

/// Requires `Authorization: Bearer <key>` when the server was started with an API key.
struct AuthMiddleware<Context: RequestContext>: RouterMiddleware {
    let apiKey: String

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response)
        async throws -> Response
    {
        guard let header = request.headers[.authorization], header == "Bearer \(apiKey)" else {
            throw APIError(
                status: .unauthorized,
                message: "a valid API key is required: send the header 'Authorization: Bearer <key>' with the key "
                    + "the server was started with (--api-key)",
                type: "authentication_error", code: "invalid_api_key")
        }
        return try await next(request, context)
    }
}
