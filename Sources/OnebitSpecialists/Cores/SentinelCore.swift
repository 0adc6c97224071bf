import OnebitModel

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Checks a running onebit server: `/health` and its latency, the error rate from `/metrics`, and the resident
/// memory of its process.
///
/// Input: `url` (default: the server the specialist runs in), `pid` (default: this process), `latency_budget_ms`
/// (default 1000) and `error_rate_budget` (default 0.05, the share of answers with a 5xx status).
struct SentinelCore: SpecialistCore {
    func run(_ input: JSONValue, tools: ToolBox) async throws(SpecialistError) -> CoreResult {
        guard let base = input["url"]?.stringValue ?? tools.serverURL else {
            throw .invalidInput(
                path: "input.url",
                reason: "is required outside `onebit serve`: the server's URL, such as "
                    + "http://127.0.0.1:8080")
        }
        let url = base.hasSuffix("/") ? String(base.dropLast()) : base
        let latencyBudget = input["latency_budget_ms"]?.doubleValue ?? 1000
        let errorBudget = input["error_rate_budget"]?.doubleValue ?? 0.05
        var problems: [String] = []
        var latency = -1.0
        var reachable = false
        do {
            let health = try await tools.get(url + "/health")
            latency = (health.seconds * 100_000).rounded() / 100
            reachable = health.status == 200
            if !reachable { problems.append("/health answered \(health.status)") }
        } catch {
            problems.append(error.description)
        }
        var requests = 0
        var errors = 0
        if reachable, let metrics = try? await tools.get(url + "/metrics"), metrics.status == 200 {
            (requests, errors) = Self.requestCounts(metrics.body)
        }
        let errorRate = requests > 0 ? Double(errors) / Double(requests) : 0
        let pid = input["pid"]?.intValue
        let rss = Self.residentBytes(pid: pid) ?? -1
        if reachable, latency > latencyBudget {
            problems.append("/health took \(latency) ms (budget \(latencyBudget) ms)")
        }
        if errorRate > errorBudget {
            problems.append("\(errors) of \(requests) answers were server errors")
        }
        let status = !reachable ? "down" : problems.isEmpty ? "healthy" : "degraded"
        let facts =
            "The server at \(url) is \(status): health latency \(latency) ms, \(requests) requests, \(errors) "
            + "server errors, resident memory \(rss / (1 << 20)) MiB."
            + (problems.isEmpty ? "" : " Problems: " + problems.joined(separator: "; "))
        return CoreResult(
            fields: [
                "url": .string(url), "status": .string(status), "healthy": .bool(status == "healthy"),
                "latency_ms": .number(latency), "requests": .integer(requests), "server_errors": .integer(errors),
                "error_rate": .number((errorRate * 10_000).rounded() / 10_000), "rss_bytes": .integer(rss),
                "problems": .strings(problems),
            ], textField: "explanation", facts: facts, fallbackText: facts)
    }

    /// All answers and the 5xx answers counted by `onebit_requests_total` in a Prometheus text exposition.
    static func requestCounts(_ exposition: String) -> (total: Int, serverErrors: Int) {
        var total = 0
        var serverErrors = 0
        for line in exposition.split(separator: "\n") where line.hasPrefix("onebit_requests_total{") {
            guard let count = line.split(separator: " ").last.flatMap({ Int($0) }) else { continue }
            total += count
            if let status = line.firstRange(of: "status=\"").map({ line[$0.upperBound...].prefix(3) }),
                status.hasPrefix("5")
            {
                serverErrors += count
            }
        }
        return (total, serverErrors)
    }

    /// `VmRSS` of `/proc/PID/status` (this process when `pid` is nil) in bytes; `nil` where there is no such file.
    static func residentBytes(pid: Int?) -> Int? {
        let path = "/proc/\(pid.map(String.init) ?? "self")/status"
        guard let file = fopen(path, "r") else { return nil }
        defer { fclose(file) }
        var line = [CChar](repeating: 0, count: 512)
        while fgets(&line, Int32(line.count), file) != nil {
            let text = String(decoding: line.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
            if text.hasPrefix("VmRSS:") {
                let kilobytes = text.split { $0 == " " || $0 == "\t" }.dropFirst().first.flatMap { Int($0.trimmed) }
                return kilobytes.map { $0 * 1024 }
            }
        }
        return nil
    }
}
