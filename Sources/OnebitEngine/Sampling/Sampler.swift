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

    /// The most candidates a draw takes where the logits are: `top_k` up to this many can be sampled from the largest
    /// logits alone, found where the backend runs.
    public static let largestCandidateSet = 256

    /// The next token given the logits of the last position and the tokens so far (for the repetition penalty).
    public mutating func sample(_ logits: [Float], history: [Int]) -> Int {
        sample(logits, history: history, unit: nil)
    }

    /// ``sample(_:history:)`` with `unit` as its random number where not nil.
    private mutating func sample(_ logits: [Float], history: [Int], unit: Double?) -> Int {
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
        if parameters.topK > 0 && parameters.topK < finite {
            let ranked = Self.largest(logits, count: parameters.topK)
            return choose(
                ranked, weights: ranked.map { weight(logits[$0], top: top) }, total: nil, ranked: true, unit: unit)!
        }
        // Every finite token's weight, and their total in token order as the draw sums it.
        var weights = [Double](repeating: 0, count: logits.count)
        var total = 0.0
        for token in logits.indices where logits[token].isFinite {
            weights[token] = weight(logits[token], top: top)
            total += weights[token]
        }
        if parameters.topP < 1 {
            // The nucleus is found among the most likely tokens alone, sorted; the whole vocabulary only where it
            // reaches past them.
            let likeliest = Self.likeliest(logits, weights: weights, mass: Double(parameters.topP) * total)
            if let token = choose(
                likeliest, weights: likeliest.map { weights[$0] }, total: total, ranked: true, complete: false,
                unit: unit)
            {
                return token
            }
            let ranked = Self.ranked(logits)
            return choose(ranked, weights: ranked.map { weights[$0] }, total: total, ranked: true, unit: unit)!
        }
        return choose(nil, weights: weights, total: total, ranked: false, unit: unit)!
    }

    /// Whether the draw can run where the logits are: temperature over the whole row or among the top-k (at most
    /// ``largestCandidateSet``), with top-p and min-p, and no penalty. ``nextRowDraw()`` then gives what it needs, and
    /// ``token(drawing:from:)`` what it must find.
    public var drawsWhereTheLogitsAre: Bool {
        parameters.temperature > 0 && parameters.repetitionPenalty == 1
            && (parameters.topK == 0 || samplesFromCandidates)
    }

    /// The parameters and the random number of the next draw, for a backend that draws where the logits are; the
    /// sampler's random stream moves on as ``sample(_:history:)`` moves it.
    public mutating func nextRowDraw() -> RowDraw {
        precondition(drawsWhereTheLogitsAre, "only these draws run where the logits are")
        return RowDraw(
            temperature: parameters.temperature, minP: parameters.minP, topK: parameters.topK, topP: parameters.topP,
            unit: random.nextUnitInterval())
    }

    /// The token `draw` picks from `logits`: what ``sample(_:history:)`` gives for its parameters and random number.
    public static func token(drawing draw: RowDraw, from logits: [Float]) -> Int {
        var sampler = Sampler(
            SamplingParameters(temperature: draw.temperature, topK: draw.topK, topP: draw.topP, minP: draw.minP))
        return sampler.sample(logits, history: [], unit: draw.unit)
    }

    /// Whether the draw is top-k sampling among at most ``largestCandidateSet`` tokens without a repetition penalty,
    /// which needs only the row's `parameters.topK` largest logits.
    public var samplesFromCandidates: Bool {
        parameters.temperature > 0 && parameters.repetitionPenalty == 1
            && (1...Self.largestCandidateSet).contains(parameters.topK)
    }

    /// Draws from `kept`, the tokens top-k left (most likely first where `ranked`, else in token order; nil for every
    /// token, the weight of one that is not finite 0), whose weights are `weights`: min-p and top-p drop more of
    /// them, then one random number picks among the rest. `total`
    /// is the weight of every finite token where `kept` does not hold them all (top-p without top-k); where `kept`
    /// holds only the most likely of them (not `complete`) and top-p reaches past its end, nil, and no random number
    /// is drawn. Sums run in token order, so they come out the same however `kept` was found.
    private mutating func choose(
        _ kept: [Int]?, weights: [Double], total: Double?, ranked: Bool, complete: Bool = true, unit: Double? = nil
    ) -> Int? {
        var weights = weights
        // Position n of the token order: `byToken[n]`, or n itself where `kept` is already in token order.
        let byToken = ranked ? Self.tokenOrder(kept ?? Array(weights.indices)) : nil
        func sum(_ term: (Double) -> Double) -> Double {
            var sum = 0.0
            for position in weights.indices { sum += term(weights[byToken?[position] ?? position]) }
            return sum
        }
        let total = total ?? sum { $0 }
        if parameters.minP > 0 {
            // The most likely token has weight 1: probability 1 / total.
            let floor = 1 / total * Double(parameters.minP)
            for index in weights.indices where weights[index] / total < floor { weights[index] = 0 }
        }
        if parameters.topP < 1 {
            var cumulative = 0.0
            var reached = false
            for index in weights.indices where weights[index] > 0 {
                if reached {
                    weights[index] = 0
                    continue
                }
                cumulative += weights[index] / total
                reached = cumulative >= Double(parameters.topP)
            }
            if !reached && !complete { return nil }
        }
        let mass = sum { $0 / total }
        // The draw walks the kept tokens in id order, not probability order: two nearly equal logits that swap
        // places under rounding noise (another kernel, another thread count) then cannot change which token a
        // seed picks.
        var threshold = (unit ?? random.nextUnitInterval()) * mass
        var last = 0
        for position in weights.indices {
            let index = byToken?[position] ?? position
            guard weights[index] > 0 else { continue }
            threshold -= weights[index] / total
            if threshold < 0 { return kept?[index] ?? index }
            last = kept?[index] ?? index
        }
        return last
    }

    /// The indices of `kept` in token order: a sort for a few tokens, one pass over the token range for a whole
    /// vocabulary (a comparison sort of 128,256 tokens per row per step cost more than the step).
    private static func tokenOrder(_ kept: [Int]) -> [Int] {
        if kept.count <= 1024 { return kept.indices.sorted { kept[$0] < kept[$1] } }
        var slots = [Int](repeating: -1, count: (kept.max() ?? 0) + 1)
        for (index, token) in kept.enumerated() { slots[token] = index }
        return slots.filter { $0 >= 0 }
    }

    /// The high 32 bits of ``ranked(_:)``'s key of a finite logit: smaller for a more likely one.
    private static func rankingKey(_ logit: Float) -> UInt32 {
        // -0 and 0 are equal logits: one bit pattern for both keeps the lower id first.
        let bits = (logit == 0 ? 0 : logit).bitPattern
        // Flipping the sign bit of a positive float, or every bit of a negative one, orders the bits like the
        // values; inverting that puts the largest first.
        return ~(bits & 0x8000_0000 != 0 ? ~bits : bits | 0x8000_0000)
    }

    /// Buckets of the coarse ranking (the top 12 bits of ``rankingKey(_:)``: sign, exponent and 3 bits of the
    /// mantissa), so that only the buckets that hold the most likely tokens are sorted.
    private static let bucketShift = 20

    /// The `count` most likely of the finite `logits`, in ``ranked(_:)``'s order: only the tokens of the coarse
    /// buckets that hold them are sorted.
    static func largest(_ logits: [Float], count: Int) -> [Int] {
        var counts = [Int](repeating: 0, count: 1 << (32 - bucketShift))
        for logit in logits where logit.isFinite { counts[Int(rankingKey(logit) >> bucketShift)] += 1 }
        return ranked(logits, throughBucket: bucket(reaching: count, in: counts)).prefix(count).map { $0 }
    }

    /// The most likely of the finite `logits`, in ``ranked(_:)``'s order, whose `weights` add up to at least `mass`
    /// (and a bucket more, so that a sum in another order cannot fall short of it): the tokens top-p keeps are among
    /// them, and only they are sorted.
    static func likeliest(_ logits: [Float], weights: [Double], mass: Double) -> [Int] {
        var masses = [Double](repeating: 0, count: 1 << (32 - bucketShift))
        for (token, logit) in logits.enumerated() where logit.isFinite {
            masses[Int(rankingKey(logit) >> bucketShift)] += weights[token]
        }
        var last = bucket(reaching: mass, in: masses)
        if let next = masses[(last + 1)...].firstIndex(where: { $0 > 0 }) { last = next }
        return ranked(logits, throughBucket: last)
    }

    /// The first bucket, most likely first, at which the `amounts` of the buckets up to it add up to `target` (the
    /// last bucket where they never do).
    private static func bucket<Amount: AdditiveArithmetic & Comparable>(reaching target: Amount, in amounts: [Amount])
        -> Int
    {
        var last = 0
        var seen = amounts[0]
        while seen < target && last + 1 < amounts.count {
            last += 1
            seen += amounts[last]
        }
        return last
    }

    /// The finite logits whose coarse bucket is `last` or a more likely one, in ``ranked(_:)``'s order.
    private static func ranked(_ logits: [Float], throughBucket last: Int) -> [Int] {
        var keys: [UInt64] = []
        for (token, logit) in logits.enumerated() where logit.isFinite {
            let key = rankingKey(logit)
            if Int(key >> bucketShift) <= last { keys.append(UInt64(key) << 32 | UInt64(token)) }
        }
        keys.sort()
        return keys.map { Int($0 & 0xFFFF_FFFF) }
    }

    /// `exp((logit - top) / T)`, the unnormalised probability of a token.
    private func weight(_ logit: Float, top: Float) -> Double {
        exp(Double((logit - top) / parameters.temperature))
    }

    /// The finite logits' token ids, most likely first, the lower id first on ties. Sorts one integer key per
    /// token (the logit's order-preserving bits, then the id), not a comparison closure.
    static func ranked(_ logits: [Float]) -> [Int] {
        ranked(logits, throughBucket: Int.max)
    }

    /// The index of the largest logit (the lowest such index on ties).
    public static func argmax(_ logits: [Float]) -> Int {
        var best = 0
        for i in logits.indices where logits[i] > logits[best] { best = i }
        return best
    }
}

/// One draw of temperature sampling over a whole row or among its top-k (with top-p and min-p), made where the logits
/// are: the parameters and the random number the sampler chose for it.
public struct RowDraw: Equatable, Sendable {
    /// Softmax temperature; 0 takes the argmax (the lowest token on ties), so that greedy rows can join a step of
    /// draws.
    public var temperature: Float
    /// Drop tokens less likely than `minP` times the most likely one (0 keeps all).
    public var minP: Float
    /// Draw among the `topK` most likely tokens (0: the whole row), at most ``Sampler/largestCandidateSet``.
    public var topK: Int
    /// The most likely tokens (among the top-k, where there is one) whose probabilities add up to `topP` (1 keeps
    /// all).
    public var topP: Float
    /// The uniform random number in [0, 1) that picks the token.
    public var unit: Double

    /// A draw.
    public init(temperature: Float, minP: Float, topK: Int = 0, topP: Float = 1, unit: Double) {
        self.temperature = temperature
        self.minP = minP
        self.topK = topK
        self.topP = topP
        self.unit = unit
    }

    /// The draw that takes the argmax.
    public static let argmax = RowDraw(temperature: 0, minP: 0, unit: 0)
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
