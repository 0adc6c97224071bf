import Hummingbird
import HummingbirdTesting
import OnebitModel
import Testing

@testable import OnebitServer

@Suite struct LemonadeTests {
    @Test func theOpenAIRoutesAnswerUnderEveryLemonadePrefix() async throws {
        for prefix in ["/api/v1", "/api/v0", "/v0"] {
            let models = try await TestServer.json(.get, prefix + "/models")
            #expect(models.status == .ok && models.json["data"]?.arrayValue?.first?["id"] == .string("hf-256"))
            let (status, json) = try await TestServer.json(
                .post, prefix + "/chat/completions", body: chatBody("Hi", "\"max_tokens\":3"))
            #expect(status == .ok && json["object"] == .string("chat.completion"), "\(prefix)")
        }
    }

    @Test func healthNamesTheModelAndStatsDescribeTheLastGeneration() async throws {
        let (router, _) = TestServer.make(metrics: ServerMetrics())
        let health = try await TestServer.json(.get, "/api/v1/health", on: router)
        #expect(health.status == .ok && health.json["model_loaded"] == .string("hf-256"))
        #expect(health.json["all_models_loaded"]?.arrayValue?.first?["model_name"] == .string("hf-256"))
        let body = #"{"prompt":"Hello","max_tokens":6,"logit_bias":{"0":-100,"1":-100,"2":-100}}"#
        let completion = try await TestServer.json(.post, "/api/v1/completions", body: body, on: router)
        let generated = try #require(completion.json["usage"]?["completion_tokens"]?.intValue)
        let (status, stats) = try await TestServer.json(.get, "/api/v1/stats", on: router)
        #expect(status == .ok)
        #expect(stats["output_tokens"]?.intValue == generated)
        #expect(stats["input_tokens"] == completion.json["usage"]?["prompt_tokens"])
        #expect((stats["time_to_first_token"]?.doubleValue ?? -1) >= 0)
        #expect((stats["tokens_per_second"]?.doubleValue ?? -1) >= 0)
    }

    @Test func modelManagementAnswersForTheOneServedModel() async throws {
        for route in ["load", "load_model", "pull"] {
            let (status, json) = try await TestServer.json(
                .post, "/api/v1/" + route, body: #"{"model_name":"hf-256"}"#)
            #expect(status == .ok && json["status"] == .string("success"), "\(route)")
        }
        let byModel = try await TestServer.json(.post, "/api/v1/load_model", body: #"{"model":"hf-256"}"#)
        #expect(byModel.status == .ok)
        let other = try await TestServer.json(.post, "/api/v1/load", body: #"{"model_name":"Qwen3-0.6B-GGUF"}"#)
        #expect(other.status == .notFound && other.json["error"]?["code"] == .string("model_not_found"))
        let missing = try await TestServer.json(.post, "/api/v1/load", body: "{}")
        #expect(missing.status == .badRequest && missing.json["error"]?["param"] == .string("model_name"))
        for route in ["unload", "unload_model", "delete"] {
            let (status, json) = try await TestServer.json(.post, "/api/v1/" + route, body: "{}")
            #expect(status == .badRequest, "\(route)")
            #expect(json["error"]?["message"]?.stringValue?.contains("keeps it loaded") == true)
        }
    }
}
