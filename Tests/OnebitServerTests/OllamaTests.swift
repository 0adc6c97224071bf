import Hummingbird
import HummingbirdTesting
import OnebitModel
import Testing

@testable import OnebitServer

@Suite struct OllamaTests {
    @Test func versionTagsRunningModelsAndShowDescribeTheServedModel() async throws {
        let version = try await TestServer.json(.get, "/api/version")
        #expect(version.status == .ok && version.json["version"]?.stringValue?.isEmpty == false)
        for path in ["/api/tags", "/api/ps"] {
            let (status, json) = try await TestServer.json(.get, path)
            #expect(status == .ok)
            let model = try #require(json["models"]?.arrayValue?.first)
            #expect(model["name"] == .string("hf-256:latest") && model["model"] == .string("hf-256:latest"))
            #expect(model["details"]?["family"] == .string("bitnet"))
            #expect(model["modified_at"]?.stringValue?.hasSuffix("Z") == true)
        }
        let show = try await TestServer.json(.post, "/api/show", body: #"{"model":"hf-256"}"#)
        #expect(show.status == .ok && show.json["capabilities"] == .array([.string("completion")]))
        let byName = try await TestServer.json(.post, "/api/show", body: #"{"name":"hf-256:latest"}"#)
        #expect(byName.status == .ok)
    }

    @Test func aChatAnswersOneObjectWithTokenCountsAndDurations() async throws {
        let body = #"""
            {"model":"hf-256:latest","messages":[{"role":"user","content":"Hi"}],"stream":false,
             "options":{"num_predict":5,"temperature":0,"num_ctx":4096}}
            """#
        let (status, json) = try await TestServer.json(.post, "/api/chat", body: body)
        #expect(status == .ok)
        #expect(json["message"]?["role"] == .string("assistant"))
        #expect(json["message"]?["content"]?.stringValue != nil)
        #expect(json["done"] == .bool(true))
        #expect(json["done_reason"] == .string("length") || json["done_reason"] == .string("stop"))
        let generated = try #require(json["eval_count"]?.intValue)
        #expect(generated >= 1 && generated <= 5)
        #expect((json["prompt_eval_count"]?.intValue ?? 0) > 0)
        for duration in ["total_duration", "prompt_eval_duration", "eval_duration"] {
            #expect((json[duration]?.intValue ?? -1) >= 0, "\(duration)")
        }
        #expect(json["created_at"]?.stringValue?.hasSuffix("Z") == true)
    }

    @Test func aStreamIsOneJSONObjectALineAndAddsUpToTheWholeAnswer() async throws {
        func request(_ extra: String) -> String {
            #"{"model":"hf-256","messages":[{"role":"user","content":"Once upon"}],"options":{"num_predict":12,"#
                + #""temperature":0}\#(extra)}"#
        }
        let (status, headers, text) = try await TestServer.send(.post, "/api/chat", body: request(""))
        #expect(status == .ok && headers[.contentType] == "application/x-ndjson")
        #expect(text.hasSuffix("\n"))
        let lines = try text.split(separator: "\n").map { try JSONValue(parsing: Array($0.utf8)) }
        let last = try #require(lines.last)
        #expect(last["done"] == .bool(true) && last["eval_count"]?.intValue ?? 0 <= 12)
        #expect(lines.dropLast().allSatisfy { $0["done"] == .bool(false) })
        let streamed = lines.compactMap { $0["message"]?["content"]?.stringValue }.joined()

        let whole = try await TestServer.json(.post, "/api/chat", body: request(#","stream":false"#))
        #expect(whole.json["message"]?["content"]?.stringValue == streamed)
        #expect(whole.json["eval_count"] == last["eval_count"])
    }

    @Test func generateTakesARawPromptOrTheChatTemplate() async throws {
        for raw in [true, false] {
            let body = """
                {"model":"hf-256","prompt":"Hello","system":"Be brief.","raw":\(raw),"stream":false,\
                "options":{"num_predict":3,"temperature":0,"seed":7}}
                """
            let (status, json) = try await TestServer.json(.post, "/api/generate", body: body)
            #expect(status == .ok)
            #expect(json["response"]?.stringValue != nil && json["done"] == .bool(true))
            #expect((json["eval_count"]?.intValue ?? 0) <= 3)
        }
        let streamed = try await TestServer.send(
            .post, "/api/generate", body: #"{"model":"hf-256","prompt":"Hello","options":{"num_predict":2}}"#)
        #expect(streamed.status == .ok && streamed.body.split(separator: "\n").count >= 1)
    }

    @Test func nothingToGenerateAnswersThatTheModelIsLoaded() async throws {
        let chat = try await TestServer.json(.post, "/api/chat", body: #"{"model":"hf-256","messages":[]}"#)
        #expect(chat.status == .ok && chat.json["done_reason"] == .string("load"))
        let generate = try await TestServer.json(.post, "/api/generate", body: #"{"model":"hf-256"}"#)
        #expect(generate.status == .ok && generate.json["done_reason"] == .string("load"))
    }

    @Test func errorsAreOllamasObjectsWithTheRightStatus() async throws {
        let cases: [(path: String, body: String, status: HTTPResponse.Status, mentions: String)] = [
            ("/api/chat", #"{"model":"llama3","messages":[]}"#, .notFound, "llama3"),
            ("/api/chat", #"{"messages":[]}"#, .badRequest, "model is required"),
            ("/api/chat", #"{"model":"hf-256","messages":"hi"}"#, .badRequest, "messages"),
            ("/api/chat", #"{"model":"hf-256","messages":[{"content":"hi"}]}"#, .badRequest, "role"),
            (
                "/api/chat", #"{"model":"hf-256","messages":[{"role":"user","content":"x","images":["aGk="]}]}"#,
                .badRequest, "messages[0].images"
            ),
            (
                "/api/chat", #"{"model":"hf-256","messages":[{"role":"user","content":"x"}],"options":{"top_p":"x"}}"#,
                .badRequest, "options.top_p"
            ),
            (
                "/api/generate", #"{"model":"hf-256","prompt":"x","options":{"num_predict":0}}"#, .badRequest,
                "num_predict"
            ),
            (
                "/api/generate", #"{"model":"hf-256","prompt":"x","options":{"temperature":9}}"#, .badRequest,
                "temperature"
            ),
            ("/api/generate", #"{"model":"hf-256","prompt":"x","format":"xml"}"#, .badRequest, "format"),
            ("/api/generate", #"{"model":"hf-256","prompt":"x","images":["aGk="]}"#, .badRequest, "images"),
            ("/api/generate", #"{"model":"hf-256","prompt":"x","suffix":"y"}"#, .badRequest, "suffix"),
            ("/api/generate", #"{"model":"hf-256","prompt":"x""#, .badRequest, "JSON"),
            ("/api/show", #"{"model":"other"}"#, .notFound, "other"),
        ]
        for item in cases {
            let (status, json) = try await TestServer.json(.post, item.path, body: item.body)
            #expect(status == item.status, "\(item.body)")
            let message = try #require(json["error"]?.stringValue, "\(item.body): \(json)")
            #expect(message.contains(item.mentions), "\(message)")
        }
        let long = String(repeating: "word ", count: 400)
        let (status, json) = try await TestServer.json(
            .post, "/api/generate", body: #"{"model":"hf-256","raw":true,"prompt":"\#(long)"}"#)
        #expect(status == .badRequest && json["error"]?.stringValue?.contains("context") == true)
        let huge = String(repeating: "a", count: ServerContext.maxBodyBytes + 10)
        let oversized = try await TestServer.json(.post, "/api/generate", body: #"{"prompt":"\#(huge)"}"#)
        #expect(oversized.status == .contentTooLarge)
        #expect(oversized.json["error"]?.stringValue?.contains("larger than the server accepts") == true)
    }

    @Test func theAPIKeyGuardsTheOllamaRoutesToo() async throws {
        let (router, _) = TestServer.make(apiKey: "sesame")
        let refused = try await TestServer.send(.get, "/api/tags", on: router)
        #expect(refused.status == .unauthorized)
        let allowed = try await TestServer.send(
            .get, "/api/tags", headers: [.authorization: "Bearer sesame"], on: router)
        #expect(allowed.status == .ok)
    }
}
