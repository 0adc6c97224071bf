#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Chooses tokens from logits according to ``SamplingParameters``; owns the random state of one sequence.
public struct Sampler {
    /// The parameters this sampler applies.
    public let parameters: SamplingParameters
    private var random: SplitMix64

    /// A sampler whose random stream starts at `parameters.seed`.
    public init(_ parameters: SamplingParameters) {
        self.parameters = parameters
        random = SplitMix64(seed: parameters.seed)
    }

    /// The next token given the logits of the last position and the tokens so far (for the repetition penalty).
    public mutating func sample(_ logits: [Float], history: [Int]) -> Int {
        var logits = logits
        if parameters.repetitionPenalty != 1 {
            for token in Set(history) where token >= 0 && token < logits.count {
                let l = logits[token]
                logits[token] = l > 0 ? l / parameters.repetitionPenalty : l * parameters.repetitionPenalty
            }
        }
        if parameters.temperature == 0 { return Self.argmax(logits) }

        // Candidates sorted by logit, highest first; ties keep the lower id first so results are reproducible.
        var candidates = logits.indices.filter { logits[$0].isFinite }
        candidates.sort { logits[$0] > logits[$1] || (logits[$0] == logits[$1] && $0 < $1) }
        if candidates.isEmpty { return Self.argmax(logits) }
        if parameters.topK > 0, candidates.count > parameters.topK { candidates.removeSubrange(parameters.topK...) }

        let top = logits[candidates[0]]
        var probabilities = candidates.map { exp(Double((logits[$0] - top) / parameters.temperature)) }
        let total = probabilities.reduce(0, +)
        probabilities = probabilities.map { $0 / total }

        if parameters.minP > 0 {
            let floor = probabilities[0] * Double(parameters.minP)
            let keep = max(1, probabilities.firstIndex { $0 < floor } ?? probabilities.count)
            candidates.removeSubrange(keep...)
            probabilities.removeSubrange(keep...)
        }
        if parameters.topP < 1 {
            var cumulative = 0.0
            var keep = probabilities.count
            for (i, p) in probabilities.enumerated() {
                cumulative += p
                if cumulative >= Double(parameters.topP) {
                    keep = i + 1
                    break
                }
            }
            candidates.removeSubrange(keep...)
            probabilities.removeSubrange(keep...)
        }
        // The draw walks the kept tokens in id order, not probability order: two nearly equal logits that swap
        // places under rounding noise (another kernel, another thread count) then cannot change which token a
        // seed picks.
        let kept = zip(candidates, probabilities).sorted { $0.0 < $1.0 }
        let mass = probabilities.reduce(0, +)
        var threshold = random.nextUnitInterval() * mass
        for (token, p) in kept {
            threshold -= p
            if threshold < 0 { return token }
        }
        return kept[kept.count - 1].0
    }

    /// The index of the largest logit (the lowest such index on ties).
    public static func argmax(_ logits: [Float]) -> Int {
        var best = 0
        for i in logits.indices where logits[i] > logits[best] { best = i }
        return best
    }
}

/// SplitMix64: a small, fast generator with a fixed algorithm, so a seed reproduces the same stream on every
/// platform and release (the standard library's generator promises neither).
struct SplitMix64: RandomNumberGenerator {
    private var state: UInt64

    init(seed: UInt64) { state = seed }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// A uniform double in [0, 1) with 53 random bits.
    mutating func nextUnitInterval() -> Double { Double(next() >> 11) * 0x1.0p-53 }
}
