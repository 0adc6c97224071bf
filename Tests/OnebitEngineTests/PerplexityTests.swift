import OnebitModel
import Testing

@testable import OnebitEngine

/// Perplexity windows predict every token exactly once, and one whole window equals teacher-forced scoring.
@Suite struct PerplexityTests {
    static func model() throws -> LanguageModel {
        LanguageModel(try ModelLoader.load(path: Fixtures.models + "/hf-odd"))
    }

    static let bos = 368

    @Test func oneWindowEqualsScoring() throws {
        let language = try Self.model()
        let tokens = (0..<40).map { ($0 * 37 + 11) % 368 }
        let logprobs = try language.score([Self.bos] + tokens).compactMap { $0 }
        let result = try language.perplexity(tokens, prefix: [Self.bos], context: 41, stride: 41)
        #expect(result.tokenCount == 40)
        #expect(abs(result.meanNegativeLogLikelihood + logprobs.reduce(0, +) / 40) < 1e-9)
    }

    @Test(arguments: [(16, 16), (16, 5), (7, 3), (40, 1), (2, 2)])
    func everyTokenIsPredictedOnce(context: Int, stride: Int) throws {
        let language = try Self.model()
        let tokens = (0..<33).map { ($0 * 53 + 7) % 368 }
        for prefix in [[], [Self.bos]] {
            var progress: [Double] = []
            let result = try language.perplexity(tokens, prefix: prefix, context: context, stride: stride) {
                progress.append($0)
            }
            #expect(result.tokenCount == (prefix.isEmpty ? 32 : 33))
            #expect(result.perplexity.isFinite && result.perplexity > 1)
            #expect(progress.last == 1)
        }
    }

    @Test func nonOverlappingWindowsScoreEachChunkFromBOS() throws {
        // With a prefix and stride == context, window k is BOS + chunk k minus its last token, predicting chunk k.
        let language = try Self.model()
        let tokens = (0..<24).map { ($0 * 29 + 5) % 368 }
        var expected = 0.0
        for chunk in stride(from: 0, to: 24, by: 8) {
            let logprobs = try language.score([Self.bos] + tokens[chunk..<chunk + 8]).compactMap { $0 }
            expected -= logprobs.reduce(0, +)
        }
        let result = try language.perplexity(tokens, prefix: [Self.bos], context: 8, stride: 8)
        #expect(result.tokenCount == 24)
        #expect(abs(result.meanNegativeLogLikelihood - expected / 24) < 1e-9)
    }
}
