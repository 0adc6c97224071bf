import OnebitCPU
import OnebitCUDA
import OnebitModel

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// A loaded model bound to a backend: text generation, teacher-forced scoring and perplexity.
public final class LanguageModel {
    /// The model's configuration, tokenizer and template. Its `weights` are released: the backend holds them in
    /// its own layout, and the canonical copies would double the memory of a large model.
    public let model: LoadedModel
    /// Where the model runs, in words (`CPU`, or the GPU's name).
    public let deviceDescription: String
    private let forward: Forward
    /// Most decoding steps run before their tokens come back, each step's tokens chosen and fed to the next where the
    /// model runs, greedy or drawn at a temperature over the whole row or among the top-k: by
    /// ``generate(prompt:maxTokens:sampling:onToken:)``, and by the scheduler unless its configuration says
    /// otherwise. 8 on the GPU, where that saves the wait between steps; 1 on the CPU, which has every token at once.
    /// Tokens then arrive in bursts of up to this many.
    public var stepsAhead: Int

    /// The transformer of the chosen backend.
    private enum Forward {
        case cpu(Transformer<CPUBackend>)
        case cuda(Transformer<CUDABackend>)
    }

    /// Prepares `model` for the CPU, on `threads` threads (default: the physical cores), with logits from an int8
    /// copy of the output head when `int8Head` is set.
    public convenience init(_ model: LoadedModel, threads: Int? = nil, int8Head: Bool = false) {
        self.init(model, backend: CPUBackend(threadCount: threads, int8Head: int8Head))
    }

    /// Prepares `model` for a configured CPU backend.
    convenience init(_ model: LoadedModel, backend: CPUBackend) {
        let transformer = Transformer(backend: backend, config: model.config, weights: model.weights)
        self.init(model, running: (.cpu(transformer), "CPU"))
    }

    /// Prepares `model` for `device` (the CPU options apply when it runs on the CPU). With `.auto` a missing GPU,
    /// driver or compiler is no error: the model runs on the CPU and `onFallback` receives the reason.
    public convenience init(
        _ model: LoadedModel, device: ComputeDevice, threads: Int? = nil, int8Head: Bool = false,
        onFallback: (String) -> Void
    ) throws(DeviceError) {
        guard device != .cpu else {
            self.init(model, threads: threads, int8Head: int8Head)
            return
        }
        do throws(CUDAError) {
            let backend = try CUDABackend(int8Head: int8Head)
            try backend.validate(model.config, weights: model.weights)
            let transformer = Transformer(
                backend: backend, config: model.config, weights: model.weights, chunkSize: CUDABackend.chunkSize)
            self.init(model, running: (.cuda(transformer), backend.deviceDescription))
        } catch {
            guard device == .auto else { throw DeviceError(message: error.description) }
            onFallback("CUDA unavailable, running on the CPU: \(error.description)")
            self.init(model, threads: threads, int8Head: int8Head)
        }
    }

    private init(_ model: LoadedModel, running: (Forward, String)) {
        self.model = model.releasingWeights()
        (forward, deviceDescription) = running
        switch forward {
        case .cpu: stepsAhead = 1
        case .cuda: stepsAhead = 8
        }
    }

    /// Most tokens one forward call processes at once.
    var chunkSize: Int {
        switch forward {
        case .cpu(let transformer): transformer.chunkSize
        case .cuda(let transformer): transformer.chunkSize
        }
    }

    /// The batched stepping the scheduler drives, over one pool of KV blocks for sequences of up to
    /// `contextLength` positions; `blockCount` sizes the pool for the backend's positions per block. Up to
    /// `stepsAhead` (by default the model's ``stepsAhead``) decoding steps go out before their tokens come back.
    func makeBatchRunner(
        contextLength: Int, stepsAhead: Int? = nil, blockCount: (_ blockPositions: Int) -> Int
    ) -> any BatchRunner {
        let ahead = stepsAhead ?? self.stepsAhead
        return switch forward {
        case .cpu(let transformer):
            TransformerRunner(
                transformer: transformer, contextLength: contextLength, stepsAhead: ahead, blockCount: blockCount)
        case .cuda(let transformer):
            TransformerRunner(
                transformer: transformer, contextLength: contextLength, stepsAhead: ahead, blockCount: blockCount)
        }
    }

    /// The model's context window.
    public var contextLength: Int { model.config.contextLength }

    /// A fresh sequence of up to `capacity` tokens (the context window when `nil`).
    public func makeSession(capacity: Int? = nil) -> any DecodingSession {
        switch forward {
        case .cpu(let transformer): transformer.makeSession(capacity: capacity ?? contextLength)
        case .cuda(let transformer): transformer.makeSession(capacity: capacity ?? contextLength)
        }
    }

    /// Generates after `prompt` until an end-of-sequence token, `maxTokens` tokens, a full context, or `onToken`
    /// returning `false`. End-of-sequence tokens are not part of the result.
    public func generate(
        prompt: [Int], maxTokens: Int, sampling: SamplingParameters,
        onToken: (Int) -> Bool = { _ in true }
    ) throws(SessionError) -> GenerationResult {
        guard !prompt.isEmpty else { throw .emptyPrompt }
        // The cache holds only what this generation can reach, not the whole context window.
        guard prompt.count <= contextLength else {
            throw .contextFull(capacity: contextLength, requested: prompt.count)
        }
        let session = makeSession(capacity: min(contextLength, prompt.count + maxTokens))
        var sampler = Sampler(sampling)
        var history = prompt
        var generated: [Int] = []
        var logits = try session.append(prompt) { $0 == prompt.count - 1 }[prompt.count - 1]!
        // Greedy decoding without a repetition penalty needs only the argmax, which the backend can find itself.
        let greedy = sampling.temperature == 0 && sampling.repetitionPenalty == 1
        var next: Int?
        // Tokens the last run of steps chose, each already appended but the last.
        var queued: [Int] = []
        // The draw of the next run's first step, which the last run queued.
        var queuedDraw: RowDraw?
        var reason = GenerationResult.StopReason.length
        var stopToken: Int?
        while generated.count < maxTokens {
            let token = next ?? sampler.sample(logits, history: history)
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
            if !queued.isEmpty {
                next = queued.removeFirst()
                continue
            }
            guard session.length < session.capacity else {
                reason = .contextFull
                break
            }
            // Greedy tokens and draws are chosen where the backend runs, several steps at once, and only they come
            // back.
            let count = min(stepsAhead, maxTokens - generated.count, session.capacity - session.length)
            if greedy || sampler.drawsWhereTheLogitsAre {
                func nextDraw() -> RowDraw { greedy ? .argmax : sampler.nextRowDraw() }
                let draws = [queuedDraw ?? nextDraw()] + (1..<count).map { _ in nextDraw() }
                // The run after this one, where one follows: its first step goes out before this run's tokens come
                // back, with the draw it takes next in the sampler's order (unused where generation stops first).
                let after = min(
                    stepsAhead, maxTokens - generated.count - count, session.capacity - session.length - count)
                queuedDraw = after > 0 ? nextDraw() : nil
                queued = try session.appendSteps(
                    token, draws: draws, thenQueuing: max(after, 0), drawing: queuedDraw ?? .argmax)
                next = queued.removeFirst()
            } else {
                logits = try session.append([token]) { _ in true }[0]!
            }
        }
        return GenerationResult(
            promptTokenCount: prompt.count, tokens: generated, stopToken: stopToken, stopReason: reason)
    }

    /// Teacher-forced log-probabilities: entry `i` is `log p(tokens[i] | tokens[..<i])`, `nil` for the first.
    /// The tokens must fit the context window.
    public func score(_ tokens: [Int]) throws(SessionError) -> [Double?] {
        guard !tokens.isEmpty else { return [] }
        guard tokens.count <= contextLength else {
            throw .contextFull(capacity: contextLength, requested: tokens.count)
        }
        let session = makeSession(capacity: tokens.count)
        let logits = try session.append(tokens) { $0 < tokens.count - 1 }
        var result: [Double?] = [nil]
        for i in 1..<tokens.count {
            result.append(Self.logSoftmax(logits[i - 1]!, at: tokens[i]))
        }
        return result
    }

    /// Perplexity of `tokens` in windows of `context` tokens whose starts advance by `stride`.
    ///
    /// Every window is `prefix` (BOS, for models that expect one) followed by consecutive text tokens, and its
    /// last position also predicts the token after it. Each window scores only targets no earlier window scored,
    /// so every token is predicted exactly once (all of them with a prefix, all but the first without), with the
    /// rest of its window as history. `stride == context` gives non-overlapping windows; a smaller stride gives
    /// each prediction more history at more cost. `progress` receives the fraction done.
    public func perplexity(
        _ tokens: [Int], prefix: [Int] = [], context: Int, stride: Int, progress: (Double) -> Void = { _ in }
    ) throws(SessionError) -> PerplexityResult {
        precondition(context > prefix.count && stride > 0 && stride <= context, "invalid window")
        let textPerWindow = context - prefix.count
        let total = tokens.count - (prefix.isEmpty ? 1 : 0)
        var totalNLL = 0.0
        var count = 0
        var next = prefix.isEmpty ? 1 : 0
        var begin = 0
        let session = makeSession(capacity: context)
        while next < tokens.count {
            let end = min(begin + textPerWindow, tokens.count)
            let window = prefix + tokens[begin..<end]
            // Input position p predicts text token begin + p - prefix.count + 1.
            let lastTarget = min(end, tokens.count - 1)
            let positions = (next - begin + prefix.count - 1)...(lastTarget - begin + prefix.count - 1)
            session.truncate(to: 0)
            let logits = try session.append(window) { positions.contains($0) }
            for target in next...lastTarget {
                totalNLL -= Self.logSoftmax(logits[target - begin + prefix.count - 1]!, at: tokens[target])
                count += 1
            }
            next = lastTarget + 1
            progress(Double(count) / Double(max(total, 1)))
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

/// Where a model runs.
public enum ComputeDevice: String, Sendable, CaseIterable {
    /// The CPU kernels.
    case cpu
    /// The first NVIDIA GPU; an error when there is none.
    case cuda
    /// The GPU when one is usable, else the CPU.
    case auto
}

/// The device asked for cannot run the model.
public struct DeviceError: Error, CustomStringConvertible {
    /// What went wrong and what to do.
    public var message: String

    /// The message.
    public var description: String { message }
}
