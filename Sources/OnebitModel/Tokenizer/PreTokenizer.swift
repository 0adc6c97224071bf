/// A piece of the text on its way to the model: either already a token (an added token matched in the text) or
/// text still to be split and tokenized.
enum Segment {
    case token(Int)
    case text([Unicode.Scalar])
}

/// What a `Split` pre-tokenizer does with the matches of its pattern, as `tokenizers` names it.
enum SplitBehavior: String, Sendable {
    case removed = "Removed"
    case isolated = "Isolated"
    case mergedWithPrevious = "MergedWithPrevious"
    case mergedWithNext = "MergedWithNext"
    case contiguous = "Contiguous"

    /// Turns the alternating matched and unmatched ranges that cover a text into the ranges of its pieces.
    func pieces(of parts: [(range: Range<Int>, isMatch: Bool)]) -> [Range<Int>] {
        switch self {
        case .isolated:
            return parts.map(\.range)
        case .removed:
            return parts.filter { !$0.isMatch }.map(\.range)
        case .mergedWithPrevious:
            var result: [Range<Int>] = []
            var previousWasMatch = false
            for part in parts {
                if part.isMatch && !previousWasMatch, let last = result.last {
                    result[result.count - 1] = last.lowerBound..<part.range.upperBound
                } else {
                    result.append(part.range)
                }
                previousWasMatch = part.isMatch
            }
            return result
        case .mergedWithNext:
            var result: [Range<Int>] = []
            var previousWasMatch = false
            for part in parts.reversed() {
                if part.isMatch && !previousWasMatch, let last = result.last {
                    result[result.count - 1] = part.range.lowerBound..<last.upperBound
                } else {
                    result.append(part.range)
                }
                previousWasMatch = part.isMatch
            }
            return result.reversed()
        case .contiguous:
            var result: [Range<Int>] = []
            var previousWasMatch = false
            for part in parts {
                if part.isMatch == previousWasMatch, let last = result.last {
                    result[result.count - 1] = last.lowerBound..<part.range.upperBound
                } else {
                    result.append(part.range)
                }
                previousWasMatch = part.isMatch
            }
            return result
        }
    }
}

/// What a `Split` pre-tokenizer looks for.
enum SplitPattern: Sendable {
    case known(PreTokenizerPattern)
    case literal([Unicode.Scalar])

    func matches(in scalars: [Unicode.Scalar]) -> [Range<Int>] {
        switch self {
        case .known(let pattern):
            return pattern.matches(in: scalars)
        case .literal(let literal):
            guard !literal.isEmpty else { return [] }
            var result: [Range<Int>] = []
            var i = 0
            while i + literal.count <= scalars.count {
                if scalars[i...].starts(with: literal) {
                    result.append(i..<(i + literal.count))
                    i += literal.count
                } else {
                    i += 1
                }
            }
            return result
        }
    }
}

/// One step of the `pre_tokenizer` of `tokenizer.json` (sequences are flattened into their steps).
enum PreTokenizerStep: Sendable {
    case split(SplitPattern, SplitBehavior, invert: Bool)
    /// Optionally prepends a space, optionally cuts with the GPT-2 pattern, then maps bytes to the byte-level
    /// alphabet.
    case byteLevel(addPrefixSpace: Bool, useRegex: Bool)

    /// Splits one piece of text into the next pieces; empty pieces are dropped, as `tokenizers` does.
    func apply(_ scalars: [Unicode.Scalar], into output: inout [[Unicode.Scalar]]) {
        switch self {
        case .split(let pattern, let behavior, let invert):
            var parts: [(range: Range<Int>, isMatch: Bool)] = []
            var position = 0
            for match in pattern.matches(in: scalars) {
                if position < match.lowerBound { parts.append((position..<match.lowerBound, invert)) }
                parts.append((match, !invert))
                position = match.upperBound
            }
            if position < scalars.count { parts.append((position..<scalars.count, invert)) }
            for range in behavior.pieces(of: parts) where !range.isEmpty {
                output.append(Array(scalars[range]))
            }
        case .byteLevel(let addPrefixSpace, let useRegex):
            var text = scalars
            if addPrefixSpace && text.first != " " { text.insert(" ", at: 0) }
            if useRegex {
                for range in PreTokenizerPattern.gpt2.matches(in: text) {
                    output.append(ByteLevelAlphabet.encode(Array(text[range])))
                }
            } else {
                output.append(ByteLevelAlphabet.encode(text))
            }
        }
    }
}

extension [PreTokenizerStep] {
    /// The words the model tokenizes, in order.
    func apply(_ scalars: [Unicode.Scalar]) -> [[Unicode.Scalar]] {
        guard !scalars.isEmpty else { return [] }
        var pieces = [scalars]
        for step in self {
            var next: [[Unicode.Scalar]] = []
            next.reserveCapacity(pieces.count)
            for piece in pieces { step.apply(piece, into: &next) }
            pieces = next
        }
        return pieces.filter { !$0.isEmpty }
    }
}
