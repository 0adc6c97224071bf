import Hummingbird
import HummingbirdTesting
import OnebitEngine
import OnebitModel
import Testing

@testable import OnebitServer

/// A server over the committed `hf-256` fixture, driven in-process.
enum TestServer {
    /// `Tests/Fixtures/models/hf-256`, found from this file's path.
    static let modelPath: String = {
        var parts = "\(#filePath)".split(separator: "/", omittingEmptySubsequences: false)
        parts.removeLast(2)
        return parts.joined(separator: "/") + "/Fixtures/models/hf-256"
    }()

    /// The fixture, loaded once.
    static let model: LoadedModel = {
        do {
            return try ModelLoader.load(path: modelPath)
        } catch {
            preconditionFailure("the committed fixture must load: \(error)")
        }
    }()

    /// The scheduler most tests share: small context so overflow is cheap to reach.
    static let shared = make(contextLength: 256).1

    /// A router over the shared scheduler (routers are cheap; only the scheduler holds the model).
    static func sharedRouter() -> Router<ServerContext> { router(shared) }

    static func router(
        _ scheduler: Scheduler, apiKey: String? = nil, metrics: ServerMetrics = TestServer.metrics
    ) -> Router<ServerContext> {
        let served = ServedModel(id: "hf-256", tokenizer: model.tokenizer, chatTemplate: model.chatTemplate)
        return Routes.makeRouter(model: served, scheduler: scheduler, metrics: metrics, apiKey: apiKey)
    }

    /// The metrics of every test router.
    static let metrics = ServerMetrics()

    /// A fresh scheduler and a router over it (with metrics of its own, where a test reads them back).
    static func make(
        contextLength: Int = 256, maxConcurrency: Int = 4, maxQueued: Int = 16, apiKey: String? = nil,
        metrics: ServerMetrics = TestServer.metrics
    ) -> (Router<ServerContext>, Scheduler) {
        let scheduler = Scheduler(
            model: LanguageModel(model),
            configuration: SchedulerConfiguration(
                maxConcurrency: maxConcurrency, contextLength: contextLength, maxQueued: maxQueued))
        return (router(scheduler, apiKey: apiKey, metrics: metrics), scheduler)
    }

    /// Sends one request to `router` and returns the status, headers and body.
    static func send(
        _ method: HTTPRequest.Method, _ uri: String, body: String? = nil, headers: HTTPFields = [:],
        on router: Router<ServerContext> = sharedRouter()
    ) async throws -> (status: HTTPResponse.Status, headers: HTTPFields, body: String) {
        let app = Application(router: router)
        return try await app.test(.router) { client in
            try await client.execute(
                uri: uri, method: method, headers: headers, body: body.map { ByteBuffer(string: $0) }
            ) { response in
                (response.status, response.headers, String(buffer: response.body))
            }
        }
    }

    /// Sends a JSON request and parses the JSON answer.
    static func json(
        _ method: HTTPRequest.Method, _ uri: String, body: String? = nil, headers: HTTPFields = [:],
        on router: Router<ServerContext> = sharedRouter()
    ) async throws -> (status: HTTPResponse.Status, json: JSONValue) {
        let (status, _, text) = try await send(method, uri, body: body, headers: headers, on: router)
        return (status, try JSONValue(parsing: text))
    }

    /// The `data:` payloads of an SSE body, in order; fails if any frame is not `data: ...` followed by a blank
    /// line.
    static func events(_ body: String) -> [String] {
        var frames = body.split(separator: "\n\n", omittingEmptySubsequences: false).map(String.init)
        #expect(frames.last == "", "the stream must end with a blank line")
        frames.removeLast()
        return frames.map { frame in
            #expect(frame.hasPrefix("data: "), "not an SSE data frame: \(frame)")
            return String(frame.dropFirst(6))
        }
    }
}

/// `{"role":"user","content":text}` messages as a request body with extra members.
func chatBody(_ text: String = "Hello", _ extra: String = "") -> String {
    "{\"messages\":[{\"role\":\"user\",\"content\":\"\(text)\"}]\(extra.isEmpty ? "" : "," + extra)}"
}
