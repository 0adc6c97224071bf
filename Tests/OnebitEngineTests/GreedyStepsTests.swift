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
}
