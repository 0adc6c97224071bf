/// One generation the ``Scheduler`` runs: a prompt and how to continue it.
public struct GenerationRequest: Sendable {
    /// Prompt token ids; at least one, and fewer than the scheduler's context.
    public var prompt: [Int]
    /// Most tokens to generate.
    public var maxTokens: Int
    /// Temperature, top-k/p, min-p, repetition penalty and seed.
    public var sampling: SamplingParameters
    /// Subtracted once from the logit of every token already generated (OpenAI `presence_penalty`).
    public var presencePenalty: Float
    /// Subtracted from a token's logit once per time it was generated (OpenAI `frequency_penalty`).
    public var frequencyPenalty: Float
    /// Added to the logits of these token ids before sampling.
    public var logitBias: [Int: Float]
    /// `nil`: no log-probabilities; otherwise each token carries its own and this many most likely alternatives.
    public var topLogprobs: Int?
    /// A grammar the output must follow (structured output); `nil` leaves it free.
    public var constraint: TokenConstraint?

    /// Describes a request; the defaults add no penalty, bias, log-probabilities or constraint.
    public init(
        prompt: [Int], maxTokens: Int, sampling: SamplingParameters, presencePenalty: Float = 0,
        frequencyPenalty: Float = 0, logitBias: [Int: Float] = [:], topLogprobs: Int? = nil,
        constraint: TokenConstraint? = nil
    ) {
        self.prompt = prompt
        self.maxTokens = maxTokens
        self.sampling = sampling
        self.presencePenalty = presencePenalty
        self.frequencyPenalty = frequencyPenalty
        self.logitBias = logitBias
        self.topLogprobs = topLogprobs
        self.constraint = constraint
    }
}

/// What the scheduler reports for a request, in order: tokens, then one `finished` (or `failed`).
public enum GenerationEvent: Sendable, Equatable {
    /// A generated token (never an end-of-sequence token).
    case token(GeneratedToken)
    /// Generation ended; no event follows.
    case finished(FinishReason, GenerationUsage)
    /// The engine could not go on; no event follows.
    case failed(String)
}

/// A generated token with its log-probability when asked for.
public struct GeneratedToken: Sendable, Equatable {
    /// The token id.
    public var id: Int
    /// `log p(id)` under the processed logits, when log-probabilities were asked for.
    public var logprob: Float?
    /// The most likely tokens and their log-probabilities, most likely first.
    public var topLogprobs: [TokenLogprob]

    /// Wraps a token.
    public init(id: Int, logprob: Float? = nil, topLogprobs: [TokenLogprob] = []) {
        self.id = id
        self.logprob = logprob
        self.topLogprobs = topLogprobs
    }
}

/// A token id with its log-probability.
public struct TokenLogprob: Sendable, Equatable {
    /// The token id.
    public var id: Int
    /// Its natural-log probability.
    public var logprob: Float

    /// Pairs an id with its log-probability.
    public init(id: Int, logprob: Float) {
        self.id = id
        self.logprob = logprob
    }
}

/// Why a generation ended.
public enum FinishReason: String, Sendable, Equatable {
    /// The model produced an end-of-sequence token, or the constrained value is complete.
    case stop
    /// `maxTokens` were generated, or the context window is full.
    case length
    /// The caller cancelled it (a disconnect or a matched stop string).
    case cancelled
}

/// Token counts of a finished generation.
public struct GenerationUsage: Sendable, Equatable {
    /// Prompt tokens.
    public var promptTokens: Int
    /// Generated tokens (an end-of-sequence token is not counted).
    public var completionTokens: Int

    /// Both counts.
    public init(promptTokens: Int, completionTokens: Int) {
        self.promptTokens = promptTokens
        self.completionTokens = completionTokens
    }
}

/// Why the scheduler refused a request.
public enum SchedulerError: Error, Equatable, CustomStringConvertible {
    /// The wait queue is full; retry later.
    case overloaded(queued: Int)
    /// The prompt leaves no room to generate in the context window.
    case promptTooLong(promptTokens: Int, contextLength: Int)
    /// The prompt is empty.
    case emptyPrompt
    /// A prompt token id is outside the vocabulary.
    case invalidToken(id: Int, vocabularySize: Int)
    /// The scheduler has shut down.
    case shutDown

    /// A message that names the problem and the fix.
    public var description: String {
        switch self {
        case .overloaded(let queued):
            "the server is busy (\(queued) requests waiting); retry later"
        case .promptTooLong(let promptTokens, let contextLength):
            "the prompt has \(promptTokens) tokens but the context holds \(contextLength); shorten the prompt or "
                + "start the server with a larger --ctx"
        case .emptyPrompt:
            "the prompt is empty; send at least one token"
        case .invalidToken(let id, let vocabularySize):
            "token id \(id) is outside the vocabulary (0..<\(vocabularySize))"
        case .shutDown:
            "the server is shutting down"
        }
    }
}
