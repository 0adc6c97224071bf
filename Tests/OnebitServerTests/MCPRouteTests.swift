import HTTPTypes
import Hummingbird
import HummingbirdTesting
import OnebitEngine
import OnebitMCP
import OnebitModel
import Testing

@testable import OnebitServer

/// `/mcp` in-process: sessions, the API key and the Origin check (the Python tests drive it with the MCP SDK).
@Suite struct MCPRouteTests {
    static let initialize =
        #"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","#
        + #""capabilities":{},"clientInfo":{"name":"t","version":"1"}}}"#
    static let sessionHeader = HTTPField.Name("Mcp-Session-Id")!
    static let headers: HTTPFields = [.accept: "application/json, text/event-stream", .contentType: "application/json"]

    static func router(apiKey: String? = nil, loopback: Bool = true) -> Router<ServerContext> {
        let registry = ToolRegistry()
        let model = TestServer.model
        ModelTools(
            model: ServedModel(id: "hf-256", tokenizer: model.tokenizer, chatTemplate: model.chatTemplate),
            scheduler: TestServer.shared,
            info: ModelInfo(
                id: "hf-256", format: "test", layers: model.config.layerCount, vocabularySize: model.config.vocabSize,
                contextLength: 256, device: "CPU")
        ).register(in: registry)
        let served = ServedModel(id: "hf-256", tokenizer: model.tokenizer, chatTemplate: model.chatTemplate)
        return Routes.makeRouter(
            model: served, scheduler: TestServer.shared, metrics: TestServer.metrics, apiKey: apiKey,
            mcp: MCPSessions(registry: registry, loopback: loopback))
    }

    @Test func aSessionStartsListsToolsAndEnds() async throws {
        let router = Self.router()
        let (status, headers, body) = try await TestServer.send(
            .post, "/mcp", body: Self.initialize, headers: Self.headers, on: router)
        #expect(status == .ok)
        #expect(body.contains(#""protocolVersion":"2025-06-18""#))
        let session = try #require(headers[Self.sessionHeader])
        var sessionHeaders = Self.headers
        sessionHeaders[Self.sessionHeader] = session
        let listed = try await TestServer.send(
            .post, "/mcp", body: #"{"jsonrpc":"2.0","id":2,"method":"tools/list"}"#, headers: sessionHeaders,
            on: router)
        #expect(listed.body.contains(#""name":"perplexity""#))
        #expect(try await TestServer.send(.delete, "/mcp", headers: sessionHeaders, on: router).status == .ok)
        let after = try await TestServer.send(
            .post, "/mcp", body: #"{"jsonrpc":"2.0","id":3,"method":"tools/list"}"#, headers: sessionHeaders,
            on: router)
        #expect(after.status == .notFound)
    }

    @Test func theAPIKeyIsRequiredWhenSet() async throws {
        let router = Self.router(apiKey: "secret")
        let refused = try await TestServer.send(.post, "/mcp", body: Self.initialize, headers: Self.headers, on: router)
        #expect(refused.status == .unauthorized)
        var headers = Self.headers
        headers[.authorization] = "Bearer secret"
        let accepted = try await TestServer.send(.post, "/mcp", body: Self.initialize, headers: headers, on: router)
        #expect(accepted.status == .ok)
    }

    @Test func aForeignOriginIsRefused() async throws {
        for loopback in [true, false] {
            var headers = Self.headers
            headers[.origin] = "http://evil.example"
            let reply = try await TestServer.send(
                .post, "/mcp", body: Self.initialize, headers: headers, on: Self.router(loopback: loopback))
            #expect(reply.status == .forbidden)
        }
    }

    @Test func aRequestWithoutASessionMustInitialize() async throws {
        let reply = try await TestServer.send(
            .post, "/mcp", body: #"{"jsonrpc":"2.0","id":2,"method":"tools/list"}"#, headers: Self.headers,
            on: Self.router())
        #expect(reply.status == .badRequest)
        #expect(reply.body.contains("initialize"))
    }
}

@Suite struct LoopbackOriginTests {
    @Test(arguments: [
        ("localhost", true), ("localhost:8080", true), ("127.0.0.1:1", true), ("[::1]:80", true),
        ("LOCALHOST:9", true), ("localhost.evil.example", false), ("evil.example:8080", false),
        ("localhost:", false), ("localhost:80x", false), ("127.0.0.10", false),
    ])
    func hosts(authority: String, allowed: Bool) {
        #expect(LoopbackOriginValidator.isLoopback(authority: authority) == allowed)
    }

    @Test func origins() {
        #expect(LoopbackOriginValidator.isLoopback(origin: "http://localhost:3000"))
        #expect(LoopbackOriginValidator.isLoopback(origin: "https://127.0.0.1"))
        #expect(!LoopbackOriginValidator.isLoopback(origin: "http://evil.example"))
        #expect(!LoopbackOriginValidator.isLoopback(origin: "null"))
        #expect(!LoopbackOriginValidator.isLoopback(origin: "file://localhost"))
    }
}
