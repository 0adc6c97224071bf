import Hummingbird
import HummingbirdTesting
import OnebitModel
import Testing

@testable import OnebitServer

@Suite struct StreamingTests {
    @Test func chatStreamFramesAsOpenAIDoes() async throws {
        let (status, headers, body) = try await TestServer.send(
            .post, "/v1/chat/completions",
            body: chatBody("Hi", "\"max_tokens\":4,\"stream\":true,\"stream_options\":{\"include_usage\":true}"))
        #expect(status == .ok)
        #expect(headers[.contentType] == "text/event-stream")
        let events = TestServer.events(body)
        #expect(events.last == "[DONE]")
        let chunks = try events.dropLast().map { try JSONValue(parsing: $0) }
        try #require(chunks.count >= 3)
        // The first delta carries the role.
        let first = try #require(chunks[0]["choices"]?.arrayValue?.first)
        #expect(first["delta"]?["role"] == .string("assistant"))
        // Every chunk is a chat.completion.chunk of one id; usage is null until the usage chunk.
        let id = chunks[0]["id"]
        for chunk in chunks {
            #expect(chunk["object"] == .string("chat.completion.chunk") && chunk["id"] == id)
        }
        // finish_reason is null on every choice chunk but the last one.
        let choiceChunks = chunks.dropLast()
        for chunk in choiceChunks.dropLast() {
            #expect(chunk["choices"]?.arrayValue?.first?["finish_reason"] == .null)
            #expect(chunk["usage"] == .null)
        }
        let last = try #require(choiceChunks.last?["choices"]?.arrayValue?.first)
        #expect(last["finish_reason"] == .string("length") || last["finish_reason"] == .string("stop"))
        // Then the usage chunk, with empty choices.
        let usageChunk = try #require(chunks.last)
        #expect(usageChunk["choices"] == .array([]))
        let usage = try #require(usageChunk["usage"])
        #expect(usage["completion_tokens"]?.intValue ?? 0 <= 4)
        #expect(
            usage["total_tokens"]?.intValue
                == (usage["prompt_tokens"]?.intValue ?? 0) + (usage["completion_tokens"]?.intValue ?? 0))
    }

    @Test func streamedTextEqualsTheNonStreamedText() async throws {
        let settings = "\"max_tokens\":10,\"temperature\":0"
        let whole = try await TestServer.json(.post, "/v1/chat/completions", body: chatBody("Tell", settings))
        let expected = whole.json["choices"]?.arrayValue?.first?["message"]?["content"]?.stringValue
        let (_, _, body) = try await TestServer.send(
            .post, "/v1/chat/completions", body: chatBody("Tell", settings + ",\"stream\":true"))
        var text = ""
        for event in TestServer.events(body).dropLast() {
            let chunk = try JSONValue(parsing: event)
            #expect(chunk["usage"] == nil, "no usage member unless include_usage is set")
            text += chunk["choices"]?.arrayValue?.first?["delta"]?["content"]?.stringValue ?? ""
        }
        #expect(text == expected)
    }

    @Test func textCompletionStreams() async throws {
        let (_, _, body) = try await TestServer.send(
            .post, "/v1/completions", body: #"{"prompt":"Hello","max_tokens":3,"stream":true}"#)
        let events = TestServer.events(body)
        #expect(events.last == "[DONE]")
        let chunks = try events.dropLast().map { try JSONValue(parsing: $0) }
        #expect(chunks.allSatisfy { $0["object"] == .string("text_completion") })
        #expect(chunks.last?["choices"]?.arrayValue?.first?["finish_reason"] != .null)
    }

    @Test func aFailureMidStreamSendsAnErrorEvent() async throws {
        let (router, scheduler) = TestServer.make(contextLength: 4096)
        // End-of-sequence tokens are forbidden so the generation is still running when the engine stops.
        let noEnd = TestServer.model.endOfSequenceTokenIDs.map { "\"\($0)\":-100" }.joined(separator: ",")
        let body = "{\"prompt\":\"Hello\",\"max_tokens\":4000,\"stream\":true,\"logit_bias\":{\(noEnd)}}"
        let response = Task { try await TestServer.send(.post, "/v1/completions", body: body, on: router) }
        // A guard against a hang, not a speed limit: on a loaded 2-core machine the other suites running in
        // parallel can hold the cooperative threads for tens of seconds before this request is even sent.
        let deadline = ContinuousClock.now + .seconds(180)
        while scheduler.statistics.generatedTokens == 0 {
            try #require(ContinuousClock.now < deadline, "no token was generated")
            try await Task.sleep(for: .milliseconds(5))
        }
        scheduler.shutdown()
        let events = TestServer.events(try await response.value.body)
        let last = try JSONValue(parsing: try #require(events.last))
        #expect(last["error"]?["message"]?.stringValue?.contains("shutting down") == true)
        #expect(last["error"]?["type"] == .string("server_error"))
    }
}
