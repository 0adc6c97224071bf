import OnebitEngine

/// One generation seen from the HTTP side: engine events become text pieces (stop strings held back and cut),
/// token timings go to the metrics, and the engine is told to stop as soon as the text is complete.
struct Generation {
    /// What one engine event produced for the client.
    struct Piece {
        var text = ""
        /// The tokens behind `text`, with their log-probabilities when asked for.
        var tokens: [GeneratedToken] = []
        /// Set on the last piece.
        var finishReason: String?
        var failure: String?
    }

    /// A whole generation.
    struct Outcome {
        var text = ""
        var logprobs: [GeneratedToken] = []
        var finishReason = "stop"
        var usage: GenerationUsage
        var failure: String?
    }

    private let stream: GenerationStream
    private var iterator: AsyncStream<GenerationEvent>.Iterator
    private var assembler: TextAssembler
    let wantsLogprobs: Bool
    private let metrics: ServerMetrics
    private let started: ContinuousClock.Instant
    /// When the first token came, once one has.
    private(set) var firstToken: ContinuousClock.Instant?
    private var last: ContinuousClock.Instant
    private var ended = false
    /// Token counts so far; final once ``next()`` returned `nil`.
    private(set) var usage: GenerationUsage

    init(
        stream: GenerationStream, assembler: TextAssembler, promptTokens: Int, wantsLogprobs: Bool,
        metrics: ServerMetrics
    ) {
        self.stream = stream
        iterator = stream.makeAsyncIterator()
        self.assembler = assembler
        self.wantsLogprobs = wantsLogprobs
        self.metrics = metrics
        started = .now
        last = started
        usage = GenerationUsage(promptTokens: promptTokens, completionTokens: 0)
    }

    /// The next piece, or `nil` after the last one.
    mutating func next() async -> Piece? {
        guard !ended, let event = await iterator.next() else {
            if !ended {
                // The stream ended without a final event: the generation was cancelled from this side.
                ended = true
                return Piece(finishReason: "stop")
            }
            return nil
        }
        switch event {
        case .token(let token):
            let now = ContinuousClock.now
            metrics.recordToken(after: Self.seconds(now - last), first: usage.completionTokens == 0)
            if firstToken == nil { firstToken = now }
            last = now
            usage.completionTokens += 1
            var piece = Piece(text: assembler.append(token.id), tokens: [token])
            if assembler.stopped {
                piece.finishReason = "stop"
                ended = true
                stream.cancel()
                recordCompletion()
            }
            return piece
        case .finished(let reason, let final):
            ended = true
            usage = final
            recordCompletion()
            return Piece(text: assembler.finish(), finishReason: reason == .length ? "length" : "stop")
        case .failed(let message):
            ended = true
            return Piece(failure: message)
        }
    }

    /// When the latest token came, once one has.
    var lastToken: ContinuousClock.Instant? { firstToken == nil ? nil : last }

    private func recordCompletion() {
        let first = firstToken ?? last
        let decoding = Self.seconds(last - first)
        metrics.recordCompletion(
            ServerMetrics.CompletionRecord(
                promptTokens: usage.promptTokens, completionTokens: usage.completionTokens,
                timeToFirstToken: Self.seconds(first - started),
                tokensPerSecond: decoding > 0 ? Double(usage.completionTokens - 1) / decoding : 0))
    }

    /// Runs the generation to its end.
    mutating func collect() async -> Outcome {
        var outcome = Outcome(usage: usage)
        while let piece = await next() {
            if let failure = piece.failure { outcome.failure = failure }
            outcome.text += piece.text
            outcome.logprobs += piece.tokens
            if let reason = piece.finishReason { outcome.finishReason = reason }
        }
        outcome.usage = usage
        return outcome
    }

    /// Stops the engine's work on this generation (a no-op once it has ended).
    func cancel() { stream.cancel() }

    private static func seconds(_ duration: Duration) -> Double {
        let (seconds, attoseconds) = duration.components
        return Double(seconds) + Double(attoseconds) * 1e-18
    }
}
