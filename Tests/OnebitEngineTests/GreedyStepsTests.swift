import OnebitCPU
import OnebitModel
import Testing

@testable import OnebitEngine

@Suite struct GreedyStepsTests {
    static let model = SchedulerTests.model

    @Test func stepsFedTheirOwnArgmaxGiveTheTokensOfStepByStepGreedyDecoding() {
        let transformer = Transformer(backend: CPUBackend(), config: Self.model.config, weights: Self.model.weights)
        let prompts = [[5, 9, 14], [3], [200, 7, 7, 7, 1]]
        func prefilled() -> [(cache: CPUKeyValueCache, start: Int)] {
            prompts.map { prompt in
                let cache = transformer.makeCache(capacity: 32)
                _ = transformer.forward(Array(prompt.dropLast()), startingAt: 0, cache: cache) { _ in false }
                return (cache, prompt.count - 1)
            }
        }
        var stepByStep: [[Int]] = []
        var tokens = prompts.map { $0.last! }
        var sequences = prefilled()
        for _ in 0..<6 {
            tokens = transformer.greedyNext(
                batch: zip(tokens, sequences).map {
                    .init(tokens: [$0], start: $1.start, cache: $1.cache, wantsLogits: true)
                }
            ).map { $0! }
            stepByStep.append(tokens)
            sequences = sequences.map { ($0.cache, $0.start + 1) }
        }
        let steps = transformer.greedySteps(
            batch: zip(prompts, prefilled()).map {
                .init(tokens: [$0.last!], start: $1.start, cache: $1.cache, wantsLogits: false)
            },
            count: 6)
        #expect(steps == stepByStep)
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
