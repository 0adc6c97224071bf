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

    /// The most candidates ``sample(candidates:)`` takes: `top_k` up to this many can be sampled from the largest
    /// logits alone, found where the backend runs.
    public static let largestCandidateSet = 256

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
        // The whole vocabulary is sorted only when top-k or top-p need the most likely tokens in order: a sort per
        // token per step cost more than the forward pass of a batch of small-model sequences.
        if parameters.topK > 0 && parameters.topK < finite || parameters.topP < 1 {
            var ranked = Self.ranked(logits)
            if parameters.topK > 0 && parameters.topK < finite { ranked.removeLast(ranked.count - parameters.topK) }
            return choose(ranked.map { LogitCandidate(token: $0, logit: logits[$0]) }, top: top, ranked: true)
        }
        let kept = logits.indices.compactMap {
            logits[$0].isFinite ? LogitCandidate(token: $0, logit: logits[$0]) : nil
        }
        return choose(kept, top: top, ranked: false)
    }

    /// Whether ``sample(candidates:)`` gives what ``sample(_:history:)`` would for these parameters: top-k sampling
    /// with at most ``largestCandidateSet`` tokens and no repetition penalty.
    public var samplesFromCandidates: Bool {
        parameters.temperature > 0 && parameters.repetitionPenalty == 1
            && (1...Self.largestCandidateSet).contains(parameters.topK)
    }

    /// The next token given only the `parameters.topK` largest logits of the last position, most likely first and
    /// the lower token first on ties (as ``ranked(_:)`` orders them): the same token, drawn with the same random
    /// numbers, as ``sample(_:history:)`` gives with the whole row where ``samplesFromCandidates``. A row with no finite
    /// logit gives token 0, as the argmax does of a row of NaN or -infinity.
    public mutating func sample(candidates: [LogitCandidate]) -> Int {
        precondition(samplesFromCandidates, "candidates serve top-k sampling without a repetition penalty")
        let kept = Array(candidates.prefix(parameters.topK).filter(\.logit.isFinite))
        guard let top = kept.first?.logit else { return 0 }
        return choose(kept, top: top, ranked: true)
    }

    /// Draws from `kept`, the tokens top-k left (most likely first where `ranked`, else in token order), whose largest
    /// logit is `top`: min-p and top-p drop more of them, then one random number picks among the rest. Sums run in
    /// token order, so they come out the same however `kept` was found.
    private mutating func choose(_ kept: [LogitCandidate], top: Float, ranked: Bool) -> Int {
        var weights = kept.map { weight($0.logit, top: top) }
        let byToken = ranked ? Self.tokenOrder(kept) : Array(kept.indices)
        let total = byToken.reduce(0) { $0 + weights[$1] }
        if parameters.minP > 0 {
            // The most likely token has weight 1: probability 1 / total.
            let floor = 1 / total * Double(parameters.minP)
            for index in weights.indices where weights[index] / total < floor { weights[index] = 0 }
        }
        if parameters.topP < 1 {
            var cumulative = 0.0
            var reached = false
            for index in kept.indices where weights[index] > 0 {
                if reached {
                    weights[index] = 0
                    continue
                }
                cumulative += weights[index] / total
                reached = cumulative >= Double(parameters.topP)
            }
        }
        let mass = byToken.reduce(0) { $0 + weights[$1] / total }
        // The draw walks the kept tokens in id order, not probability order: two nearly equal logits that swap
        // places under rounding noise (another kernel, another thread count) then cannot change which token a
        // seed picks.
        var threshold = random.nextUnitInterval() * mass
        var last = 0
        for index in byToken where weights[index] > 0 {
            threshold -= weights[index] / total
            if threshold < 0 { return kept[index].token }
            last = kept[index].token
        }
        return last
    }

    /// The indices of `kept` in token order: a sort for a few candidates, one pass over the token range for a whole
    /// vocabulary (a comparison sort of 128,256 tokens per row per step cost more than the step).
    private static func tokenOrder(_ kept: [LogitCandidate]) -> [Int] {
        if kept.count <= 1024 { return kept.indices.sorted { kept[$0].token < kept[$1].token } }
        var slots = [Int](repeating: -1, count: (kept.map(\.token).max() ?? 0) + 1)
        for (index, candidate) in kept.enumerated() { slots[candidate.token] = index }
        return slots.filter { $0 >= 0 }
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

    /// The `count` largest finite logits of `row`, in ``ranked(_:)``'s order.
    public static func candidates(_ row: [Float], count: Int) -> [LogitCandidate] {
        ranked(row).prefix(count).map { LogitCandidate(token: $0, logit: row[$0]) }
    }

    /// The index of the largest logit (the lowest such index on ties).
    public static func argmax(_ logits: [Float]) -> Int {
        var best = 0
        for i in logits.indices where logits[i] > logits[best] { best = i }
        return best
    }
}

/// A token and its logit, one of the most likely of a row.
public struct LogitCandidate: Equatable, Sendable {
    /// The token id.
    public var token: Int
    /// Its logit.
    public var logit: Float

    /// A candidate.
    public init(token: Int, logit: Float) {
        self.token = token
        self.logit = logit
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
