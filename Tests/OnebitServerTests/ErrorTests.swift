import Hummingbird
import HummingbirdTesting
import OnebitModel
import Testing

@testable import OnebitServer

@Suite struct ErrorTests {
    /// Sends `body` and checks the status and the OpenAI envelope; returns the error object.
    @discardableResult
    func expectError(
        _ uri: String, _ body: String, status: HTTPResponse.Status, param: String? = nil, code: String? = nil,
        router: Router<ServerContext> = TestServer.sharedRouter(), headers: HTTPFields = [:]
    ) async throws -> JSONValue {
        let (got, json) = try await TestServer.json(.post, uri, body: body, headers: headers, on: router)
        #expect(got == status, "\(body)")
        let error = try #require(json["error"])
        #expect(error["message"]?.stringValue?.isEmpty == false)
        #expect(error["type"]?.stringValue != nil)
        #expect(error["param"] == (param.map(JSONValue.string) ?? .null))
        #expect(error["code"] == (code.map(JSONValue.string) ?? .null))
        return error
    }

    @Test func malformedJSON() async throws {
        try await expectError("/v1/chat/completions", "{\"messages\": [", status: .badRequest)
        try await expectError("/v1/chat/completions", "[1]", status: .badRequest)
    }

    @Test func wrongTypesNameTheField() async throws {
        let chat = "/v1/chat/completions"
        try await expectError(chat, chatBody("x", "\"temperature\":\"hot\""), status: .badRequest, param: "temperature")
        try await expectError(chat, chatBody("x", "\"max_tokens\":\"9\""), status: .badRequest, param: "max_tokens")
        try await expectError(chat, chatBody("x", "\"stream\":1"), status: .badRequest, param: "stream")
        try await expectError(chat, chatBody("x", "\"stop\":[1]"), status: .badRequest, param: "stop")
        try await expectError(
            chat, chatBody("x", "\"stream_options\":{\"include_usage\":\"yes\"}"), status: .badRequest,
            param: "stream_options.include_usage")
        try await expectError(chat, #"{"messages":"hi"}"#, status: .badRequest, param: "messages")
        try await expectError(
            chat, #"{"messages":[{"role":"user","content":7}]}"#, status: .badRequest, param: "messages[0].content")
        try await expectError(chat, #"{"messages":[{"content":"x"}]}"#, status: .badRequest, param: "messages[0].role")
        try await expectError("/v1/completions", #"{"prompt":{"a":1}}"#, status: .badRequest, param: "prompt")
    }

    @Test func valuesOutOfRange() async throws {
        let chat = "/v1/chat/completions"
        try await expectError(chat, chatBody("x", "\"temperature\":5"), status: .badRequest, param: "temperature")
        try await expectError(chat, chatBody("x", "\"max_tokens\":0"), status: .badRequest, param: "max_tokens")
        try await expectError(chat, chatBody("x", "\"n\":2"), status: .badRequest, param: "n")
        try await expectError(
            chat, chatBody("x", "\"logit_bias\":{\"abc\":1}"), status: .badRequest, param: "logit_bias")
        try await expectError(
            "/v1/completions", #"{"prompt":[1, 999999]}"#, status: .badRequest, param: "prompt")
    }

    @Test func emptyOrMissingMessages() async throws {
        try await expectError("/v1/chat/completions", #"{"messages":[]}"#, status: .badRequest, param: "messages")
        try await expectError("/v1/chat/completions", #"{"model":"hf-256"}"#, status: .badRequest, param: "messages")
        try await expectError("/v1/completions", #"{"prompt":[]}"#, status: .badRequest, param: "prompt")
    }

    @Test func promptLongerThanTheContext() async throws {
        let ids = Array(repeating: "5", count: 300).joined(separator: ",")
        try await expectError(
            "/v1/completions", "{\"prompt\":[\(ids)]}", status: .badRequest, param: "prompt",
            code: "context_length_exceeded")
        let long = String(repeating: "word ", count: 400)
        try await expectError(
            "/v1/chat/completions", chatBody(long), status: .badRequest, param: "messages",
            code: "context_length_exceeded")
    }

    @Test func unknownModel() async throws {
        try await expectError(
            "/v1/chat/completions", chatBody("x", "\"model\":\"gpt-4o\""), status: .notFound, param: "model",
            code: "model_not_found")
    }

    @Test func apiKeyIsChecked() async throws {
        let (router, _) = TestServer.make(apiKey: "sesame")
        let error = try await expectError(
            "/v1/chat/completions", chatBody("x", "\"max_tokens\":1"), status: .unauthorized, code: "invalid_api_key",
            router: router, headers: [.authorization: "Bearer wrong"])
        #expect(error["type"] == .string("authentication_error"))
        let models = try await TestServer.json(.get, "/v1/models", on: router)
        #expect(models.status == .unauthorized)
        #expect(models.json["error"]?["code"] == .string("invalid_api_key"))
        let ok = try await TestServer.json(
            .post, "/v1/chat/completions", body: chatBody("x", "\"max_tokens\":1"),
            headers: [.authorization: "Bearer sesame"], on: router)
        #expect(ok.status == .ok)
        let health = try await TestServer.send(.get, "/health", on: router)
        #expect(health.status == .ok)
    }

    @Test func browserRequestsGetTheSameErrorsWithCORSHeaders() async throws {
        // A browser sends Origin; the error must still be the 401 envelope, not a generic 500.
        let (router, _) = TestServer.make(apiKey: "sesame")
        let error = try await expectError(
            "/v1/chat/completions", chatBody("x", "\"max_tokens\":1"), status: .unauthorized, code: "invalid_api_key",
            router: router, headers: [.authorization: "Bearer wrong", .origin: "http://127.0.0.1:8080"])
        #expect(error["type"] == .string("authentication_error"))
        let (status, headers, _) = try await TestServer.send(
            .get, "/v1/models", headers: [.origin: "http://127.0.0.1:8080"], on: router)
        #expect(status == .unauthorized)
        #expect(headers[.accessControlAllowOrigin] != nil)
    }

    @Test func overloadIsA429WithRetryAfter() async throws {
        let (router, _) = TestServer.make(maxQueued: 0)
        let (status, headers, body) = try await TestServer.send(
            .post, "/v1/chat/completions", body: chatBody("x"), on: router)
        #expect(status == .tooManyRequests)
        #expect(headers[.retryAfter] == "1")
        #expect(try JSONValue(parsing: body)["error"]?["code"] == .string("server_busy"))
    }

    @Test func oversizedBodyIsA413() async throws {
        let huge = chatBody(String(repeating: "a", count: ServerContext.maxBodyBytes + 10))
        try await expectError(
            "/v1/chat/completions", huge, status: .contentTooLarge, code: "request_too_large")
    }

    @Test func unknownRouteIsAnEnvelopedNotFound() async throws {
        let (status, json) = try await TestServer.json(.get, "/v1/engines")
        #expect(status == .notFound)
        #expect(json["error"]?["message"]?.stringValue != nil)
    }
}
