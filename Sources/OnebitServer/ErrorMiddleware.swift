import Hummingbird

/// Answers every failure with OpenAI's error envelope (routing and body-size errors of the framework included)
/// and counts every answer in the metrics.
struct ErrorMiddleware<Context: RequestContext>: RouterMiddleware {
    let metrics: ServerMetrics

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response)
        async throws -> Response
    {
        let response: Response
        do {
            response = try await next(request, context)
        } catch let error as APIError {
            response = error.response
        } catch let error as any HTTPResponseError {
            response = Self.envelope(for: error, request: request).response
        } catch {
            response = APIError(status: .internalServerError, message: "\(error)", type: "server_error").response
        }
        metrics.recordRequest(path: context.endpointPath ?? "unmatched", status: response.status.code)
        return response
    }

    private static func envelope(for error: any HTTPResponseError, request: Request) -> APIError {
        switch error.status {
        case .notFound:
            APIError(
                status: .notFound, message: "no route \(request.method) \(request.uri.path)", code: "not_found")
        case .contentTooLarge:
            .bodyTooLarge
        case .methodNotAllowed:
            APIError(status: .methodNotAllowed, message: "\(request.method) is not allowed on \(request.uri.path)")
        default:
            APIError(
                status: error.status, message: (error as? HTTPError)?.body ?? error.status.reasonPhrase,
                type: error.status.code >= 500 ? "server_error" : "invalid_request_error")
        }
    }
}

/// The request context of the server: the default one with the server's body limit.
public struct ServerContext: RequestContext {
    /// Most bytes of a request body; a larger body is answered with 413.
    public static let maxBodyBytes = 4 << 20

    /// The framework's per-request storage.
    public var coreContext: CoreRequestContextStorage

    /// Creates the context of one request.
    public init(source: ApplicationRequestContextSource) { coreContext = .init(source: source) }

    /// See ``maxBodyBytes``.
    public var maxUploadSize: Int { Self.maxBodyBytes }
}
