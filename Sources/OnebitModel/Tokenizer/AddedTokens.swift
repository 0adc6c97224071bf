/// A token of `added_tokens`: matched in the text before anything else, as one piece.
struct AddedToken: Sendable {
    var id: Int
    var content: String
    var isSpecial: Bool
    /// Matches only where the text around it is not a word character.
    var singleWord: Bool
    /// Swallows the white space on its left.
    var leftStrip: Bool
    /// Swallows the white space on its right.
    var rightStrip: Bool
    /// Matched in the normalized text rather than the raw text.
    var normalized: Bool
}

/// Finds added tokens in text the way `tokenizers` does: leftmost-longest, non-overlapping matches, then the
/// `single_word`, `lstrip` and `rstrip` rules of the matched token.
struct AddedTokenMatcher: Sendable {
    private struct Pattern: Sendable {
        var scalars: [Unicode.Scalar]
        var token: AddedToken
    }

    /// Patterns by first scalar, longest first, so the first that matches at a position is the longest.
    private let patternsByFirstScalar: [Unicode.Scalar: [Pattern]]

    /// Matches `tokens` by their content, or by their normalized content when `normalizer` is given.
    init(tokens: [AddedToken], normalizer: [NormalizerStep]?) {
        var table: [Unicode.Scalar: [Pattern]] = [:]
        for token in tokens {
            var scalars = Array(token.content.unicodeScalars)
            if let normalizer { scalars = normalizer.apply(scalars) }
            guard let first = scalars.first else { continue }
            table[first, default: []].append(Pattern(scalars: scalars, token: token))
        }
        patternsByFirstScalar = table.mapValues { $0.sorted { $0.scalars.count > $1.scalars.count } }
    }

    var isEmpty: Bool { patternsByFirstScalar.isEmpty }

    /// Cuts `scalars` into added tokens and the text between them (empty text is dropped).
    func split(_ scalars: [Unicode.Scalar], into output: inout [Segment]) {
        guard !isEmpty else {
            if !scalars.isEmpty { output.append(.text(scalars)) }
            return
        }
        var pieceStart = 0
        var position = 0
        while position < scalars.count {
            guard let candidates = patternsByFirstScalar[scalars[position]],
                let pattern = candidates.first(where: { scalars[position...].starts(with: $0.scalars) })
            else {
                position += 1
                continue
            }
            var start = position
            var end = position + pattern.scalars.count
            // The automaton moves past a match even when the rules below then discard it.
            position = end
            let token = pattern.token
            if token.singleWord {
                let wordBefore = start > 0 && scalars[start - 1].isWordCharacter
                let wordAfter = end < scalars.count && scalars[end].isWordCharacter
                if wordBefore || wordAfter { continue }
            }
            if token.leftStrip {
                while start > pieceStart && scalars[start - 1].properties.isWhitespace { start -= 1 }
            }
            if token.rightStrip {
                while end < scalars.count && scalars[end].properties.isWhitespace { end += 1 }
            }
            if pieceStart < start { output.append(.text(Array(scalars[pieceStart..<start]))) }
            output.append(.token(token.id))
            pieceStart = end
        }
        if pieceStart < scalars.count { output.append(.text(Array(scalars[pieceStart...]))) }
    }
}
