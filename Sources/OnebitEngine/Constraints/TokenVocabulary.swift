import OnebitModel

/// The vocabulary as a trie of token bytes, so one walk with a ``JSONMatcher`` finds every token the grammar
/// allows: a prefix the matcher rejects cuts off every token below it at once.
public final class TokenVocabulary: Sendable {
    /// One more than the highest token id.
    public let size: Int
    /// The most bytes any token has; 0 when no token has fixed bytes (a tokenizer without decoder), and then no
    /// grammar can be enforced.
    public let longestToken: Int
    /// Per trie node, its edges `edges[edgeStart[n]..<edgeStart[n + 1]]` and the tokens spelled exactly by its
    /// path, `tokens[tokenStart[n]..<tokenStart[n + 1]]`. Node 0 is the root.
    private let edgeStart: [Int32]
    private let edgeBytes: [UInt8]
    private let edgeTargets: [Int32]
    private let tokenStart: [Int32]
    private let tokens: [Int32]
    private let spellings: [[UInt8]?]

    /// The vocabulary of `tokenizer`. Special tokens (BOS, EOS, chat markers) are left out: their text is markup,
    /// not output, so a grammar never allows them.
    public convenience init(tokenizer: Tokenizer) {
        self.init(
            tokenBytes: (0..<tokenizer.vocabularySize).map { id in
                tokenizer.isSpecialToken(id) ? nil : tokenizer.tokenBytes(id)
            })
    }

    /// A vocabulary where token `i` spells `tokenBytes[i]`; `nil` and empty entries are never allowed.
    public init(tokenBytes: [[UInt8]?]) {
        size = tokenBytes.count
        spellings = tokenBytes
        let ids = tokenBytes.indices.filter { !(tokenBytes[$0]?.isEmpty ?? true) }.sorted {
            tokenBytes[$0]!.lexicographicallyPrecedes(tokenBytes[$1]!)
        }
        longestToken = ids.map { tokenBytes[$0]!.count }.max() ?? 0
        var nodes: [(edges: [(UInt8, Int32)], tokens: [Int32])] = []
        /// Builds the node for the ids in `range`, which share their first `depth` bytes, and returns its index.
        func build(_ range: Range<Int>, depth: Int) -> Int32 {
            let node = nodes.count
            nodes.append(([], []))
            var index = range.lowerBound
            // Sorted order puts the tokens that end here first.
            while index < range.upperBound, tokenBytes[ids[index]]!.count == depth {
                nodes[node].tokens.append(Int32(ids[index]))
                index += 1
            }
            while index < range.upperBound {
                let byte = tokenBytes[ids[index]]![depth]
                var end = index + 1
                while end < range.upperBound, tokenBytes[ids[end]]![depth] == byte { end += 1 }
                let child = build(index..<end, depth: depth + 1)
                nodes[node].edges.append((byte, child))
                index = end
            }
            return Int32(node)
        }
        _ = build(0..<ids.count, depth: 0)
        var edgeStart: [Int32] = [0]
        var tokenStart: [Int32] = [0]
        var edgeBytes: [UInt8] = []
        var edgeTargets: [Int32] = []
        var tokens: [Int32] = []
        for node in nodes {
            edgeBytes += node.edges.map(\.0)
            edgeTargets += node.edges.map(\.1)
            tokens += node.tokens
            edgeStart.append(Int32(edgeBytes.count))
            tokenStart.append(Int32(tokens.count))
        }
        (self.edgeStart, self.edgeBytes, self.edgeTargets) = (edgeStart, edgeBytes, edgeTargets)
        (self.tokenStart, self.tokens) = (tokenStart, tokens)
    }

    /// The tokens `matcher` accepts whole, as a bit set of ``size`` bits (bit `i % 64` of word `i / 64`).
    func allowedTokens(after matcher: JSONMatcher, in grammar: JSONGrammar) -> [UInt64] {
        var mask = [UInt64](repeating: 0, count: (size + 63) / 64)
        walk(0, matcher, grammar, &mask)
        return mask
    }

    private func walk(_ node: Int, _ matcher: JSONMatcher, _ grammar: JSONGrammar, _ mask: inout [UInt64]) {
        if let frame = matcher.stringTop {
            walkString(node, matcher, frame, grammar, &mask)
            return
        }
        for edge in Int(edgeStart[node])..<Int(edgeStart[node + 1]) {
            var next = matcher
            guard next.advance(edgeBytes[edge], in: grammar) else { continue }
            let child = Int(edgeTargets[edge])
            allow(child, &mask)
            walk(child, next, grammar, &mask)
        }
    }

    /// The walk below `node` while the bytes stay inside a string: only the string's frame changes, so it is
    /// carried alone and the whole matcher is rebuilt only where a byte leaves the string.
    private func walkString(
        _ node: Int, _ matcher: JSONMatcher, _ frame: JSONMatcher.Frame, _ grammar: JSONGrammar,
        _ mask: inout [UInt64]
    ) {
        for edge in Int(edgeStart[node])..<Int(edgeStart[node + 1]) {
            let byte = edgeBytes[edge]
            let child = Int(edgeTargets[edge])
            if let next = JSONMatcher.continueString(frame, byte, in: grammar) {
                allow(child, &mask)
                walkString(child, matcher, next, grammar, &mask)
                continue
            }
            var next = matcher.replacingStringTop(with: frame)
            guard next.advance(byte, in: grammar) else { continue }
            allow(child, &mask)
            walk(child, next, grammar, &mask)
        }
    }

    /// Sets the bits of the tokens spelled exactly by the path to `node`.
    private func allow(_ node: Int, _ mask: inout [UInt64]) {
        for token in tokens[Int(tokenStart[node])..<Int(tokenStart[node + 1])] {
            mask[Int(token) >> 6] |= 1 << UInt64(token & 63)
        }
    }

    /// The bytes of token `id`, or `nil` for a token the trie leaves out.
    func bytes(of id: Int) -> [UInt8]? {
        guard id >= 0, id < size, let bytes = spellings[id], !bytes.isEmpty else { return nil }
        return bytes
    }
}
