import Hummingbird
import HummingbirdTesting
import OnebitEngine
import OnebitModel
import OnebitServer
import Testing

@testable import OnebitSpecialists

/// The specialist routes in-process, over the demo model, behind an API key.
@Suite struct RouteTests {
    static let key = "secret-key"

    static func router(_ runner: SpecialistRunner) -> Router<ServerContext> {
        let model = DemoModel.model
        let served = ServedModel(id: "onebit-demo", tokenizer: model.tokenizer, chatTemplate: model.chatTemplate)
        return Routes.makeRouter(
            model: served, scheduler: model.scheduler, metrics: ServerMetrics(), apiKey: key, specialists: runner)
    }

    static func send(
        _ router: Router<ServerContext>, _ method: HTTPRequest.Method, _ uri: String, body: String? = nil,
        key: String? = RouteTests.key
    ) async throws -> (HTTPResponse.Status, JSONValue) {
        let headers: HTTPFields = key.map { [.authorization: "Bearer \($0)"] } ?? [:]
        return try await Application(router: router).test(.router) { client in
            try await client.execute(
                uri: uri, method: method, headers: headers, body: body.map { ByteBuffer(string: $0) }
            ) { response in
                (response.status, try JSONValue(parsing: String(buffer: response.body)))
            }
        }
    }

    @Test func theRoutesNeedTheAPIKey() async throws {
        let router = Self.router(DemoModel.runner())
        for (method, uri) in [
            (HTTPRequest.Method.get, "/v1/specialists"), (.post, "/v1/specialists/scribe"), (.get, "/v1/reports"),
            (.get, "/v1/reports/x"),
        ] {
            let (status, json) = try await Self.send(router, method, uri, body: "{}", key: nil)
            #expect(status == .unauthorized, "\(uri)")
            #expect(json["error"]?["code"] == .string("invalid_api_key"))
        }
    }

    @Test func aRunIsAnsweredListedAndFetched() async throws {
        let runner = DemoModel.runner()
        let router = Self.router(runner)
        let (status, report) = try await Self.send(
            router, .post, "/v1/specialists/quartermaster", body: #"{"title":"Docs: typo in the README"}"#)
        #expect(status == .ok)
        #expect(report["output"]?["type"] == .string("docs") && report["output"]?["severity"] == .string("low"))
        let id = try #require(report["id"]?.stringValue)
        let (_, listed) = try await Self.send(router, .get, "/v1/reports?specialist=quartermaster&limit=5")
        #expect(listed["data"]?.arrayValue?.compactMap { $0["id"]?.stringValue } == [id])
        let (fetched, again) = try await Self.send(router, .get, "/v1/reports/\(id)")
        #expect(fetched == .ok && again == report)
        let (shown, definition) = try await Self.send(router, .get, "/v1/specialists/anvil")
        #expect(shown == .ok && definition["tools"] == .array([.string("git"), .string("shell")]))
    }

    @Test func badRequestsAreNamed() async throws {
        let router = Self.router(DemoModel.runner())
        let cases: [(String, String, HTTPResponse.Status, String?)] = [
            ("/v1/specialists/oracle", "{}", .notFound, "name"),
            ("/v1/specialists/quartermaster", #"{"title":""}"#, .badRequest, "title"),
            ("/v1/specialists/quartermaster", #"{"title":"x","issues":[{"id":1}]}"#, .badRequest, "issues[0].title"),
            ("/v1/specialists/quartermaster", "{not json", .badRequest, nil),
            (
                "/v1/specialists/librarian", #"{"repository":"/nonexistent/repository"}"#, .unprocessableContent,
                nil
            ),
        ]
        for (uri, body, expected, param) in cases {
            let (status, json) = try await Self.send(router, .post, uri, body: body)
            #expect(status == expected, "\(uri) \(body): \(json)")
            #expect(json["error"]?["param"] == param.map(JSONValue.string) ?? .null, "\(uri) \(body): \(json)")
        }
        let (status, json) = try await Self.send(router, .get, "/v1/reports?limit=0")
        #expect(status == .badRequest && json["error"]?["param"] == .string("limit"))
    }
}
