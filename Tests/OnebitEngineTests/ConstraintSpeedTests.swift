import OnebitModel
import Testing

@testable import OnebitEngine

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Prints what the allowed-token mask costs per generated token; speed is reported, never asserted, so a busy
/// machine cannot fail the suite. Numbers for BENCHMARKS.md come from `swift test -c release --filter
/// ConstraintSpeedTests`.
@Suite struct ConstraintSpeedTests {
    /// A schema whose values take many tokens: strings, numbers, arrays and an `anyOf`.
    static let schema = """
        {"type":"object","properties":{"title":{"type":"string","maxLength":200},
        "year":{"type":"integer"},"cast":{"type":"array","items":{"type":"object","properties":{
        "name":{"type":"string","maxLength":40},"lines":{"type":"number"},"role":{"enum":["lead","chorus",null]}}},
        "maxItems":20},"notes":{"anyOf":[{"type":"string","maxLength":300},{"type":"null"}]}}}
        """

    @Test func maskCostOnTheDemoVocabulary() throws {
        let tokenizer = try EmbeddedModel.load().tokenizer
        Self.report("onebit-demo", Self.timed { TokenVocabulary(tokenizer: tokenizer) })
    }

    /// A Llama-3 sized vocabulary: the 256 bytes, then 128,000 random words of 2 to 16 bytes, mostly letters with
    /// a leading space as BPE vocabularies are, some punctuation, digits and multi-byte characters.
    @Test func maskCostOnA128kVocabulary() {
        var random = SplitMix64(seed: 11)
        let alphabet = Array("etaoinshrdlucmfwypvbgkjqxz".utf8)
        let other = Array("0123456789.,:;!?'\"-()[]{}".utf8) + Array("éàüß—".utf8)
        var seen = Set<[UInt8]>()
        var tokens: [[UInt8]?] = (0..<256).map { [UInt8($0)] }
        while tokens.count < 128_256 {
            var word: [UInt8] = random.next() % 3 == 0 ? [] : [UInt8(ascii: " ")]
            let length = 2 + Int(random.next() % 8) + (random.next() % 4 == 0 ? Int(random.next() % 7) : 0)
            while word.count < length {
                let pick = Int(random.next() % 100)
                if pick < 85 {
                    word.append(alphabet[Int(random.next() % UInt64(min(alphabet.count, 8 + pick / 4)))])
                } else {
                    word.append(other[Int(random.next() % UInt64(other.count))])
                }
            }
            if seen.insert(word).inserted { tokens.append(word) }
        }
        Self.report("synthetic 128k", Self.timed { TokenVocabulary(tokenBytes: tokens) })
    }

    static func timed<T>(_ body: () -> T) -> (T, Duration) {
        let clock = ContinuousClock()
        var result: T?
        let duration = clock.measure { result = body() }
        return (result!, duration)
    }

    /// Generates 1,000 tokens by a random walk under ``schema`` (restarting when a value completes) and prints the
    /// mean mask time per token, the cost of a mask computed from scratch, the cache hit rate, and the time to
    /// apply a mask to a step's logits.
    static func report(_ name: String, _ built: (TokenVocabulary, Duration)) {
        let (vocabulary, buildTime) = built
        let grammar: JSONGrammar
        do {
            grammar = try JSONGrammar(schema: JSONValue(parsing: schema), strict: false)
        } catch {
            Issue.record("the benchmark schema must compile: \(error)")
            return
        }
        let constraint = TokenConstraint(grammar: grammar, vocabulary: vocabulary)
        var random = SplitMix64(seed: 3)
        var state = ConstraintState(constraint, endOfSequence: [])
        let clock = ContinuousClock()
        var total = Duration.zero
        var fresh: [Duration] = []
        for _ in 0..<1000 {
            if state.isComplete { state = ConstraintState(constraint, endOfSequence: []) }
            let misses = state.maskMisses
            var mask: [UInt64] = []
            let elapsed = clock.measure { mask = state.allowedTokens() }
            total += elapsed
            if state.maskMisses > misses { fresh.append(elapsed) }
            let allowed = (0..<vocabulary.size).filter { mask[$0 >> 6] & (1 << UInt64($0 & 63)) != 0 }
            state.accept(allowed[Int(random.next() % UInt64(allowed.count))])
        }
        var logits = [Float](repeating: 0, count: vocabulary.size)
        let mask = state.allowedTokens()
        let applying = clock.measure { ConstraintState.apply(mask, to: &logits) }
        let mean = total / 1000
        let freshMean = fresh.isEmpty ? .zero : fresh.reduce(.zero, +) / fresh.count
        print(
            "\(name): \(vocabulary.size) tokens, trie built in \(buildTime); mask per token \(mean) mean over 1000 "
                + "tokens, \(fresh.count) computed from scratch at \(freshMean) mean, the rest memoized; applying a "
                + "mask to the logits \(applying)")
    }
}
