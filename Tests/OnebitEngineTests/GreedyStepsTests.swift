import OnebitCPU
import OnebitModel
import Testing

@testable import OnebitEngine

@Suite struct GreedyStepsTests {
    static let model = SchedulerTests.model

    @Test func stepsFedTheirOwnArgmaxGiveTheTokensOfStepByStepGreedyDecoding() {
        let transformer = Transformer(backend: CPUBackend(), config: Self.model.config, weights: Self.model.weights)
        let prompts = [[5, 9, 14], [3], [200, 7, 7, 7, 1]]
        let steps = transformer.greedySteps(
            batch: prompts.map { prompt in
                let cache = transformer.makeCache(capacity: 32)
                _ = transformer.forward(Array(prompt.dropLast()), startingAt: 0, cache: cache) { _ in false }
                return .init(tokens: [prompt.last!], start: prompt.count - 1, cache: cache, wantsLogits: false)
            },
            count: 6)
        #expect(steps == Self.stepByStep(prompts, steps: 6))
    }

    /// The greedy tokens of `steps` steps after the prompts, one step at a time on the CPU.
    static func stepByStep(_ prompts: [[Int]], steps: Int) -> [[Int]] {
        let transformer = Transformer(backend: CPUBackend(), config: model.config, weights: model.weights)
        var sequences = prompts.map { prompt in
            let cache = transformer.makeCache(capacity: 32)
            _ = transformer.forward(Array(prompt.dropLast()), startingAt: 0, cache: cache) { _ in false }
            return (cache: cache, start: prompt.count - 1)
        }
        var tokens = prompts.map { $0.last! }
        var all: [[Int]] = []
        for _ in 0..<steps {
            tokens = transformer.greedyNext(
                batch: zip(tokens, sequences).map {
                    .init(tokens: [$0], start: $1.start, cache: $1.cache, wantsLogits: true)
                }
            ).map { $0! }
            all.append(tokens)
            sequences = sequences.map { ($0.cache, $0.start + 1) }
        }
        return all
    }

    @Test(arguments: [4, 3])
    func aRunQueuedAheadStartsTheNextRunOnlyWhereThatRunIsAskedFor(secondCount: Int) {
        let backend = WholeContextCPU()
        backend.keepsTokens = true
        let transformer = Transformer(backend: backend, config: Self.model.config, weights: Self.model.weights)
        let prompts = [[5, 9, 14], [3], [200, 7, 7, 7, 1]]
        let caches = prompts.map { prompt in
            let cache = transformer.makeCache(capacity: 32)
            _ = transformer.forward(Array(prompt.dropLast()), startingAt: 0, cache: cache) { _ in false }
            return cache
        }
        func batch(_ tokens: [Int], after steps: Int) -> [Transformer<WholeContextCPU>.Slice] {
            zip(zip(prompts, caches), tokens).map {
                .init(tokens: [$1], start: $0.0.count - 1 + steps, cache: $0.1, wantsLogits: false)
            }
        }
        let first = transformer.greedySteps(batch: batch(prompts.map { $0.last! }, after: 0), count: 4, queueingNext: 4)
        let offered = backend.steps.count
        let second = transformer.greedySteps(batch: batch(first.last!, after: 4), count: secondCount)
        #expect(first + second == Self.stepByStep(prompts, steps: 4 + secondCount))
        // The run asked for starts from the queued step; any other runs its first step again.
        #expect(backend.steps.count - offered == (secondCount == 4 ? 3 : secondCount))
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
        #expect(try queued.appendGreedySteps(prompt.last!, count: 6) == oneByOne)
        #expect(queued.length == stepwise.length)
        // Past the capacity nothing runs.
        #expect(throws: SessionError.contextFull(capacity: 16, requested: 18)) {
            try queued.appendGreedySteps(1, count: 8)
        }
    }

    @Test(arguments: [(maxTokens: 11, context: 64), (maxTokens: 40, context: 20)])
    func generationQueuingGreedyStepsGivesTheTokensOfOneStepAtATime(maxTokens: Int, context: Int) throws {
        var model = Self.model
        model.config.contextLength = context
        let language = LanguageModel(model)
        let prompt = [3, 1, 4, 1, 5]
        language.greedyStepsAhead = 1
        let oneByOne = try language.generate(prompt: prompt, maxTokens: maxTokens, sampling: .greedy)
        language.greedyStepsAhead = 4
        var streamed: [Int] = []
        let queued = try language.generate(prompt: prompt, maxTokens: maxTokens, sampling: .greedy) {
            streamed.append($0)
            return true
        }
        #expect(queued == oneByOne)
        #expect(streamed == oneByOne.tokens)
    }
}
