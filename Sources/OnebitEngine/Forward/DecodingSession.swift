import OnebitModel

/// One sequence being run: its key/value cache and how many tokens it holds.
///
/// Erases the backend type, so generation, scoring and serving code is written once for every device.
public protocol DecodingSession: AnyObject {
    /// Tokens the cache holds.
    var length: Int { get }
    /// Most tokens the session can hold.
    var capacity: Int { get }
    /// Appends `tokens` and returns the logits of the appended positions `wantLogits` selects (indices into
    /// `tokens`).
    func append(_ tokens: [Int], logitsFor wantLogits: (Int) -> Bool) throws(SessionError) -> [Int: [Float]]
    /// Forgets every token after the first `length` (a later append overwrites them).
    func truncate(to length: Int)
    /// Appends `token` and returns the index of the largest logit of its position (the lowest on ties), without
    /// bringing the logits to the host where the backend can avoid it.
    func appendGreedy(_ token: Int) throws(SessionError) -> Int
    /// Appends `token`, then each chosen token but the last: one step a draw of `draws`, each token the one its draw
    /// picks from the logits of the step before (``Sampler/token(drawing:from:)``; ``RowDraw/argmax`` for greedy
    /// steps), and they come back in order. Where the backend feeds each step's token to the next step itself, it is
    /// waited for once; with `next` above 0, the first step of the next run (of `next` steps, its first drawn by
    /// `nextDraw`) goes out before that wait, and the next call starts from it where it asks for that run.
    func appendSteps(_ token: Int, draws: [RowDraw], thenQueuing next: Int, drawing nextDraw: RowDraw)
        throws(SessionError) -> [Int]
}

extension DecodingSession {
    /// ``appendSteps(_:draws:thenQueuing:drawing:)`` with no run queued after it.
    public func appendSteps(_ token: Int, draws: [RowDraw]) throws(SessionError) -> [Int] {
        try appendSteps(token, draws: draws, thenQueuing: 0, drawing: .argmax)
    }

    /// The argmax of the logits ``append(_:logitsFor:)`` returns.
    public func appendGreedy(_ token: Int) throws(SessionError) -> Int {
        Sampler.argmax(try append([token]) { _ in true }[0]!)
    }
}

/// Why a session could not take more tokens.
public enum SessionError: Error, CustomStringConvertible, Equatable {
    /// The sequence would outgrow the context window.
    case contextFull(capacity: Int, requested: Int)
    /// The sequence would outgrow the keys and values the device had memory for when the session began.
    case deviceMemoryFull(capacity: Int, requested: Int)
    /// A token id is outside the vocabulary.
    case invalidToken(id: Int, vocabularySize: Int)
    /// Generation needs at least one prompt token.
    case emptyPrompt

    /// A message that names the problem and, where there is one, the fix.
    public var description: String {
        switch self {
        case .contextFull(let capacity, let requested):
            "the sequence needs \(requested) tokens but the context holds \(capacity); use a shorter prompt or a larger --ctx"
        case .deviceMemoryFull(let capacity, let requested):
            "the sequence needs \(requested) tokens but the device has memory for the keys and values of \(capacity); "
                + "use a shorter prompt or fewer new tokens, free device memory, or use --device cpu"
        case .invalidToken(let id, let vocabularySize):
            "token id \(id) is outside the vocabulary (0..<\(vocabularySize))"
        case .emptyPrompt:
            "the prompt is empty; generation needs at least one token to continue from"
        }
    }
}

extension Transformer {
    /// A fresh session holding up to `capacity` tokens, or fewer where the device has memory for fewer.
    public func makeSession(capacity: Int) -> any DecodingSession {
        TransformerSession(transformer: self, capacity: capacity)
    }
}

private final class TransformerSession<B: Backend>: DecodingSession {
    let transformer: Transformer<B>
    let cache: B.KeyValueCache
    let capacity: Int
    /// The capacity asked for, where device memory cut it down to ``capacity``.
    let requestedCapacity: Int
    var length = 0

    init(transformer: Transformer<B>, capacity: Int) {
        self.transformer = transformer
        requestedCapacity = capacity
        // A cache allocates its device memory as the sequence grows: one larger than the memory free now would
        // fail halfway through a generation instead of before it.
        self.capacity = transformer.cachePositions(upTo: capacity)
        // At least one position: a backend may size its blocks by the capacity.
        cache = transformer.makeCache(capacity: max(self.capacity, 1))
    }

    func append(_ tokens: [Int], logitsFor wantLogits: (Int) -> Bool) throws(SessionError) -> [Int: [Float]] {
        try check(tokens)
        let logits = transformer.forward(tokens, startingAt: length, cache: cache, logitsFor: wantLogits)
        length += tokens.count
        return logits
    }

    func appendGreedy(_ token: Int) throws(SessionError) -> Int {
        try check([token])
        let next = transformer.greedyNext(token, at: length, cache: cache)
        length += 1
        return next
    }

    func appendSteps(_ token: Int, draws: [RowDraw], thenQueuing next: Int, drawing nextDraw: RowDraw)
        throws(SessionError) -> [Int]
    {
        // The queued step writes the position after the run's.
        try check(Array(repeating: token, count: draws.count + (next > 0 ? 1 : 0)))
        let slice = Transformer<B>.Slice(tokens: [token], start: length, cache: cache, wantsLogits: true)
        let steps = transformer.decodeSteps(
            batch: [slice], count: draws.count, draws: draws.map { [$0] }, queueingNext: next,
            drawing: next > 0 ? [nextDraw] : [])
        length += draws.count
        return steps.map { $0[0] }
    }

    func truncate(to newLength: Int) {
        length = min(length, max(0, newLength))
    }

    /// Throws unless `tokens` fit the session and the vocabulary.
    private func check(_ tokens: [Int]) throws(SessionError) {
        guard length + tokens.count <= capacity else {
            if length + tokens.count <= requestedCapacity {
                throw .deviceMemoryFull(capacity: capacity, requested: length + tokens.count)
            }
            throw .contextFull(capacity: requestedCapacity, requested: length + tokens.count)
        }
        let vocabularySize = transformer.config.vocabSize
        if let bad = tokens.first(where: { $0 < 0 || $0 >= vocabularySize }) {
            throw .invalidToken(id: bad, vocabularySize: vocabularySize)
        }
    }
}
