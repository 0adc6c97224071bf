import OnebitCPU
import OnebitModel
import Testing

@testable import OnebitEngine

/// A seed gives the same text whatever kernels and thread count the machine runs, so a recorded output can be
/// checked on any x86-64 CPU.
@Suite struct ReproducibilityTests {
    @Test func seededGenerationIsTheSameOnEveryKernelVariant() throws {
        let model = try EmbeddedModel.load()
        let prompt = model.tokenizer.encode("To be, or not to be")
        let sampling = SamplingParameters(temperature: 0.7, topK: 40, topP: 0.95, minP: 0.05, seed: 7)
        var outputs: [[Int]] = []
        for instructionSet in CPUInstructionSet.allCases where instructionSet.isSupported {
            for threads in [1, 2] {
                let language = LanguageModel(
                    model, backend: CPUBackend(threadCount: threads, instructionSet: instructionSet))
                outputs.append(try language.generate(prompt: prompt, maxTokens: 32, sampling: sampling).tokens)
            }
        }
        #expect(outputs.count >= 2)
        #expect(Set(outputs).count == 1, "\(outputs)")
    }
}
