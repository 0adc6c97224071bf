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
}

extension DecodingSession {
    /// The argmax of the logits ``append(_:logitsFor:)`` returns.
    public func appendGreedy(_ token: Int) throws(SessionError) -> Int {
        Sampler.argmax(try append([token]) { _ in true }[0]!)
    }
}

/// Why a session could not take more tokens.
public enum SessionError: Error, CustomStringConvertible, Equatable {
    /// The sequence would outgrow the context window.
    case contextFull(capacity: Int, requested: Int)
    /// A token id is outside the vocabulary.
    case invalidToken(id: Int, vocabularySize: Int)
    /// Generation needs at least one prompt token.
    case emptyPrompt

    /// A message that names the problem and, where there is one, the fix.
    public var description: String {
        switch self {
        case .contextFull(let capacity, let requested):
            "the sequence needs \(requested) tokens but the context holds \(capacity); use a shorter prompt or a larger --ctx"
        case .invalidToken(let id, let vocabularySize):
            "token id \(id) is outside the vocabulary (0..<\(vocabularySize))"
        case .emptyPrompt:
            "the prompt is empty; generation needs at least one token to continue from"
        }
    }
}

extension Transformer {
    /// A fresh session holding up to `capacity` tokens.
    public func makeSession(capacity: Int) -> any DecodingSession {
        TransformerSession(transformer: self, capacity: capacity)
    }
}

private final class TransformerSession<B: Backend>: DecodingSession {
    let transformer: Transformer<B>
    let cache: B.KeyValueCache
    let capacity: Int
    var length = 0

    init(transformer: Transformer<B>, capacity: Int) {
        self.transformer = transformer
        self.capacity = capacity
        cache = transformer.makeCache(capacity: capacity)
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

    func truncate(to newLength: Int) {
        length = min(length, max(0, newLength))
    }

    /// Throws unless `tokens` fit the session and the vocabulary.
    private func check(_ tokens: [Int]) throws(SessionError) {
        guard length + tokens.count <= capacity else {
            throw .contextFull(capacity: capacity, requested: length + tokens.count)
        }
        let vocabularySize = transformer.config.vocabSize
        if let bad = tokens.first(where: { $0 < 0 || $0 >= vocabularySize }) {
            throw .invalidToken(id: bad, vocabularySize: vocabularySize)
        }
    }
}
