import OnebitCPU
import OnebitModel

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// A loaded model bound to a backend: text generation, teacher-forced scoring and perplexity.
public final class LanguageModel {
    /// The model's files, tokenizer and template.
    public let model: LoadedModel
    let transformer: Transformer<CPUBackend>

    /// Prepares `model` for the CPU.
    public init(_ model: LoadedModel) {
        self.model = model
        transformer = Transformer(backend: CPUBackend(), config: model.config, weights: model.weights)
    }

    /// The model's context window.
    public var contextLength: Int { model.config.contextLength }

    /// A fresh sequence of up to `capacity` tokens (the context window when `nil`).
    public func makeSession(capacity: Int? = nil) -> any DecodingSession {
        transformer.makeSession(capacity: capacity ?? contextLength)
    }

    /// Generates after `prompt` until an end-of-sequence token, `maxTokens` tokens, a full context, or `onToken`
    /// returning `false`. End-of-sequence tokens are not part of the result.
    public func generate(
        prompt: [Int], maxTokens: Int, sampling: SamplingParameters,
        onToken: (Int) -> Bool = { _ in true }
    ) throws(SessionError) -> GenerationResult {
        guard !prompt.isEmpty else { throw .contextFull(capacity: contextLength, requested: 0) }
        let session = makeSession()
        var sampler = Sampler(sampling)
        var history = prompt
        var generated: [Int] = []
        var logits = try session.append(prompt) { $0 == prompt.count - 1 }[prompt.count - 1]!
        var reason = GenerationResult.StopReason.length
        var stopToken: Int?
        while generated.count < maxTokens {
            let token = sampler.sample(logits, history: history)
            if model.endOfSequenceTokenIDs.contains(token) {
                reason = .endOfSequence
                stopToken = token
                break
            }
            generated.append(token)
            history.append(token)
            if !onToken(token) {
                reason = .cancelled
                break
            }
            guard generated.count < maxTokens else { break }
            guard session.length < session.capacity else {
                reason = .contextFull
                break
            }
            logits = try session.append([token]) { _ in true }[0]!
        }
        return GenerationResult(
            promptTokenCount: prompt.count, tokens: generated, stopToken: stopToken, stopReason: reason)
    }

    /// Teacher-forced log-probabilities: entry `i` is `log p(tokens[i] | tokens[..<i])`, `nil` for the first.
    public func score(_ tokens: [Int]) throws(SessionError) -> [Double?] {
        guard !tokens.isEmpty else { return [] }
        let session = makeSession(capacity: max(tokens.count, 1))
        let logits = try session.append(tokens) { $0 < tokens.count - 1 }
        var result: [Double?] = [nil]
        for i in 1..<tokens.count {
            result.append(Self.logSoftmax(logits[i - 1]!, at: tokens[i]))
        }
        return result
    }

    /// Perplexity over `tokens` with windows of `context` tokens advanced by `stride`; each window scores only the
    /// tokens no earlier window scored, so every token is predicted once with up to `context - stride` tokens of
    /// history. `progress` receives the fraction done.
    public func perplexity(
        _ tokens: [Int], context: Int, stride: Int, progress: (Double) -> Void = { _ in }
    ) throws(SessionError) -> PerplexityResult {
        precondition(context > 1 && stride > 0 && stride <= context, "invalid window")
        var totalNLL = 0.0
        var count = 0
        var scoredUpTo = 0
        var begin = 0
        let session = makeSession(capacity: context)
        while scoredUpTo < tokens.count - 1 {
            let end = min(begin + context, tokens.count)
            let window = Array(tokens[begin..<end])
            let firstTarget = max(scoredUpTo + 1, begin + 1) - begin
            session.truncate(to: 0)
            let logits = try session.append(window) { $0 >= firstTarget - 1 && $0 < window.count - 1 }
            for target in firstTarget..<window.count {
                totalNLL -= Self.logSoftmax(logits[target - 1]!, at: window[target])
                count += 1
            }
            scoredUpTo = end - 1
            progress(Double(scoredUpTo) / Double(max(tokens.count - 1, 1)))
            if end == tokens.count { break }
            begin += stride
        }
        return PerplexityResult(tokenCount: count, meanNegativeLogLikelihood: count > 0 ? totalNLL / Double(count) : 0)
    }

    /// `log softmax(logits)[index]`, computed in double precision.
    public static func logSoftmax(_ logits: [Float], at index: Int) -> Double {
        let top = Double(logits.max() ?? 0)
        var sum = 0.0
        for l in logits { sum += exp(Double(l) - top) }
        return Double(logits[index]) - top - log(sum)
    }
}

/// What a generation produced.
public struct GenerationResult: Sendable, Equatable {
    /// Why generation ended.
    public enum StopReason: String, Sendable {
        /// An end-of-sequence token.
        case endOfSequence = "stop"
        /// The token limit.
        case length
        /// The context window is full.
        case contextFull = "context_full"
        /// The caller asked to stop.
        case cancelled
    }

    /// Tokens in the prompt.
    public var promptTokenCount: Int
    /// Generated tokens, end-of-sequence excluded.
    public var tokens: [Int]
    /// The end-of-sequence token that ended generation, if one did.
    public var stopToken: Int?
    /// Why it ended.
    public var stopReason: StopReason
}

/// The outcome of a perplexity run.
public struct PerplexityResult: Sendable, Equatable {
    /// Tokens predicted.
    public var tokenCount: Int
    /// Mean negative log-likelihood per predicted token, in nats.
    public var meanNegativeLogLikelihood: Double
    /// `exp(mean NLL)`.
    public var perplexity: Double { exp(meanNegativeLogLikelihood) }
}
