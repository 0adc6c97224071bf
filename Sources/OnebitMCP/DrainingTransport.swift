import FoundationEssentials
import Logging
import MCP
import OnebitModel

/// Wraps a transport so that the end of its input ends the session only once every request received on it has
/// been answered.
///
/// The SDK's server stops at the end of its input and answers requests in tasks of their own, so a client that
/// writes its requests to `onebit mcp` and closes standard input (a script, a pipe) would lose the answers still
/// being generated. This transport holds the input stream open until each request id seen has had its response
/// sent, or was cancelled by the client (`notifications/cancelled`, which the server never answers).
public actor DrainingTransport: Transport {
    /// Events of the wrapper itself (none are logged).
    public nonisolated let logger = Logger(label: "onebit.mcp.draining", factory: { _ in SwiftLogNoOpLogHandler() })
    private let inner: any Transport
    /// Ids (as JSON text) of requests received and not yet answered.
    private var pending: Set<String> = []
    private var inputEnded = false
    private var output: AsyncThrowingStream<Data, Swift.Error>.Continuation?

    /// Wraps `inner`.
    public init(_ inner: any Transport) {
        self.inner = inner
    }

    /// Connects the wrapped transport.
    public func connect() async throws {
        try await inner.connect()
    }

    /// Disconnects the wrapped transport and ends the input at once.
    public func disconnect() async {
        await inner.disconnect()
        output?.finish()
    }

    /// Sends through the wrapped transport, noting the requests this answers.
    public func send(_ data: Data) async throws {
        try await inner.send(data)
        for message in Self.messages(in: data) where message["method"] == nil {
            if let id = message["id"], id != .null { pending.remove(id.jsonText) }
        }
        finishIfDrained()
    }

    /// The wrapped transport's input, which ends after its own has ended and every request has been answered.
    public func receive() -> AsyncThrowingStream<Data, Swift.Error> {
        let (stream, continuation) = AsyncThrowingStream<Data, Swift.Error>.makeStream()
        output = continuation
        let inner = inner
        Task {
            do {
                for try await data in await inner.receive() {
                    // Noted before the server sees the request, so its answer cannot arrive first.
                    note(data)
                    continuation.yield(data)
                }
            } catch {
                continuation.finish(throwing: error)
                return
            }
            inputDidEnd()
        }
        return stream
    }

    private func note(_ data: Data) {
        for message in Self.messages(in: data) {
            guard let method = message["method"]?.stringValue else { continue }
            if let id = message["id"], id != .null {
                pending.insert(id.jsonText)
            } else if method == "notifications/cancelled", let id = message["params"]?["requestId"] {
                pending.remove(id.jsonText)
            }
        }
        finishIfDrained()
    }

    private func inputDidEnd() {
        inputEnded = true
        finishIfDrained()
    }

    private func finishIfDrained() {
        guard inputEnded, pending.isEmpty else { return }
        output?.finish()
    }

    /// The JSON-RPC messages of one transport message: the object itself, or the members of a batch.
    private static func messages(in data: Data) -> [JSONValue] {
        guard let value = try? JSONValue(parsing: data) else { return [] }
        return value.arrayValue ?? [value]
    }
}
