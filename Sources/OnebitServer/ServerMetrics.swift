import OnebitEngine
import Synchronization

/// Counters and latency histograms of the server, written in the Prometheus text format.
///
/// Small enough to keep here rather than pull a metrics package into every build: a few counters, two histograms
/// and the scheduler's gauges, read at scrape time.
public final class ServerMetrics: Sendable {
    private struct State {
        var requests: [String: Int] = [:]
        var promptTokens = 0
        var generatedTokens = 0
        var timeToFirstToken = Histogram(bounds: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30])
        var interTokenLatency = Histogram(bounds: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5])
        var lastCompletion: CompletionRecord?
    }

    /// One finished generation, as Lemonade's `/stats` reports the last one.
    struct CompletionRecord: Equatable {
        var promptTokens: Int
        var completionTokens: Int
        /// Seconds from submission to the first generated token.
        var timeToFirstToken: Double
        /// Tokens generated after the first, a second.
        var tokensPerSecond: Double
    }

    private let state = Mutex(State())

    /// Empty metrics.
    public init() {}

    /// Counts a finished HTTP request.
    func recordRequest(path: String, status: Int) {
        let key = "path=\"\(Self.escaped(path))\",status=\"\(status)\""
        state.withLock { $0.requests[key, default: 0] += 1 }
    }

    func recordPromptTokens(_ count: Int) { state.withLock { $0.promptTokens += count } }

    /// One generated token that arrived `seconds` after the previous one (or after submission, for the first).
    func recordToken(after seconds: Double, first: Bool) {
        state.withLock { state in
            state.generatedTokens += 1
            if first {
                state.timeToFirstToken.observe(seconds)
            } else {
                state.interTokenLatency.observe(seconds)
            }
        }
    }

    /// Keeps `record` as the last generation that finished.
    func recordCompletion(_ record: CompletionRecord) { state.withLock { $0.lastCompletion = record } }

    /// The last generation that finished, if any has.
    var lastCompletion: CompletionRecord? { state.withLock { $0.lastCompletion } }

    /// Tokens generated since start.
    var generatedTokens: Int { state.withLock { $0.generatedTokens } }

    /// The exposition text, with the scheduler's current load as gauges.
    func render(_ stats: SchedulerStatistics) -> String {
        let state = state.withLock { $0 }
        var out = ""
        out += "# HELP onebit_requests_total HTTP requests answered, by path and status.\n"
        out += "# TYPE onebit_requests_total counter\n"
        for (labels, count) in state.requests.sorted(by: { $0.key < $1.key }) {
            out += "onebit_requests_total{\(labels)} \(count)\n"
        }
        out += Self.single(
            "onebit_prompt_tokens_total", "counter", "Prompt tokens of accepted requests.", state.promptTokens)
        out += Self.single("onebit_generated_tokens_total", "counter", "Tokens generated.", state.generatedTokens)
        out += state.timeToFirstToken.render(
            "onebit_time_to_first_token_seconds", "Seconds from submission to the first generated token.")
        out += state.interTokenLatency.render(
            "onebit_inter_token_latency_seconds", "Seconds between consecutive generated tokens of a request.")
        out += Self.single("onebit_queue_depth", "gauge", "Requests waiting for a free sequence.", stats.queued)
        out += Self.single("onebit_running_sequences", "gauge", "Sequences prefilling or generating.", stats.running)
        out += Self.single(
            "onebit_batch_size_tokens", "gauge", "Tokens in the last engine step.", stats.lastStepTokens)
        out += Self.single(
            "onebit_batch_size_sequences", "gauge", "Sequences in the last engine step.", stats.lastStepSequences)
        out += Self.single("onebit_kv_cache_tokens", "gauge", "Cache positions in use.", stats.cachedTokens)
        out += Self.single(
            "onebit_kv_cache_capacity_tokens", "gauge", "Cache positions the KV pool holds.", stats.cacheCapacity)
        out += "# HELP onebit_kv_cache_usage_ratio Fraction of the cache positions in use.\n"
        out += "# TYPE onebit_kv_cache_usage_ratio gauge\n"
        let ratio = stats.cacheCapacity > 0 ? Double(stats.cachedTokens) / Double(stats.cacheCapacity) : 0
        out += "onebit_kv_cache_usage_ratio \(ratio)\n"
        out += "# HELP onebit_kv_blocks KV cache blocks of the pool, by state: held by running sequences, cached for "
        out += "reuse by a later prompt, or free.\n# TYPE onebit_kv_blocks gauge\n"
        out += "onebit_kv_blocks{state=\"used\"} \(stats.keyValueBlocksUsed)\n"
        out += "onebit_kv_blocks{state=\"cached\"} \(stats.keyValueBlocksCached)\n"
        out += "onebit_kv_blocks{state=\"free\"} \(stats.keyValueBlocksFree)\n"
        out += Self.single("onebit_kv_blocks_total", "gauge", "KV cache blocks in the pool.", stats.keyValueBlocks)
        out += Self.single(
            "onebit_kv_block_positions", "gauge", "Token positions per KV cache block.", stats.keyValueBlockPositions)
        out += Self.single(
            "onebit_prefix_cache_hit_tokens_total", "counter",
            "Prompt tokens found in KV blocks of an earlier or running request and not run again.",
            stats.reusedPromptTokens)
        out += Self.single("onebit_engine_steps_total", "counter", "Engine steps run.", stats.steps)
        out += Self.single(
            "onebit_engine_queued_steps_total", "counter",
            "Engine steps queued behind one another, their greedy tokens read back together.", stats.queuedSteps)
        return out
    }

    private static func single(_ name: String, _ type: String, _ help: String, _ value: Int) -> String {
        "# HELP \(name) \(help)\n# TYPE \(name) \(type)\n\(name) \(value)\n"
    }

    private static func escaped(_ s: String) -> String {
        var out = ""
        for c in s {
            switch c {
            case "\\": out += "\\\\"
            case "\"": out += "\\\""
            case "\n": out += "\\n"
            default: out.append(c)
            }
        }
        return out
    }
}

/// A cumulative histogram with fixed upper bounds, in seconds.
struct Histogram: Sendable {
    let bounds: [Double]
    private(set) var counts: [Int]
    private(set) var sum = 0.0
    private(set) var count = 0

    init(bounds: [Double]) {
        self.bounds = bounds
        counts = Array(repeating: 0, count: bounds.count)
    }

    mutating func observe(_ value: Double) {
        for (index, bound) in bounds.enumerated() where value <= bound { counts[index] += 1 }
        sum += value
        count += 1
    }

    func render(_ name: String, _ help: String) -> String {
        var out = "# HELP \(name) \(help)\n# TYPE \(name) histogram\n"
        for (bound, c) in zip(bounds, counts) { out += "\(name)_bucket{le=\"\(bound)\"} \(c)\n" }
        out += "\(name)_bucket{le=\"+Inf\"} \(count)\n\(name)_sum \(sum)\n\(name)_count \(count)\n"
        return out
    }
}
