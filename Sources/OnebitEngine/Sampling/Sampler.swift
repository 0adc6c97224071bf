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
        var top = -Float.infinity
        var finite = 0
        for l in logits where l.isFinite {
            top = max(top, l)
            finite += 1
        }
        if finite == 0 { return Self.argmax(logits) }

        // Weights exp((l - top) / T) by token id; 0 marks a token that is out. The whole vocabulary is sorted only
        // when top-k or top-p need the most likely tokens in order: a sort per token per step cost more than the
        // forward pass of a batch of small-model sequences.
        var weights = [Double](repeating: 0, count: logits.count)
        let ranked = parameters.topK > 0 && parameters.topK < finite || parameters.topP < 1 ? Self.ranked(logits) : []
        if parameters.topK > 0, parameters.topK < finite {
            for token in ranked.prefix(parameters.topK) { weights[token] = weight(logits[token], top: top) }
        } else {
            for token in logits.indices where logits[token].isFinite {
                weights[token] = weight(logits[token], top: top)
            }
        }
        let total = weights.reduce(0, +)
        if parameters.minP > 0 {
            // The most likely token has weight 1: probability 1 / total.
            let floor = 1 / total * Double(parameters.minP)
            for token in weights.indices where weights[token] / total < floor { weights[token] = 0 }
        }
        if parameters.topP < 1 {
            var cumulative = 0.0
            var reached = false
            for token in ranked where weights[token] > 0 {
                if reached {
                    weights[token] = 0
                    continue
                }
                cumulative += weights[token] / total
                reached = cumulative >= Double(parameters.topP)
            }
        }
        let mass = weights.reduce(0) { $0 + $1 / total }
        // The draw walks the kept tokens in id order, not probability order: two nearly equal logits that swap
        // places under rounding noise (another kernel, another thread count) then cannot change which token a
        // seed picks.
        var threshold = random.nextUnitInterval() * mass
        var last = 0
        for token in weights.indices where weights[token] > 0 {
            threshold -= weights[token] / total
            if threshold < 0 { return token }
            last = token
        }
        return last
    }

    /// `exp((logit - top) / T)`, the unnormalised probability of a token.
    private func weight(_ logit: Float, top: Float) -> Double {
        exp(Double((logit - top) / parameters.temperature))
    }

    /// The finite logits' token ids, most likely first, the lower id first on ties. Sorts one integer key per
    /// token (the logit's order-preserving bits, then the id), not a comparison closure.
    static func ranked(_ logits: [Float]) -> [Int] {
        var keys: [UInt64] = []
        keys.reserveCapacity(logits.count)
        for (token, logit) in logits.enumerated() where logit.isFinite {
            // -0 and 0 are equal logits: one bit pattern for both keeps the lower id first.
            let logit = logit == 0 ? 0 : logit
            // Flipping the sign bit of a positive float, or every bit of a negative one, orders the bits like the
            // values; inverting that puts the largest first.
            let bits = logit.bitPattern
            let ordered = bits & 0x8000_0000 != 0 ? ~bits : bits | 0x8000_0000
            keys.append(UInt64(~ordered) << 32 | UInt64(token))
        }
        keys.sort()
        return keys.map { Int($0 & 0xFFFF_FFFF) }
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
public struct SplitMix64: RandomNumberGenerator {
    private var state: UInt64

    /// The stream of `seed`.
    public init(seed: UInt64) { state = seed }

    /// The next 64 random bits.
    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// A uniform double in [0, 1) with 53 random bits.
    mutating func nextUnitInterval() -> Double { Double(next() >> 11) * 0x1.0p-53 }
}
