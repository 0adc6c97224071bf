import OnebitCUDA
import Testing

@testable import OnebitEngine

#if canImport(Glibc)
    import Glibc
#endif

/// Each sampling filter does what its name says, and a seed reproduces its stream.
@Suite struct SamplerTests {
    let logits: [Float] = [1.0, 3.0, 2.5, -1.0, 0.0, 2.9]

    func draws(_ parameters: SamplingParameters, count: Int = 400) -> [Int] {
        var sampler = Sampler(parameters)
        return (0..<count).map { _ in sampler.sample(logits, history: []) }
    }

    @Test func greedyPicksTheLargestLogit() {
        #expect(draws(.greedy, count: 5) == [1, 1, 1, 1, 1])
        #expect(Sampler.argmax([0, 2, 2, 1]) == 1)
    }

    @Test func sameSeedSameStream() {
        let parameters = SamplingParameters(temperature: 1, seed: 42)
        #expect(draws(parameters) == draws(parameters))
        #expect(draws(parameters) != draws(SamplingParameters(temperature: 1, seed: 43)))
    }

    @Test func topKKeepsOnlyTheBest() {
        let seen = Set(draws(SamplingParameters(temperature: 5, topK: 2, seed: 1)))
        #expect(seen == [1, 5])
    }

    @Test func topPKeepsTheSmallestNucleus() {
        // With temperature 1 the three best tokens hold about 90% of the mass.
        let seen = Set(draws(SamplingParameters(temperature: 1, topP: 0.6, seed: 2)))
        #expect(seen.isSubset(of: [1, 5, 2]) && seen.count >= 2)
    }

    @Test func minPDropsUnlikelyTokens() {
        let seen = Set(draws(SamplingParameters(temperature: 1, minP: 0.5, seed: 3)))
        #expect(seen.isSubset(of: [1, 5, 2]))
        #expect(!seen.contains(3) && !seen.contains(4) && !seen.contains(0))
    }

    @Test func rankingOrdersLogitsLikeAComparisonSort() {
        var random = SplitMix64(seed: 11)
        var logits = (0..<3000).map { _ in Float(Int(random.next() % 200)) / 8 - 12 }
        logits += [0, -0, .infinity * -1, 3, -0, .nan, 0]
        let finite = logits.indices.filter { logits[$0].isFinite }
        let expected = finite.sorted { logits[$0] > logits[$1] || (logits[$0] == logits[$1] && $0 < $1) }
        #expect(Sampler.ranked(logits) == expected)
    }

    /// The sampler as written first: every weight, the whole vocabulary ranked. The fast paths must give its tokens.
    static func plainSample(_ logits: [Float], _ parameters: SamplingParameters, _ random: inout SplitMix64) -> Int {
        let finite = logits.indices.filter { logits[$0].isFinite }
        let top = finite.map { logits[$0] }.max()!
        let ranked = Sampler.ranked(logits)
        var weights = [Double](repeating: 0, count: logits.count)
        let topK = parameters.topK > 0 && parameters.topK < finite.count
        let kept = topK ? Array(ranked.prefix(parameters.topK)) : finite
        for token in kept { weights[token] = exp(Double((logits[token] - top) / parameters.temperature)) }
        let total = weights.reduce(0, +)
        for token in weights.indices where weights[token] / total < 1 / total * Double(parameters.minP) {
            weights[token] = 0
        }
        var cumulative = 0.0
        for token in ranked where weights[token] > 0 {
            if cumulative >= Double(parameters.topP) { weights[token] = 0 }
            cumulative += weights[token] / total
        }
        var threshold = random.nextUnitInterval() * weights.reduce(0) { $0 + $1 / total }
        var last = 0
        for token in weights.indices where weights[token] > 0 {
            threshold -= weights[token] / total
            if threshold < 0 { return token }
            last = token
        }
        return last
    }

    @Test func theFastPathsDrawWhatTheWholeRankingDraws() {
        var random = SplitMix64(seed: 9)
        for (topK, topP, minP, temperature) in [
            (0, 1, 0, 1), (0, 0.9, 0, 0.8), (0, 0.999, 0, 1.5), (0, 1, 0.05, 1), (0, 0.7, 0.01, 0.6), (40, 1, 0, 1),
            (40, 0.9, 0.02, 0.8), (9000, 0.95, 0, 1), (1, 1, 0, 1),
        ] as [(Int, Float, Float, Float)] {
            for row in 0..<6 {
                // Peaked rows and flat ones, with ties and a few logits that are not finite.
                let spread = row % 2 == 0 ? 4 : 400
                var logits = (0..<8000).map { _ in Float(Int(random.next() % UInt64(spread * 16))) / 16 - 6 }
                logits[3 * row] = .nan
                logits[3 * row + 1] = -.infinity
                let parameters = SamplingParameters(
                    temperature: temperature, topK: topK, topP: topP, minP: minP, seed: UInt64(row))
                var fast = Sampler(parameters)
                var plain = SplitMix64(seed: UInt64(row))
                for _ in 0..<10 {
                    #expect(fast.sample(logits, history: []) == Self.plainSample(logits, parameters, &plain))
                }
            }
        }
    }

    @Test func drawsRunWhereTheLogitsAreForTheWholeRowAndForTopKAndTopPWithoutAPenalty() {
        func drawsThere(_ parameters: SamplingParameters) -> Bool { Sampler(parameters).drawsWhereTheLogitsAre }
        #expect(drawsThere(SamplingParameters(temperature: 0.8)))
        #expect(drawsThere(SamplingParameters(temperature: 0.8, minP: 0.05)))
        #expect(drawsThere(SamplingParameters(topK: 40, topP: 0.9)))
        #expect(drawsThere(SamplingParameters(topK: Sampler.largestCandidateSet)))
        #expect(!drawsThere(SamplingParameters(topK: Sampler.largestCandidateSet + 1)))
        #expect(drawsThere(SamplingParameters(topP: 0.9)))
        #expect(!drawsThere(SamplingParameters(topK: 40, repetitionPenalty: 1.1)))
        #expect(!drawsThere(SamplingParameters(temperature: 0, topK: 40)))
        // A draw carries its top-k and top-p.
        var topK = Sampler(SamplingParameters(topK: 40, topP: 0.9, minP: 0.05))
        let draw = topK.nextRowDraw()
        #expect(draw.topK == 40 && draw.topP == 0.9 && draw.minP == 0.05)
        var nucleus = Sampler(SamplingParameters(temperature: 1.2, topP: 0.8))
        let nucleusDraw = nucleus.nextRowDraw()
        #expect(nucleusDraw.topK == 0 && nucleusDraw.topP == 0.8)
        var whole = Sampler(SamplingParameters(temperature: 1.2))
        #expect(whole.nextRowDraw().topK == 0)
        // The GPU's top-k draw takes as many candidates as the sampler may ask it to.
        #expect(CUDABackend.candidateLimit >= Sampler.largestCandidateSet)
    }

    @Test func repetitionPenaltyDemotesSeenTokens() {
        var sampler = Sampler(SamplingParameters(temperature: 0, repetitionPenalty: 2))
        #expect(sampler.sample(logits, history: [1]) == 5)
        #expect(sampler.sample(logits, history: [1, 5]) == 2)
    }

    @Test func frequenciesFollowTheSoftmax() {
        let counts = draws(SamplingParameters(temperature: 1, seed: 7), count: 20000).reduce(into: [Int: Int]()) {
            $0[$1, default: 0] += 1
        }
        let total = logits.map { exp(Double($0)) }.reduce(0, +)
        for (token, logit) in logits.enumerated() {
            let expected = exp(Double(logit)) / total
            let observed = Double(counts[token, default: 0]) / 20000
            #expect(abs(observed - expected) < 0.015, "token \(token): \(observed) vs \(expected)")
        }
    }

    @Test func invalidParametersNameThemselves() {
        #expect(throws: SamplingError.outOfRange("top_p", "must be in (0, 1]")) {
            try SamplingParameters(topP: 0).validate()
        }
        #expect(throws: SamplingError.self) { try SamplingParameters(temperature: -1).validate() }
        #expect(throws: SamplingError.self) { try SamplingParameters(repetitionPenalty: 0).validate() }
    }
}
