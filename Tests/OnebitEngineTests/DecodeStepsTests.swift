import OnebitCPU
import OnebitModel
import Testing

@testable import OnebitEngine

@Suite struct DecodeStepsTests {
    static let model = SchedulerTests.model

    @Test func stepsFedTheirOwnArgmaxGiveTheTokensOfStepByStepGreedyDecoding() {
        let transformer = Transformer(backend: CPUBackend(), config: Self.model.config, weights: Self.model.weights)
        let prompts = [[5, 9, 14], [3], [200, 7, 7, 7, 1]]
        let steps = transformer.decodeSteps(
            batch: prompts.map { prompt in
                let cache = transformer.makeCache(capacity: 32)
                _ = transformer.forward(Array(prompt.dropLast()), startingAt: 0, cache: cache) { _ in false }
                return .init(tokens: [prompt.last!], start: prompt.count - 1, cache: cache, wantsLogits: false)
            },
            count: 6)
        #expect(steps == Self.stepByStep(prompts, steps: 6))
    }

    /// The tokens of `steps` steps after the prompts, one step at a time on the CPU: the argmax, or where `draws` is
    /// not empty the token `draws[step][sequence]` picks from the whole row (``Sampler/token(drawing:from:)``).
    static func stepByStep(_ prompts: [[Int]], steps: Int, draws: [[RowDraw]] = []) -> [[Int]] {
        let transformer = Transformer(backend: CPUBackend(), config: model.config, weights: model.weights)
        var sequences = prompts.map { prompt in
            let cache = transformer.makeCache(capacity: 32)
            _ = transformer.forward(Array(prompt.dropLast()), startingAt: 0, cache: cache) { _ in false }
            return (cache: cache, start: prompt.count - 1)
        }
        var tokens = prompts.map { $0.last! }
        var all: [[Int]] = []
        for step in 0..<steps {
            let batch = zip(tokens, sequences).map {
                Transformer<CPUBackend>.Slice(tokens: [$0], start: $1.start, cache: $1.cache, wantsLogits: true)
            }
            tokens =
                draws.isEmpty
                ? transformer.greedyNext(batch: batch).map { $0! }
                : zip(transformer.forward(batch: batch), draws[step]).map { Sampler.token(drawing: $1, from: $0!) }
            all.append(tokens)
            sequences = sequences.map { ($0.cache, $0.start + 1) }
        }
        return all
    }

    @Test(arguments: [false, true])
    func stepsFedTheirOwnDrawsGiveTheTokensOfStepByStepSampling(kept: Bool) {
        let backend = WholeContextCPU()
        backend.keepsTokens = kept
        let transformer = Transformer(backend: backend, config: Self.model.config, weights: Self.model.weights)
        let prompts = [[5, 9, 14], [3], [200, 7, 7, 7, 1], [42, 43], [17]]
        // A greedy sequence among sequences that draw, one of them with min-p and one among its top-k with top-p.
        var samplers = [
            SamplingParameters(temperature: 0.9, seed: 1), SamplingParameters(temperature: 0),
            SamplingParameters(temperature: 1.4, minP: 0.05, seed: 2), SamplingParameters(temperature: 0.6, seed: 3),
            SamplingParameters(temperature: 1.2, topK: 12, topP: 0.8, seed: 4),
        ].map(Sampler.init)
        let steps = 6
        let draws = (0..<steps).map { _ in
            samplers.indices.map {
                samplers[$0].parameters.temperature == 0 ? RowDraw.argmax : samplers[$0].nextRowDraw()
            }
        }
        let caches = prompts.map { prompt in
            let cache = transformer.makeCache(capacity: 32)
            _ = transformer.forward(Array(prompt.dropLast()), startingAt: 0, cache: cache) { _ in false }
            return cache
        }
        let queued = transformer.decodeSteps(
            batch: zip(prompts, caches).map {
                .init(tokens: [$0.last!], start: $0.count - 1, cache: $1, wantsLogits: false)
            },
            count: steps, draws: draws)
        // Step by step on the CPU, each token drawn by the host's sampler from the whole row.
        let oneByOne = Self.stepByStep(prompts, steps: steps, draws: draws)
        #expect(queued == oneByOne)
        // Every step had a row that draws, so none took the argmax path.
        #expect(backend.drawnSteps == steps)
        // And the draws chose other tokens than the argmax would.
        #expect(oneByOne != Self.stepByStep(prompts, steps: steps))
    }

    /// A transformer on a CPU backend that keeps its tokens as the CUDA backend does, each prompt run but its last
    /// token, and the slices of those sequences with `tokens` `steps` positions after their last prompt token.
    static func keepingTokens(_ prompts: [[Int]]) -> (
        backend: WholeContextCPU, transformer: Transformer<WholeContextCPU>,
        batch: (_ tokens: [Int], _ steps: Int) -> [Transformer<WholeContextCPU>.Slice]
    ) {
        let backend = WholeContextCPU()
        backend.keepsTokens = true
        let transformer = Transformer(backend: backend, config: model.config, weights: model.weights)
        let caches = prompts.map { prompt in
            let cache = transformer.makeCache(capacity: 32)
            _ = transformer.forward(Array(prompt.dropLast()), startingAt: 0, cache: cache) { _ in false }
            return cache
        }
        return (
            backend, transformer,
            { tokens, steps in
                zip(zip(prompts, caches), tokens).map {
                    .init(tokens: [$1], start: $0.0.count - 1 + steps, cache: $0.1, wantsLogits: false)
                }
            }
        )
    }

    @Test(arguments: [4, 3])
    func aRunQueuedAheadStartsTheNextRunOnlyWhereThatRunIsAskedFor(secondCount: Int) {
        let prompts = [[5, 9, 14], [3], [200, 7, 7, 7, 1]]
        let (backend, transformer, batch) = Self.keepingTokens(prompts)
        let first = transformer.decodeSteps(batch: batch(prompts.map { $0.last! }, 0), count: 4, queueingNext: 4)
        let offered = backend.steps.count
        let second = transformer.decodeSteps(batch: batch(first.last!, 4), count: secondCount)
        #expect(first + second == Self.stepByStep(prompts, steps: 4 + secondCount))
        // The run asked for starts from the queued step; any other runs its first step again.
        #expect(backend.steps.count - offered == (secondCount == 4 ? 3 : secondCount))
    }

    @Test(arguments: [true, false])
    func aSessionsRunQueuedAheadStartsItsNextRun(sameDraw: Bool) throws {
        let backend = WholeContextCPU()
        backend.keepsTokens = true
        let transformer = Transformer(backend: backend, config: Self.model.config, weights: Self.model.weights)
        let prompt = [200, 7, 7, 7, 1]
        let session = transformer.makeSession(capacity: 32)
        _ = try session.append(Array(prompt.dropLast())) { _ in false }
        var sampler = Sampler(SamplingParameters(temperature: 1.1, seed: 9))
        let draws = (0..<9).map { _ in sampler.nextRowDraw() }
        let other = sampler.nextRowDraw()
        let first = try session.appendSteps(
            prompt.last!, draws: Array(draws[0..<4]), thenQueuing: 5, drawing: draws[4])
        let offered = backend.steps.count
        let second = try session.appendSteps(
            first.last!, draws: [sameDraw ? draws[4] : other] + Array(draws[5...]))
        if sameDraw {
            #expect(first + second == Self.stepByStep([prompt], steps: 9, draws: draws.map { [$0] }).map { $0[0] })
        }
        // The run that draws what the queued step drew starts from it; one that draws otherwise runs it again.
        #expect(backend.steps.count - offered == (sameDraw ? 4 : 5))
        #expect(session.length == prompt.count - 1 + 9)
        // No step is queued past the session's capacity.
        #expect(throws: SessionError.contextFull(capacity: 32, requested: 33)) {
            try session.appendSteps(
                second.last!, draws: Array(repeating: .argmax, count: 19), thenQueuing: 1, drawing: .argmax)
        }
    }

    @Test(arguments: [true, false])
    func aDrawnRunQueuedAheadStartsTheNextRunOnlyWhereItDrawsTheSame(sameDraws: Bool) {
        let prompts = [[5, 9, 14], [3], [200, 7, 7, 7, 1]]
        let (backend, transformer, batch) = Self.keepingTokens(prompts)
        // A greedy sequence between two that draw.
        var samplers = [0.9, 0, 1.1].enumerated().map {
            Sampler(SamplingParameters(temperature: Float($1), seed: UInt64($0)))
        }
        func step() -> [RowDraw] {
            samplers.indices.map { samplers[$0].parameters.temperature == 0 ? .argmax : samplers[$0].nextRowDraw() }
        }
        let firstDraws = (0..<4).map { _ in step() }
        let queuedDraws = step()
        let other = step()
        let secondDraws = [sameDraws ? queuedDraws : other] + (0..<3).map { _ in step() }
        let first = transformer.decodeSteps(
            batch: batch(prompts.map { $0.last! }, 0), count: 4, draws: firstDraws, queueingNext: 4,
            drawing: queuedDraws)
        let offered = backend.steps.count
        let second = transformer.decodeSteps(batch: batch(first.last!, 4), count: 4, draws: secondDraws)
        #expect(first + second == Self.stepByStep(prompts, steps: 8, draws: firstDraws + secondDraws))
        // The run that draws what the queued step drew starts from it; one that draws otherwise runs it again.
        #expect(backend.steps.count - offered == (sameDraws ? 3 : 4))
    }

    @Test func aSessionsGreedyStepsAreItsGreedyTokensOneByOne() throws {
        let language = LanguageModel(Self.model)
        let prompt = [4, 8, 15, 16, 23]
        func session() throws -> any DecodingSession {
            let session = language.makeSession(capacity: 16)
            _ = try session.append(Array(prompt.dropLast())) { _ in false }
            return session
        }
        let stepwise = try session()
        var oneByOne = [try stepwise.appendGreedy(prompt.last!)]
        for _ in 1..<6 { oneByOne.append(try stepwise.appendGreedy(oneByOne.last!)) }
        let queued = try session()
        #expect(try queued.appendSteps(prompt.last!, draws: Array(repeating: .argmax, count: 6)) == oneByOne)
        #expect(queued.length == stepwise.length)
        // Past the capacity nothing runs.
        #expect(throws: SessionError.contextFull(capacity: 16, requested: 18)) {
            try queued.appendSteps(1, draws: Array(repeating: .argmax, count: 8))
        }
    }

    @Test(
        arguments: [
            (maxTokens: 11, context: 64, temperature: 0), (maxTokens: 40, context: 20, temperature: 0),
            (maxTokens: 11, context: 64, temperature: 0.9), (maxTokens: 40, context: 20, temperature: 1.2),
        ] as [(Int, Int, Float)])
    func generationQueuingStepsGivesTheTokensOfOneStepAtATime(maxTokens: Int, context: Int, temperature: Float) throws {
        var model = Self.model
        model.config.contextLength = context
        let language = LanguageModel(model)
        let prompt = [3, 1, 4, 1, 5]
        let sampling = SamplingParameters(temperature: temperature, minP: temperature > 1 ? 0.05 : 0, seed: 7)
        language.stepsAhead = 1
        let oneByOne = try language.generate(prompt: prompt, maxTokens: maxTokens, sampling: sampling)
        language.stepsAhead = 4
        var streamed: [Int] = []
        let queued = try language.generate(prompt: prompt, maxTokens: maxTokens, sampling: sampling) {
            streamed.append($0)
            return true
        }
        #expect(queued == oneByOne)
        #expect(streamed == oneByOne.tokens)
    }
}
