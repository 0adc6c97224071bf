import OnebitCPU
import OnebitModel
import Testing

@testable import OnebitEngine

@Suite struct SchedulerTests {
    static let model: LoadedModel = {
        do {
            return try ModelLoader.load(path: Fixtures.models + "/hf-256")
        } catch {
            preconditionFailure("the committed fixture must load: \(error)")
        }
    }()

    /// Prompts of different lengths, so a batch mixes prefill chunks and decode tokens.
    static let prompts = [[1, 2, 3, 4, 5], [7, 8], Array(10..<40), [99]]

    @Test func aBatchedStepGivesTheLogitsOfSeparateRuns() {
        let transformer = Transformer(backend: CPUBackend(), config: Self.model.config, weights: Self.model.weights)
        var alone: [[Float]] = []
        for prompt in Self.prompts {
            let cache = transformer.makeCache(capacity: 64)
            alone.append(
                transformer.forward(prompt, startingAt: 0, cache: cache) { $0 == prompt.count - 1 }[prompt.count - 1]!)
        }
        // All prompts in one step, then one more token for each in a second step.
        let caches = Self.prompts.map { _ in transformer.makeCache(capacity: 64) }
        let batched = transformer.forward(
            batch: zip(Self.prompts, caches).map { .init(tokens: $0, start: 0, cache: $1, wantsLogits: true) })
        #expect(batched.map { $0! } == alone)

        let next = transformer.forward(
            batch: zip(Self.prompts, caches).map { .init(tokens: [42], start: $0.count, cache: $1, wantsLogits: true) })
        for (index, prompt) in Self.prompts.enumerated() {
            let cache = transformer.makeCache(capacity: 64)
            let expected = transformer.forward(prompt + [42], startingAt: 0, cache: cache) { $0 == prompt.count }
            #expect(next[index] == expected[prompt.count])
        }
    }

    /// Generated token ids and the finish event of one stream.
    func drain(_ stream: GenerationStream) async -> ([Int], GenerationEvent?) {
        var tokens: [Int] = []
        for await event in stream {
            if case .token(let token) = event {
                tokens.append(token.id)
            } else {
                return (tokens, event)
            }
        }
        return (tokens, nil)
    }

    /// A sampled request that never picks an end-of-sequence token, so it runs for exactly `maxTokens` tokens.
    func request(_ prompt: [Int], seed: UInt64, maxTokens: Int = 12) -> GenerationRequest {
        GenerationRequest(
            prompt: prompt, maxTokens: maxTokens, sampling: SamplingParameters(temperature: 1, seed: seed),
            logitBias: Dictionary(uniqueKeysWithValues: Self.model.endOfSequenceTokenIDs.map { ($0, -1000) }))
    }

    @Test func aSeededRequestGivesTheSameTokensAloneAndInABatch() async throws {
        let scheduler = Scheduler(
            model: LanguageModel(Self.model), configuration: SchedulerConfiguration(contextLength: 128))
        let alone = await drain(try scheduler.submit(request(Self.prompts[0], seed: 7)))
        let streams = try Self.prompts.enumerated().map { index, prompt in
            try scheduler.submit(request(prompt, seed: index == 0 ? 7 : UInt64(index)))
        }
        var results: [([Int], GenerationEvent?)] = []
        for stream in streams { results.append(await drain(stream)) }
        #expect(results[0].0 == alone.0)
        #expect(results[0].1 == alone.1)
        #expect(scheduler.statistics.steps > 0)
    }

    @Test(arguments: [
        // The scheduler brings back only the 30 largest logits of each row.
        SamplingParameters(temperature: 1.2, topK: 30, topP: 0.9, minP: 0.01, seed: 11),
        // The backend draws the token from the whole row itself.
        SamplingParameters(temperature: 0.9, minP: 0.02, seed: 5),
        // Top-p from the largest logits and the row's total weight, or the whole row where they are not enough.
        SamplingParameters(temperature: 0.8, topP: 0.9, minP: 0.01, seed: 3),
        SamplingParameters(temperature: 3, topP: 0.99, seed: 4),
    ])
    func requestsThatNeedLessThanTheLogitsGetWhatTheWholeRowsGive(_ sampling: SamplingParameters) async throws {
        let scheduler = Scheduler(
            model: LanguageModel(Self.model), configuration: SchedulerConfiguration(contextLength: 128))
        let language = LanguageModel(Self.model)
        let streams = try Self.prompts.map {
            try scheduler.submit(GenerationRequest(prompt: $0, maxTokens: 16, sampling: sampling))
        }
        for (prompt, stream) in zip(Self.prompts, streams) {
            let expected = try Self.wholeRowTokens(language, prompt: prompt, maxTokens: 16, sampling: sampling)
            #expect(await drain(stream).0 == expected)
            #expect(try language.generate(prompt: prompt, maxTokens: 16, sampling: sampling).tokens == expected)
        }
    }

    /// Generation that samples every token from its whole row of logits on the host.
    static func wholeRowTokens(
        _ language: LanguageModel, prompt: [Int], maxTokens: Int, sampling: SamplingParameters
    ) throws -> [Int] {
        let session = language.makeSession(capacity: prompt.count + maxTokens)
        var sampler = Sampler(sampling)
        var logits = try session.append(prompt) { $0 == prompt.count - 1 }[prompt.count - 1]!
        var tokens: [Int] = []
        while tokens.count < maxTokens {
            let token = sampler.sample(logits, history: prompt + tokens)
            if language.model.endOfSequenceTokenIDs.contains(token) { break }
            tokens.append(token)
            logits = try session.append([token]) { _ in true }[0]!
        }
        return tokens
    }

    @Test func finishedAndCancelledSequencesFreeTheirCache() async throws {
        let scheduler = Scheduler(
            model: LanguageModel(Self.model),
            configuration: SchedulerConfiguration(maxConcurrency: 1, contextLength: 4096))
        let long = try scheduler.submit(request([1, 2, 3], seed: 1, maxTokens: 4000))
        let waiting = try scheduler.submit(request([4, 5], seed: 2, maxTokens: 3))
        // Checked before any await: with other tests keeping the cooperative threads busy, this task may resume
        // only after the long request has finished on the engine thread.
        #expect(scheduler.statistics.queued >= 1)
        var iterator = long.makeAsyncIterator()
        _ = await iterator.next()
        long.cancel()
        // The waiting request gets the freed sequence and finishes.
        let (tokens, end) = await drain(waiting)
        #expect(tokens.count == 3)
        #expect(end == .finished(.length, GenerationUsage(promptTokens: 2, completionTokens: 3)))
        while scheduler.statistics.running > 0 { try await Task.sleep(for: .milliseconds(1)) }
        #expect(scheduler.statistics.cachedTokens == 0)
        #expect(scheduler.statistics.keyValueBlocksUsed == 0)
        #expect(scheduler.statistics.keyValueBlocksCached > 0)
    }

    @Test func aShortPoolQueuesRequestsAndEndsSequencesThatCannotGrow() async throws {
        // Three blocks of 16 positions for four sequences that each want 5 + 60.
        let scheduler = Scheduler(
            model: LanguageModel(Self.model),
            configuration: SchedulerConfiguration(maxConcurrency: 4, contextLength: 128, keyValueBlocks: 3))
        #expect(scheduler.statistics.keyValueBlocks == 3)
        #expect(throws: SchedulerError.promptTooLong(promptTokens: 48, contextLength: 48)) {
            try scheduler.submit(request(Array(1...48), seed: 0))
        }
        var streams: [GenerationStream] = []
        for index in 0..<4 {
            let prompt: [Int] = (1...5).map { index * 10 + $0 }
            streams.append(try scheduler.submit(request(prompt, seed: UInt64(index), maxTokens: 60)))
        }
        var ends: [GenerationEvent?] = []
        for stream in streams {
            let (tokens, end) = await drain(stream)
            ends.append(end)
            guard case .finished(let reason, let usage) = end else {
                Issue.record("expected a finish, got \(String(describing: end))")
                continue
            }
            #expect(usage.completionTokens == tokens.count)
            #expect(reason == .length)
            #expect(tokens.count <= 60 && usage.promptTokens + tokens.count <= 3 * 16 + 1)
        }
        #expect(ends.count == 4)
        while scheduler.statistics.running > 0 { try await Task.sleep(for: .milliseconds(1)) }
        #expect(scheduler.statistics.keyValueBlocksUsed == 0)
        #expect(scheduler.statistics.queued == 0)
    }

    @Test func requestsAreCheckedAndTheQueueIsBounded() throws {
        let scheduler = Scheduler(
            model: LanguageModel(Self.model),
            configuration: SchedulerConfiguration(maxConcurrency: 1, contextLength: 16, maxQueued: 0))
        #expect(throws: SchedulerError.emptyPrompt) { try scheduler.submit(request([], seed: 0)) }
        #expect(throws: SchedulerError.promptTooLong(promptTokens: 16, contextLength: 16)) {
            try scheduler.submit(request(Array(0..<16), seed: 0))
        }
        #expect(throws: SchedulerError.invalidToken(id: -1, vocabularySize: Self.model.config.vocabSize)) {
            try scheduler.submit(request([-1], seed: 0))
        }
        #expect(throws: SchedulerError.overloaded(queued: 0)) { try scheduler.submit(request([1], seed: 0)) }
    }

    @Test func aResentPrefixIsNotRecomputedAndGivesTheSameTokens() async throws {
        let conversation = Array(1..<60)
        let followUp = conversation + [61, 62, 63]
        let fresh = Scheduler(
            model: LanguageModel(Self.model), configuration: SchedulerConfiguration(contextLength: 128))
        let expected = await drain(try fresh.submit(request(followUp, seed: 5)))

        let scheduler = Scheduler(
            model: LanguageModel(Self.model), configuration: SchedulerConfiguration(contextLength: 128))
        _ = await drain(try scheduler.submit(request(conversation, seed: 4)))
        let again = await drain(try scheduler.submit(request(followUp, seed: 5)))
        #expect(again.0 == expected.0)
        #expect(scheduler.statistics.reusedPromptTokens == conversation.count)
        // Only the three new tokens were run: the first prompt's 59 plus 3.
        #expect(scheduler.statistics.promptTokens == conversation.count + 3)
    }

    @Test func greedyStepsQueuedAheadGiveTheTokensOfOneStepAtATime() async throws {
        // Token limits that end sequences inside a run of queued steps, and a context that ends one with length.
        let requests = [([1, 2, 3], 3), ([7, 8], 10), (Array(10..<30), 14), ([99], 7)].map { prompt, limit in
            GenerationRequest(prompt: prompt, maxTokens: limit, sampling: SamplingParameters(temperature: 0))
        }
        func generate(stepsAhead: Int) async throws -> ([([Int], GenerationEvent?)], Scheduler) {
            let scheduler = Scheduler(
                model: LanguageModel(Self.model),
                configuration: SchedulerConfiguration(contextLength: 32, stepsAhead: stepsAhead))
            let streams = try requests.map { try scheduler.submit($0) }
            var results: [([Int], GenerationEvent?)] = []
            for stream in streams { results.append(await drain(stream)) }
            return (results, scheduler)
        }
        let (oneByOne, plain) = try await generate(stepsAhead: 1)
        let (queued, scheduler) = try await generate(stepsAhead: 4)
        #expect(queued.map(\.0) == oneByOne.map(\.0))
        #expect(queued.map(\.1) == oneByOne.map(\.1))
        #expect(plain.statistics.queuedSteps == 0)
        #expect(scheduler.statistics.queuedSteps > 0)
        // The blocks the queued steps filled are found again by the tokens that went into them.
        let resent = requests[2].prompt + queued[2].0.prefix(8)
        let greedy = SamplingParameters(temperature: 0)
        _ = await drain(try scheduler.submit(GenerationRequest(prompt: resent, maxTokens: 1, sampling: greedy)))
        // Statistics are published after the step that ends a request; a one-token prompt, which reuses nothing,
        // runs after that.
        _ = await drain(try scheduler.submit(GenerationRequest(prompt: [300], maxTokens: 1, sampling: greedy)))
        #expect(scheduler.statistics.reusedPromptTokens == resent.count - 1)
    }

    @Test(arguments: [false, true])
    func drawnStepsQueuedAheadDrawTheTokensOfOneStepAtATime(withNucleus: Bool) async throws {
        // Sequences that draw (one with min-p, one among its top-k with top-p) beside a greedy one, token limits that
        // end some inside a run of queued steps; and with a request that draws from its top-p nucleus among them.
        var samplings = [
            SamplingParameters(temperature: 0.9, seed: 11), SamplingParameters(temperature: 0),
            SamplingParameters(temperature: 1.3, minP: 0.05, seed: 12), SamplingParameters(temperature: 0.7, seed: 13),
            SamplingParameters(temperature: 1.1, topK: 30, topP: 0.85, seed: 15),
        ]
        if withNucleus { samplings.append(SamplingParameters(temperature: 0.8, topP: 0.9, seed: 14)) }
        let prompts = [[1, 2, 3], [7, 8], Array(10..<30), [99], [4, 4, 4], [5, 6]]
        let limits = [9, 10, 14, 7, 12, 5]
        let requests = samplings.indices.map {
            GenerationRequest(prompt: prompts[$0], maxTokens: limits[$0], sampling: samplings[$0])
        }
        let scheduler = Scheduler(
            model: LanguageModel(Self.model), configuration: SchedulerConfiguration(contextLength: 64, stepsAhead: 4))
        let streams = try requests.map { try scheduler.submit($0) }
        let language = LanguageModel(Self.model)
        for (request, stream) in zip(requests, streams) {
            let (tokens, _) = await drain(stream)
            #expect(
                try tokens
                    == Self.wholeRowTokens(
                        language, prompt: request.prompt, maxTokens: request.maxTokens, sampling: request.sampling))
        }
        #expect(scheduler.statistics.queuedSteps > 0)
    }

    @Test func aKeptDrawIsTheSequencesNextDrawWhicheverStepTakesIt() {
        let sampling = SamplingParameters(temperature: 0.9, seed: 5)
        let (_, continuation) = AsyncStream<GenerationEvent>.makeStream()
        func sequence(_ sampling: SamplingParameters) -> SequenceState {
            let request = GenerationRequest(prompt: [1], maxTokens: 8, sampling: sampling)
            return SequenceState(job: Job(request: request, continuation: continuation), sequence: 0, endOfSequence: [])
        }
        var reference = Sampler(sampling)
        let expected = (0..<4).map { _ in reference.nextRowDraw() }
        // Kept for a queued step, the draw is the next one an ordinary step takes ...
        let ordinary = sequence(sampling)
        #expect(ordinary.keepNextRowDraw() == expected[0])
        #expect(ordinary.nextRowDraw() == expected[0])
        #expect(ordinary.nextRowDraws(3) == Array(expected[1...3]))
        // ... and the first of the run that starts from that step.
        let queued = sequence(sampling)
        _ = queued.keepNextRowDraw()
        #expect(queued.nextRowDraws(4) == expected)
        // A greedy sequence's queued step takes the argmax and keeps nothing.
        let greedy = sequence(.greedy)
        #expect(greedy.keepNextRowDraw() == .argmax)
        #expect(greedy.nextRowDraws(2) == [.argmax, .argmax])
    }

    @Test func theContextEndsAGenerationWithLength() async throws {
        let scheduler = Scheduler(
            model: LanguageModel(Self.model), configuration: SchedulerConfiguration(contextLength: 8))
        let (tokens, end) = await drain(try scheduler.submit(request([1, 2, 3, 4, 5], seed: 3, maxTokens: 100)))
        // Positions 0..<8 hold the prompt and all generated tokens but the last, which is never fed back.
        #expect(tokens.count == 4)
        #expect(end == .finished(.length, GenerationUsage(promptTokens: 5, completionTokens: 4)))
    }
}
