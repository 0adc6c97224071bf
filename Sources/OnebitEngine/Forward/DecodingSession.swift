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
        guard length + tokens.count <= capacity else {
            throw .contextFull(capacity: capacity, requested: length + tokens.count)
        }
        let vocabularySize = transformer.config.vocabSize
        if let bad = tokens.first(where: { $0 < 0 || $0 >= vocabularySize }) {
            throw .invalidToken(id: bad, vocabularySize: vocabularySize)
        }
        let logits = transformer.forward(tokens, startingAt: length, cache: cache, logitsFor: wantLogits)
        length += tokens.count
        return logits
    }

    func truncate(to newLength: Int) {
        length = min(length, max(0, newLength))
    }
}
