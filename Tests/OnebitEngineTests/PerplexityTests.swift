import OnebitModel
import Testing

@testable import OnebitEngine

/// Perplexity windows predict every token exactly once, and one whole window equals teacher-forced scoring.
@Suite struct PerplexityTests {
    static func model() throws -> LanguageModel {
        LanguageModel(try ModelLoader.load(path: Fixtures.models + "/hf-odd"))
    }

    @Test func oneWindowEqualsScoring() throws {
        let language = try Self.model()
        let tokens = (0..<40).map { ($0 * 37 + 11) % 368 }
        let logprobs = try language.score(tokens).compactMap { $0 }
        let result = try language.perplexity(tokens, context: 40, stride: 40)
        #expect(result.tokenCount == 39)
        #expect(abs(result.meanNegativeLogLikelihood + logprobs.reduce(0, +) / 39) < 1e-9)
    }

    @Test(arguments: [(16, 16), (16, 5), (7, 3), (40, 1)])
    func everyTokenIsPredictedOnce(context: Int, stride: Int) throws {
        let language = try Self.model()
        let tokens = (0..<33).map { ($0 * 53 + 7) % 368 }
        var progress: [Double] = []
        let result = try language.perplexity(tokens, context: context, stride: stride) { progress.append($0) }
        #expect(result.tokenCount == 32)
        #expect(result.perplexity.isFinite && result.perplexity > 1)
        #expect(progress.last == 1)
    }
}
