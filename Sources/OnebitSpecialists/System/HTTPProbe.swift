import Dispatch

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// An answer to a probe.
public struct HTTPProbeResponse: Sendable, Equatable {
    /// The HTTP status code.
    public var status: Int
    /// The body, decoded as UTF-8.
    public var body: String
    /// Seconds from connecting to the last byte.
    public var seconds: Double
}

/// Plain `GET`s of an `http://` URL with a deadline: how the sentinel and `serve --supervise` look at a server.
///
/// Hand-written over a blocking socket on a Dispatch thread: the only peer is onebit's own server (usually on
/// loopback), and an HTTP client package (async-http-client) would add a large build for two GET requests.
public enum HTTPProbe {
    /// Fetches `url` (`http://host:port/path`), failing after `timeout` seconds.
    public static func get(_ url: String, timeout: Double = 5) async throws(SpecialistError) -> HTTPProbeResponse {
        let result: Result<HTTPProbeResponse, SpecialistError> = await withCheckedContinuation { continuation in
            DispatchQueue.global().async { continuation.resume(returning: getBlocking(url, timeout: timeout)) }
        }
        return try result.get()
    }

    /// Splits `http://host[:port][/path]`.
    static func parse(_ url: String) -> (host: String, port: Int, path: String)? {
        guard url.hasPrefix("http://") else { return nil }
        let rest = url.dropFirst(7)
        let authority = rest.prefix { $0 != "/" }
        let path = rest.dropFirst(authority.count)
        let parts = authority.split(separator: ":", omittingEmptySubsequences: false)
        guard !authority.isEmpty, parts.count <= 2 else { return nil }
        let port = parts.count == 2 ? Int(parts[1]) : 80
        guard let port, (1...65535).contains(port) else { return nil }
        return (String(parts[0]), port, path.isEmpty ? "/" : String(path))
    }

    /// ``get(_:timeout:)`` on the calling thread.
    static func getBlocking(_ url: String, timeout: Double) -> Result<HTTPProbeResponse, SpecialistError> {
        func failure(_ reason: String) -> Result<HTTPProbeResponse, SpecialistError> {
            .failure(.toolFailed(tool: "http", reason: "GET \(url): \(reason)"))
        }
        guard let (host, port, path) = parse(url) else {
            return failure("not an http://host:port/path URL")
        }
        let start = ContinuousClock.now
        var hints = addrinfo()
        hints.ai_family = AF_UNSPEC
        #if canImport(Glibc)
            hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        #else
            hints.ai_socktype = SOCK_STREAM
        #endif
        var list: UnsafeMutablePointer<addrinfo>?
        guard getaddrinfo(host, String(port), &hints, &list) == 0, let first = list else {
            return failure("cannot resolve \(host)")
        }
        defer { freeaddrinfo(list) }
        let descriptor = socket(first.pointee.ai_family, first.pointee.ai_socktype, first.pointee.ai_protocol)
        guard descriptor >= 0 else { return failure("no socket") }
        defer { close(descriptor) }
        var limit = timeval(tv_sec: Int(timeout), tv_usec: Int((timeout - timeout.rounded(.down)) * 1e6))
        setsockopt(descriptor, SOL_SOCKET, SO_RCVTIMEO, &limit, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(descriptor, SOL_SOCKET, SO_SNDTIMEO, &limit, socklen_t(MemoryLayout<timeval>.size))
        guard connect(descriptor, first.pointee.ai_addr, first.pointee.ai_addrlen) == 0 else {
            return failure("cannot connect: \(String(cString: strerror(errno)))")
        }
        let request = Array("GET \(path) HTTP/1.1\r\nHost: \(host):\(port)\r\nConnection: close\r\n\r\n".utf8)
        guard request.withUnsafeBytes({ send(descriptor, $0.baseAddress, $0.count, 0) }) == request.count else {
            return failure("could not send the request")
        }
        var bytes: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 16 << 10)
        while true {
            let count = buffer.withUnsafeMutableBytes { recv(descriptor, $0.baseAddress, $0.count, 0) }
            if count > 0 {
                bytes += buffer[0..<count]
                if bytes.count > 8 << 20 { return failure("the answer is larger than 8 MiB") }
            } else if count == 0 {
                break
            } else if errno != EINTR {
                return failure(errno == EAGAIN ? "no answer within \(timeout) s" : String(cString: strerror(errno)))
            }
        }
        let elapsed = ContinuousClock.now - start
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) * 1e-18
        guard let response = decode(bytes) else { return failure("not an HTTP/1.1 answer") }
        return .success(HTTPProbeResponse(status: response.status, body: response.body, seconds: seconds))
    }

    /// The status and body of a whole HTTP/1.1 response (a chunked body is joined).
    static func decode(_ bytes: [UInt8]) -> (status: Int, body: String)? {
        let separator: [UInt8] = [13, 10, 13, 10]
        guard let end = bytes.indices.first(where: { bytes[$0...].starts(with: separator) }) else { return nil }
        let head = String(decoding: bytes[..<end], as: UTF8.self)
        let lines = head.split(separator: "\r\n")
        guard let statusLine = lines.first, statusLine.hasPrefix("HTTP/1."),
            case let words = statusLine.split(separator: " "), words.count >= 2, let status = Int(words[1])
        else { return nil }
        var body = Array(bytes[(end + 4)...])
        let chunked = lines.dropFirst().contains {
            $0.lowercased().hasPrefix("transfer-encoding:") && $0.lowercased().contains("chunked")
        }
        if chunked {
            var joined: [UInt8] = []
            var index = 0
            while let lineEnd = body[index...].firstIndex(of: 13), lineEnd + 1 < body.count {
                let sizeText = String(decoding: body[index..<lineEnd], as: UTF8.self)
                guard let size = Int(sizeText.prefix { $0 != ";" }, radix: 16), size > 0 else { break }
                let start = lineEnd + 2
                guard start + size <= body.count else { return nil }
                joined += body[start..<(start + size)]
                index = start + size + 2
                if index >= body.count { break }
            }
            body = joined
        }
        return (status, String(decoding: body, as: UTF8.self))
    }
}
