import Hummingbird
import HummingbirdTesting
import OnebitModel
import Testing

@testable import OnebitServer

@Suite struct EndpointTests {
    @Test func modelsListTheServedModel() async throws {
        let (status, json) = try await TestServer.json(.get, "/v1/models")
        #expect(status == .ok)
        #expect(json["object"] == .string("list"))
        let model = try #require(json["data"]?.arrayValue?.first)
        #expect(model["id"] == .string("hf-256"))
        #expect(model["object"] == .string("model"))
        #expect(model["owned_by"] != nil && model["created"]?.intValue != nil)

        let one = try await TestServer.json(.get, "/v1/models/hf-256")
        #expect(one.status == .ok && one.json["id"] == .string("hf-256"))
        let missing = try await TestServer.json(.get, "/v1/models/gpt-4")
        #expect(missing.status == .notFound)
        #expect(missing.json["error"]?["code"] == .string("model_not_found"))
    }

    @Test func chatCompletionHasOpenAIShape() async throws {
        let (status, json) = try await TestServer.json(
            .post, "/v1/chat/completions", body: chatBody("Hi", "\"max_tokens\":5,\"seed\":3,\"unknown_field\":[1]"))
        #expect(status == .ok)
        #expect(json["object"] == .string("chat.completion"))
        #expect(json["id"]?.stringValue?.hasPrefix("chatcmpl-") == true)
        #expect(json["model"] == .string("hf-256"))
        let choice = try #require(json["choices"]?.arrayValue?.first)
        #expect(choice["index"] == .integer(0))
        #expect(choice["message"]?["role"] == .string("assistant"))
        #expect(choice["message"]?["content"]?.stringValue != nil)
        #expect(choice["logprobs"] == .null)
        #expect(choice["finish_reason"] == .string("length") || choice["finish_reason"] == .string("stop"))
        let usage = try #require(json["usage"])
        let prompt = try #require(usage["prompt_tokens"]?.intValue)
        let completion = try #require(usage["completion_tokens"]?.intValue)
        #expect(prompt > 0 && completion <= 5)
        #expect(usage["total_tokens"]?.intValue == prompt + completion)
    }

    @Test func contentPartsAndNullContentAreAccepted() async throws {
        let body = """
            {"messages":[{"role":"system","content":null},{"role":"user","content":[{"type":"text","text":"Hi"},\
            {"type":"text","text":" there"}]}],"max_completion_tokens":2,"stop":null,"max_tokens":null,\
            "tools":null,"tool_choice":"none","user":"u"}
            """
        let (status, json) = try await TestServer.json(.post, "/v1/chat/completions", body: body)
        #expect(status == .ok)
        #expect(json["usage"]?["completion_tokens"]?.intValue ?? 99 <= 2)
    }

    @Test func seededRequestsRepeat() async throws {
        let body = chatBody("Once", "\"max_tokens\":8,\"seed\":42,\"temperature\":1.0")
        let first = try await TestServer.json(.post, "/v1/chat/completions", body: body)
        let second = try await TestServer.json(.post, "/v1/chat/completions", body: body)
        #expect(first.json["choices"] == second.json["choices"])
    }

    @Test func textCompletionTakesTokenIdsAndReportsLogprobs() async throws {
        let (status, json) = try await TestServer.json(
            .post, "/v1/completions", body: #"{"prompt":[1,2,3],"max_tokens":3,"logprobs":2,"temperature":0}"#)
        #expect(status == .ok)
        #expect(json["object"] == .string("text_completion"))
        let choice = try #require(json["choices"]?.arrayValue?.first)
        #expect(choice["text"]?.stringValue != nil)
        let logprobs = try #require(choice["logprobs"])
        let tokens = try #require(logprobs["tokens"]?.arrayValue)
        #expect(tokens.count == json["usage"]?["completion_tokens"]?.intValue)
        #expect(logprobs["token_logprobs"]?.arrayValue?.count == tokens.count)
        #expect(logprobs["top_logprobs"]?.arrayValue?.first?.objectValue?.count ?? 0 >= 1)
        #expect(json["usage"]?["prompt_tokens"] == .integer(3))
    }

    @Test func chatLogprobsHaveContentEntries() async throws {
        let (_, json) = try await TestServer.json(
            .post, "/v1/chat/completions",
            body: chatBody("Hi", "\"max_tokens\":3,\"logprobs\":true,\"top_logprobs\":2,\"temperature\":0"))
        let content = try #require(json["choices"]?.arrayValue?.first?["logprobs"]?["content"]?.arrayValue)
        #expect(!content.isEmpty)
        let entry = try #require(content.first)
        #expect(entry["token"]?.stringValue != nil && entry["bytes"]?.arrayValue != nil)
        #expect((entry["logprob"]?.doubleValue ?? 1) <= 0)
        #expect(entry["top_logprobs"]?.arrayValue?.count == 2)
    }

    @Test func stopStringsCutTheText() async throws {
        let greedy = chatBody("Hi", "\"max_tokens\":12,\"temperature\":0")
        let full = try #require(
            try await TestServer.json(.post, "/v1/chat/completions", body: greedy).json["choices"]?.arrayValue?.first?[
                "message"]?["content"]?.stringValue)
        // A stop string from the middle of the greedy text: the reply must end right before it.
        let scalars = Array(full.unicodeScalars)
        try #require(scalars.count >= 4)
        let stop = String(String.UnicodeScalarView(scalars[2..<4]))
        let escaped = JSONValue.string(stop).jsonText
        let (_, json) = try await TestServer.json(
            .post, "/v1/chat/completions",
            body: chatBody("Hi", "\"max_tokens\":12,\"temperature\":0,\"stop\":[\(escaped)]"))
        let choice = try #require(json["choices"]?.arrayValue?.first)
        let text = try #require(choice["message"]?["content"]?.stringValue)
        #expect(full.hasPrefix(text + stop) || full.hasPrefix(text) && text.count < full.count)
        #expect(!text.contains(stop))
        #expect(choice["finish_reason"] == .string("stop"))
    }

    @Test func tokenizeAndDetokenizeRoundTrip() async throws {
        let (status, json) = try await TestServer.json(.post, "/tokenize", body: #"{"content":"hello world"}"#)
        #expect(status == .ok)
        let tokens = try #require(json["tokens"]?.arrayValue)
        #expect(json["count"]?.intValue == tokens.count)
        let back = try await TestServer.json(
            .post, "/detokenize", body: JSONValue.object(["tokens": .array(tokens)]).jsonText)
        #expect(back.json["content"] == .string("hello world"))
    }

    @Test func healthMetricsStatsAndPage() async throws {
        let health = try await TestServer.json(.get, "/health")
        #expect(health.status == .ok && health.json["status"] == .string("ok"))
        _ = try await TestServer.json(.post, "/v1/chat/completions", body: chatBody("Hi", "\"max_tokens\":2"))
        let metrics = try await TestServer.send(.get, "/metrics")
        #expect(metrics.headers[.contentType]?.hasPrefix("text/plain") == true)
        for name in [
            "onebit_requests_total{", "onebit_prompt_tokens_total", "onebit_generated_tokens_total",
            "onebit_time_to_first_token_seconds_bucket", "onebit_inter_token_latency_seconds_bucket",
            "onebit_queue_depth", "onebit_kv_cache_usage_ratio", "onebit_batch_size_sequences",
            "onebit_kv_blocks{state=\"used\"}", "onebit_kv_blocks{state=\"cached\"}",
            "onebit_kv_blocks{state=\"free\"}", "onebit_kv_blocks_total", "onebit_kv_block_positions",
        ] {
            #expect(metrics.body.contains(name), "missing \(name)")
        }
        let stats = try await TestServer.json(.get, "/stats")
        #expect(stats.json["generated_tokens"]?.intValue ?? 0 > 0)
        // Every block is used, cached or free.
        let blocks = ["kv_blocks_used", "kv_blocks_cached", "kv_blocks_free"].map { stats.json[$0]?.intValue ?? -1 }
        #expect(blocks.allSatisfy { $0 >= 0 })
        #expect(blocks.reduce(0, +) == stats.json["kv_blocks"]?.intValue)
        let page = try await TestServer.send(.get, "/")
        #expect(page.headers[.contentType]?.hasPrefix("text/html") == true)
        #expect(page.body.contains("/v1/chat/completions") && page.body.contains("/stats"))
    }
}
