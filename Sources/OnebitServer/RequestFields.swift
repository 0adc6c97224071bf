import Hummingbird
import OnebitModel

/// Reads the members of a JSON request object with the types OpenAI documents; a wrong type is a 400 that names
/// the field. Members nobody asks for are ignored, as clients send extensions freely.
struct RequestFields {
    let object: [String: JSONValue]
    /// The name of this object in error messages (`""` at the top, `"stream_options."` inside one).
    let path: String

    /// Parses a request body, which must be a JSON object.
    init(body: some Collection<UInt8>) throws(APIError) {
        let value: JSONValue
        do {
            value = try JSONValue(parsing: body)
        } catch {
            throw APIError(status: .badRequest, message: "the request body is not valid JSON: \(error.description)")
        }
        guard case .object(let members) = value else {
            throw APIError(status: .badRequest, message: "the request body must be a JSON object")
        }
        self.init(members: Dictionary(members.map { ($0.key, $0.value) }, uniquingKeysWith: { _, last in last }))
    }

    /// Reads `request`'s whole body (up to the server's limit) and parses it.
    init(of request: Request, _ context: ServerContext) async throws(APIError) {
        var request = request
        let body: ByteBuffer
        do {
            body = try await request.collectBody(upTo: context.maxUploadSize)
        } catch let error as any HTTPResponseError where error.status == .contentTooLarge {
            throw .bodyTooLarge
        } catch {
            throw APIError(status: .internalServerError, message: "\(error)", type: "server_error")
        }
        try self.init(body: body.readableBytesView)
    }

    init(members: [String: JSONValue], path: String = "") {
        object = members
        self.path = path
    }

    /// The value of `key`, `nil` when absent or `null`.
    func value(_ key: String) -> JSONValue? {
        guard let value = object[key], value != .null else { return nil }
        return value
    }

    func wrongType(_ key: String, _ expected: String) -> APIError {
        .invalid(path + key, "\(path + key) must be \(expected)")
    }

    func string(_ key: String) throws(APIError) -> String? {
        guard let value = value(key) else { return nil }
        guard let s = value.stringValue else { throw wrongType(key, "a string") }
        return s
    }

    func bool(_ key: String) throws(APIError) -> Bool? {
        guard let value = value(key) else { return nil }
        guard let b = value.boolValue else { throw wrongType(key, "a boolean") }
        return b
    }

    func integer(_ key: String, in range: ClosedRange<Int>? = nil) throws(APIError) -> Int? {
        guard let value = value(key) else { return nil }
        guard let i = value.intValue else { throw wrongType(key, "an integer") }
        if let range, !range.contains(i) {
            throw .invalid(path + key, "\(path + key) must be between \(range.lowerBound) and \(range.upperBound)")
        }
        return i
    }

    func number(_ key: String, in range: ClosedRange<Double>? = nil) throws(APIError) -> Double? {
        guard let value = value(key) else { return nil }
        guard let d = value.doubleValue, d.isFinite else { throw wrongType(key, "a number") }
        if let range, !range.contains(d) {
            throw .invalid(path + key, "\(path + key) must be between \(range.lowerBound) and \(range.upperBound)")
        }
        return d
    }

    func object(_ key: String) throws(APIError) -> RequestFields? {
        guard let value = value(key) else { return nil }
        guard let members = value.objectValue else { throw wrongType(key, "an object") }
        return RequestFields(
            members: Dictionary(members.map { ($0.key, $0.value) }, uniquingKeysWith: { _, last in last }),
            path: path + key + ".")
    }
}
