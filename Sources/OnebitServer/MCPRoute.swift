import FoundationEssentials
import HTTPTypes
import Hummingbird
import MCP
import OnebitMCP
import OnebitModel
import ServiceLifecycle

/// The MCP server over streamable HTTP at `/mcp`: POST carries JSON-RPC (answered as an SSE stream), GET opens the
/// stream for server-initiated messages, DELETE ends a session (`Mcp-Session-Id`).
///
/// The SDK's `StatefulHTTPServerTransport` speaks the protocol but serves one session and knows no HTTP framework;
/// this actor keeps one SDK server and transport per session, bridges Hummingbird requests to them, and drops
/// sessions idle for longer than ``idleTimeout`` (the SDK keeps every event of a session for replay, so a session
/// must not live forever).
public actor MCPSessions {
    /// A session's SDK objects and when it was last used.
    private struct Session {
        let server: Server
        let transport: StatefulHTTPServerTransport
        var lastUsed: ContinuousClock.Instant
    }

    /// Sessions unused for this long are closed.
    public static let idleTimeout = Duration.seconds(3600)
    /// Most open sessions; a new one beyond this closes the least recently used.
    public static let maxSessions = 256

    private let registry: ToolRegistry
    private let validation: StandardValidationPipeline
    private var sessions: [String: Session] = [:]

    /// Serves the tools of `registry`. With `loopback` (the server is bound to 127.0.0.1, ::1 or localhost) the
    /// `Host` and `Origin` headers must name a loopback address, which stops DNS-rebinding pages; otherwise a
    /// browser's `Origin` must match the `Host` it sent the request to.
    public init(registry: ToolRegistry, loopback: Bool) {
        self.registry = registry
        let origin: any HTTPRequestValidator = loopback ? LoopbackOriginValidator() : SameOriginValidator()
        validation = StandardValidationPipeline(validators: [
            origin, AcceptHeaderValidator(mode: .sseRequired), ContentTypeValidator(), ProtocolVersionValidator(),
            SessionValidator(),
        ])
    }

    /// Answers one HTTP request to `/mcp`.
    public func handle(_ request: MCP.HTTPRequest) async -> MCP.HTTPResponse {
        let now = ContinuousClock.now
        let sessionID = request.header(HTTPHeaderName.sessionID)
        if let sessionID, var session = sessions[sessionID] {
            session.lastUsed = now
            sessions[sessionID] = session
            let response = await session.transport.handleRequest(request)
            if request.method.uppercased() == "DELETE", response.statusCode == 200 {
                await close(sessionID)
            }
            return response
        }
        if sessionID != nil {
            return .error(
                statusCode: 404, .invalidRequest("Not Found: the session has ended or expired; initialize again"))
        }
        guard request.method.uppercased() == "POST", let body = request.body, Self.isInitialize(body) else {
            return .error(
                statusCode: 400,
                .invalidRequest("Bad Request: send initialize first, then the \(HTTPHeaderName.sessionID) it returns"))
        }
        await closeIdle(now: now)
        let id = UUID().uuidString
        let transport = StatefulHTTPServerTransport(
            sessionIDGenerator: FixedSessionID(id: id), validationPipeline: validation)
        let server = await registry.makeServer()
        do {
            try await server.start(transport: transport)
        } catch {
            return .error(statusCode: 500, .internalError("could not start an MCP session: \(error)"))
        }
        sessions[id] = Session(server: server, transport: transport, lastUsed: now)
        let response = await transport.handleRequest(request)
        if case .error = response { await close(id) }
        return response
    }

    /// Ends every session (their open streams finish), for shutdown.
    public func closeAll() async {
        for id in Array(sessions.keys) { await close(id) }
    }

    private func close(_ id: String) async {
        guard let session = sessions.removeValue(forKey: id) else { return }
        await session.server.stop()
    }

    /// Closes sessions idle past ``idleTimeout``, then the least recently used while the table is full.
    private func closeIdle(now: ContinuousClock.Instant) async {
        for (id, session) in sessions where now - session.lastUsed > Self.idleTimeout { await close(id) }
        while sessions.count >= Self.maxSessions,
            let oldest = sessions.min(by: { $0.value.lastUsed < $1.value.lastUsed })
        {
            await close(oldest.key)
        }
    }

    private static func isInitialize(_ body: Data) -> Bool {
        guard let value = try? JSONValue(parsing: body), case .object(let members) = value else { return false }
        return members["method"]?.stringValue == "initialize" && members["id"] != nil
    }
}

/// Gives a new transport the session id the session table already filed it under.
private struct FixedSessionID: SessionIDGenerator {
    let id: String
    func generateSessionID() -> String { id }
}

/// Bound to loopback: `Host` must name a loopback address (a DNS-rebinding page reaches us under its own name) and a
/// browser's `Origin` must be a loopback origin. The SDK's `OriginValidator.localhost()` does the same but requires
/// a port in both, which a request to port 80 leaves out.
struct LoopbackOriginValidator: HTTPRequestValidator {
    static let names: Set<String> = ["localhost", "127.0.0.1", "[::1]"]

    func validate(_ request: MCP.HTTPRequest, context: HTTPValidationContext) -> MCP.HTTPResponse? {
        if let host = request.header(HTTPHeaderName.host), !Self.isLoopback(authority: host) {
            return .error(
                statusCode: 421, .invalidRequest("Misdirected Request: Host header not allowed"),
                sessionID: context.sessionID)
        }
        if let origin = request.header(HTTPHeaderName.origin), !Self.isLoopback(origin: origin) {
            return .error(
                statusCode: 403, .invalidRequest("Forbidden: Origin not allowed"), sessionID: context.sessionID)
        }
        return nil
    }

    /// Whether `origin` is `http(s)://` followed by a loopback authority.
    static func isLoopback(origin: String) -> Bool {
        let parts = origin.lowercased().split(separator: "://", maxSplits: 1)
        guard parts.count == 2, parts[0] == "http" || parts[0] == "https" else { return false }
        return isLoopback(authority: String(parts[1]))
    }

    /// Whether `authority` is a loopback name with an optional numeric port.
    static func isLoopback(authority: String) -> Bool {
        let authority = authority.lowercased()
        return names.contains { name in
            guard authority.hasPrefix(name) else { return false }
            let rest = authority.dropFirst(name.count)
            return rest.isEmpty || (rest.first == ":" && rest.count > 1 && rest.dropFirst().allSatisfy(\.isNumber))
        }
    }
}

/// When the server is reachable from other machines any `Host` is legitimate, but a browser page may only call
/// `/mcp` from the server's own origin: a present `Origin` must name the host and port of `Host`.
struct SameOriginValidator: HTTPRequestValidator {
    func validate(_ request: MCP.HTTPRequest, context: HTTPValidationContext) -> MCP.HTTPResponse? {
        guard let origin = request.header(HTTPHeaderName.origin) else { return nil }
        let host = request.header(HTTPHeaderName.host) ?? ""
        let authority = origin.split(separator: "://", maxSplits: 1).last.map(String.init) ?? origin
        guard !host.isEmpty, authority.lowercased() == host.lowercased() else {
            return .error(
                statusCode: 403, .invalidRequest("Forbidden: Origin not allowed"), sessionID: context.sessionID)
        }
        return nil
    }
}

extension MCPSessions {
    /// How often an open SSE stream carries a comment line while it waits: a write to a client that has gone fails,
    /// which is how a disconnect is noticed while a tool is still generating.
    static let heartbeat = Duration.seconds(1)

    /// Adds `GET`, `POST` and `DELETE /mcp` to `router`.
    nonisolated func addRoutes(to router: some RouterMethods<ServerContext>) {
        for method in [HTTPTypes.HTTPRequest.Method.get, .post, .delete] {
            router.on("mcp", method: method) { request, context in
                var request = request
                let body = try await request.collectBody(upTo: context.maxUploadSize)
                // HTTP/1 `Host` arrives as the request's authority, not as a header field.
                var headers: [String: String] = [:]
                if let authority = request.head.authority { headers[HTTPHeaderName.host] = authority }
                for field in request.headers {
                    let name = field.name.canonicalName
                    headers[name] = headers[name].map { "\($0), \(field.value)" } ?? field.value
                }
                let sdkRequest = MCP.HTTPRequest(
                    method: request.method.rawValue, headers: headers,
                    body: body.readableBytes > 0 ? Data(body.readableBytesView) : nil, path: request.uri.path)
                let answer = await self.handle(sdkRequest)
                // The GET stream never ends by itself; it must not hold up a graceful shutdown. A POST stream ends
                // with its answer, which a graceful shutdown waits for.
                return Self.response(answer, endsAtShutdown: request.method == .get) {
                    await self.abandon(sdkRequest, answeredWith: answer)
                }
            }
        }
    }

    /// Tells a session's server that the client of `request` has gone, so the tool call it carried is cancelled
    /// (and its generation stopped) as if the client had sent `notifications/cancelled`.
    private func abandon(_ request: MCP.HTTPRequest, answeredWith answer: MCP.HTTPResponse) async {
        guard let sessionID = answer.headers[HTTPHeaderName.sessionID], let session = sessions[sessionID],
            let body = request.body, let message = try? JSONValue(parsing: body),
            message["method"] != nil, let id = message["id"], id != .null
        else { return }
        let cancel: JSONValue = .object([
            "jsonrpc": .string("2.0"), "method": .string("notifications/cancelled"),
            "params": .object(["requestId": id, "reason": .string("the client disconnected")]),
        ])
        _ = await session.transport.handleRequest(
            MCP.HTTPRequest(
                method: "POST",
                headers: [
                    HTTPHeaderName.sessionID: sessionID, HTTPHeaderName.contentType: "application/json",
                    HTTPHeaderName.accept: "application/json, text/event-stream",
                ],
                body: Data(cancel.jsonText.utf8)))
    }

    /// The Hummingbird response for an SDK response. A stream is relayed chunk by chunk as it is produced, with a
    /// comment line every ``heartbeat`` in between, and with `endsAtShutdown` ends when the server shuts down; when
    /// the client has gone, `onGone` runs.
    private static func response(
        _ answer: MCP.HTTPResponse, endsAtShutdown: Bool, onGone: @escaping @Sendable () async -> Void
    ) -> Response {
        var headers = HTTPFields()
        for (name, value) in answer.headers {
            if let name = HTTPField.Name(name) { headers[name] = value }
        }
        let status = HTTPTypes.HTTPResponse.Status(code: answer.statusCode)
        guard case .stream(let stream, _) = answer else {
            let body = answer.bodyData.map { ResponseBody(byteBuffer: ByteBuffer(bytes: $0)) } ?? ResponseBody()
            return Response(status: status, headers: headers, body: body)
        }
        return Response(
            status: status, headers: headers,
            body: ResponseBody { writer in
                let (chunks, sink) = AsyncStream<ByteBuffer>.makeStream()
                let relay = Task {
                    do {
                        for try await chunk in stream { sink.yield(ByteBuffer(bytes: chunk)) }
                    } catch {}
                    sink.finish()
                }
                let beat = Task {
                    while !Task.isCancelled {
                        try? await Task.sleep(for: heartbeat)
                        sink.yield(ByteBuffer(string: ": keep-alive\n\n"))
                    }
                }
                defer {
                    relay.cancel()
                    beat.cancel()
                }
                do {
                    try await withGracefulShutdownHandler {
                        for await chunk in chunks { try await writer.write(chunk) }
                        try await writer.finish(nil)
                    } onGracefulShutdown: {
                        if endsAtShutdown { sink.finish() }
                    }
                } catch {
                    await onGone()
                    throw error
                }
            })
    }
}
