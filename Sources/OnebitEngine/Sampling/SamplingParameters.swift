/// How the next token is chosen from the logits.
public struct SamplingParameters: Sendable, Equatable {
    /// Softmax temperature; 0 picks the most likely token (greedy).
    public var temperature: Float
    /// Keep only the `topK` most likely tokens (0 keeps all).
    public var topK: Int
    /// Keep the smallest set of most likely tokens whose probability reaches `topP` (1 keeps all).
    public var topP: Float
    /// Drop tokens less likely than `minP` times the most likely one (0 keeps all).
    public var minP: Float
    /// Divide positive (multiply negative) logits of tokens already in the sequence by this (1 disables).
    public var repetitionPenalty: Float
    /// Seed of the random choice; the same seed gives the same output.
    public var seed: UInt64

    /// Greedy decoding.
    public static let greedy = SamplingParameters(temperature: 0)

    /// Creates parameters; the defaults disable every filter.
    public init(
        temperature: Float = 0.8, topK: Int = 0, topP: Float = 1, minP: Float = 0, repetitionPenalty: Float = 1,
        seed: UInt64 = 0
    ) {
        self.temperature = temperature
        self.topK = topK
        self.topP = topP
        self.minP = minP
        self.repetitionPenalty = repetitionPenalty
        self.seed = seed
    }

    /// Throws when a value is outside its meaningful range, naming the parameter.
    public func validate() throws(SamplingError) {
        guard temperature.isFinite, temperature >= 0 else { throw .outOfRange("temperature", "must be >= 0") }
        guard topK >= 0 else { throw .outOfRange("top_k", "must be >= 0") }
        guard topP > 0, topP <= 1 else { throw .outOfRange("top_p", "must be in (0, 1]") }
        guard minP >= 0, minP <= 1 else { throw .outOfRange("min_p", "must be in [0, 1]") }
        guard repetitionPenalty.isFinite, repetitionPenalty > 0 else {
            throw .outOfRange("repetition_penalty", "must be > 0")
        }
    }
}

/// A sampling parameter outside its range.
public enum SamplingError: Error, CustomStringConvertible, Equatable {
    /// `parameter` violates `rule`.
    case outOfRange(String, String)

    /// A message that names the problem and, where there is one, the fix.
    public var description: String {
        switch self {
        case .outOfRange(let parameter, let rule): "\(parameter) \(rule)"
        }
    }
}
