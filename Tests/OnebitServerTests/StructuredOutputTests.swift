import Hummingbird
import HummingbirdTesting
import OnebitModel
import Testing

@testable import OnebitServer

@Suite struct StructuredOutputTests {
    static let schema = """
        {"type":"object","properties":{"name":{"type":"string","maxLength":8},\
        "count":{"type":"integer"},"tags":{"type":"array","items":{"enum":["a","b"]},"maxItems":3}},\
        "required":["name","count","tags"],"additionalProperties":false}
        """

    @Test func chatWithAJSONSchemaAnswersAValueOfTheSchema() async throws {
        for seed in 0..<3 {
            let format =
                #""response_format":{"type":"json_schema","json_schema":{"name":"t","strict":true,"schema":"#
                + Self.schema + "}}"
            let (status, json) = try await TestServer.json(
                .post, "/v1/chat/completions", body: chatBody("Hi", "\"seed\":\(seed),\(format)"))
            #expect(status == .ok)
            let choice = try #require(json["choices"]?.arrayValue?.first)
            #expect(choice["finish_reason"] == .string("stop"))
            let content = try #require(choice["message"]?["content"]?.stringValue)
            let value = try JSONValue(parsing: content)
            #expect(value.objectValue.map { Array($0.keys) } == ["name", "count", "tags"], "\(content)")
            #expect(value["count"]?.intValue != nil && (value["tags"]?.arrayValue?.count ?? 9) <= 3, "\(content)")
        }
    }

    @Test func completionsWithJSONObjectAnswerAnObject() async throws {
        let body = #"{"prompt":"Data:","seed":5,"max_tokens":200,"response_format":{"type":"json_object"}}"#
        let (status, json) = try await TestServer.json(.post, "/v1/completions", body: body)
        #expect(status == .ok)
        let choice = try #require(json["choices"]?.arrayValue?.first)
        let text = try #require(choice["text"]?.stringValue)
        if choice["finish_reason"] == .string("stop") {
            #expect(try JSONValue(parsing: text).objectValue != nil, "\(text)")
        } else {
            #expect(text.hasPrefix("{"), "\(text)")
        }
    }

    @Test func schemasTheEngineCannotEnforceAre400sNamingTheKeyword() async throws {
        let schema = #"{"type":"object","properties":{"id":{"type":"string","pattern":"^[a-z]+$"}}}"#
        let format = #""response_format":{"type":"json_schema","json_schema":{"name":"t","schema":\#(schema)}}"#
        let (status, json) = try await TestServer.json(.post, "/v1/chat/completions", body: chatBody("Hi", format))
        #expect(status == .badRequest)
        #expect(json["error"]?["param"] == .string("response_format.json_schema.schema"))
        let message = try #require(json["error"]?["message"]?.stringValue)
        #expect(message.contains("\"pattern\"") && message.contains("schema.properties.id"), "\(message)")

        for (format, param) in [
            (#"{"type":"xml"}"#, "response_format.type"), (#"{"type":"json_schema"}"#, "response_format.json_schema"),
            (#""json""#, "response_format"),
        ] {
            let (status, json) = try await TestServer.json(
                .post, "/v1/chat/completions", body: chatBody("Hi", "\"response_format\":\(format)"))
            #expect(status == .badRequest)
            #expect(json["error"]?["param"] == .string(param), "\(format)")
        }
    }

    @Test func textFormatLeavesTheOutputFree() async throws {
        let (status, _) = try await TestServer.json(
            .post, "/v1/chat/completions", body: chatBody("Hi", #""max_tokens":3,"response_format":{"type":"text"}"#))
        #expect(status == .ok)
    }
}
