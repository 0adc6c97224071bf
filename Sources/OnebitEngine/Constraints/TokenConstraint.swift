/// A grammar that generated text must follow, over the vocabulary it is generated in.
///
/// Attach one to a ``GenerationRequest``: before every sampled token, the scheduler masks every token the grammar
/// forbids, and it ends the generation (reason `stop`) as soon as the value is complete and nothing may follow.
public struct TokenConstraint: Sendable {
    /// What the output must be.
    public let grammar: JSONGrammar
    /// The model's tokens as bytes; build it once per model and share it.
    public let vocabulary: TokenVocabulary

    /// Pairs a grammar with the vocabulary of the model it constrains.
    public init(grammar: JSONGrammar, vocabulary: TokenVocabulary) {
        self.grammar = grammar
        self.vocabulary = vocabulary
    }
}

/// One sequence's progress through a ``TokenConstraint``, with the allowed-token masks it has already computed.
///
/// Masks are memoized per matcher state: inside a string, or at the same place of the next array item, the state
/// repeats, so most steps cost one dictionary lookup instead of a walk over the vocabulary trie.
final class ConstraintState {
    let constraint: TokenConstraint
    private(set) var matcher: JSONMatcher
    private let endOfSequence: [Int]
    private var masks: [JSONMatcher: [UInt64]] = [:]
    /// How many masks were computed by walking the trie rather than found memoized (what benchmarks report).
    private(set) var maskMisses = 0
    /// Most masks kept; the oldest are dropped wholesale past this (a mask of a 128k vocabulary is 16 KiB).
    private static let maskLimit = 256

    init(_ constraint: TokenConstraint, endOfSequence: Set<Int>) {
        self.constraint = constraint
        matcher = JSONMatcher(grammar: constraint.grammar)
        self.endOfSequence = endOfSequence.sorted().filter { $0 >= 0 && $0 < constraint.vocabulary.size }
    }

    /// Whether the value is complete and nothing may follow it.
    var isComplete: Bool { matcher.isComplete(in: constraint.grammar) }

    /// The tokens allowed next as a bit set (bit `i % 64` of word `i / 64`); end-of-sequence tokens are allowed
    /// only once the value is complete.
    func allowedTokens() -> [UInt64] {
        let vocabulary = constraint.vocabulary
        let key = matcher.memoKey(in: constraint.grammar, horizon: vocabulary.longestToken)
        var mask: [UInt64]
        if let known = masks[key] {
            mask = known
        } else {
            mask = vocabulary.allowedTokens(after: matcher, in: constraint.grammar)
            maskMisses += 1
            if masks.count >= Self.maskLimit { masks.removeAll(keepingCapacity: true) }
            masks[key] = mask
        }
        let canEnd = matcher.canEnd
        for token in endOfSequence {
            if canEnd {
                mask[token >> 6] |= 1 << UInt64(token & 63)
            } else {
                mask[token >> 6] &= ~(1 << UInt64(token & 63))
            }
        }
        return mask
    }

    /// Reads the bytes of `token`; returns `false` when the grammar does not allow them.
    @discardableResult
    func accept(_ token: Int) -> Bool {
        guard let bytes = constraint.vocabulary.bytes(of: token) else { return false }
        for byte in bytes where !matcher.advance(byte, in: constraint.grammar) { return false }
        return true
    }

    /// Sets every logit of a token outside `mask` to minus infinity.
    static func apply(_ mask: [UInt64], to logits: inout [Float]) {
        for index in logits.indices where index >> 6 >= mask.count || mask[index >> 6] & (1 << UInt64(index & 63)) == 0
        {
            logits[index] = -.infinity
        }
    }
}
