import Hummingbird
import OnebitModel

/// An error in OpenAI's envelope, `{"error":{"message","type","param","code"}}`, with its HTTP status.
public struct APIError: Error, Sendable, Equatable {
    /// The HTTP status.
    public var status: HTTPResponse.Status
    /// What went wrong and what to do about it.
    public var message: String
    /// OpenAI's error class (`invalid_request_error`, `authentication_error`, ...).
    public var type: String
    /// The request field at fault, if one is.
    public var param: String?
    /// A machine-readable code (`context_length_exceeded`, `model_not_found`, ...).
    public var code: String?
    /// Seconds a client should wait before retrying (a `Retry-After` header).
    public var retryAfter: Int?

    /// Describes an error.
    public init(
        status: HTTPResponse.Status, message: String, type: String = "invalid_request_error", param: String? = nil,
        code: String? = nil, retryAfter: Int? = nil
    ) {
        self.status = status
        self.message = message
        self.type = type
        self.param = param
        self.code = code
        self.retryAfter = retryAfter
    }

    /// A 400 about one field of the request.
    static func invalid(_ param: String, _ message: String, code: String? = nil) -> APIError {
        APIError(status: .badRequest, message: message, param: param, code: code)
    }

    /// A 404 for a model other than the one the server serves; `param` names the field that asked for it.
    static func modelNotFound(_ requested: String, served: String, param: String = "model") -> APIError {
        APIError(
            status: .notFound, message: "the model '\(requested)' does not exist; this server serves '\(served)'",
            param: param, code: "model_not_found")
    }

    /// A 413 for a body over ``ServerContext/maxBodyBytes``.
    static let bodyTooLarge = APIError(
        status: .contentTooLarge,
        message: "the request body is larger than the server accepts (\(ServerContext.maxBodyBytes) bytes)",
        code: "request_too_large")

    /// The JSON body.
    public var json: JSONValue {
        .object([
            "error": .object([
                "message": .string(message), "type": .string(type), "param": param.map(JSONValue.string) ?? .null,
                "code": code.map(JSONValue.string) ?? .null,
            ])
        ])
    }

    /// The HTTP response carrying the envelope.
    var response: Response {
        var headers: HTTPFields = [.contentType: "application/json"]
        if let retryAfter { headers[.retryAfter] = String(retryAfter) }
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(string: json.jsonText)))
    }
}
