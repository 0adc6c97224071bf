import ArgumentParser
import OnebitCPU
import OnebitEngine
import OnebitModel

/// `onebit doctor`: what this machine offers onebit, and whether the built-in model runs.
struct Doctor: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Check this machine: CPU kernels, threads, GPU and CUDA, and a run of the built-in model.")

    func run() throws {
        var problems = 0
        func report(_ label: String, _ value: String, ok: Bool = true) {
            print((ok ? "ok    " : "FAIL  ") + label + ": " + value)
            if !ok { problems += 1 }
        }
        let supported = CPUInstructionSet.allCases.filter(\.isSupported).map(\.description)
        report("CPU kernels", "\(CPUInstructionSet.best) (supported: \(supported.joined(separator: ", ")))")
        report("threads", "\(ThreadPool.physicalCoreCount) physical cores")

        do {
            let model = try EmbeddedModel.load()
            report("built-in model", "\(model.config.layerCount) layers, \(model.config.vocabSize) tokens")
            let language = LanguageModel(model)
            let prompt = model.tokenizer.encode("To be, or not to be")
            let reply = try language.generate(prompt: prompt, maxTokens: 8, sampling: .greedy)
            report(
                "CPU generation",
                JSONValue.string(model.tokenizer.decode(reply.tokens)).jsonText, ok: reply.tokens.count == 8)
            var fallback: String?
            let gpu = try? LanguageModel(model, device: .auto) { fallback = $0 }
            if let fallback {
                print("info  GPU: \(fallback)")
            } else if let gpu {
                let gpuReply = try gpu.generate(prompt: prompt, maxTokens: 8, sampling: .greedy)
                report(
                    "GPU generation on \(gpu.deviceDescription)",
                    gpuReply.tokens == reply.tokens ? "same tokens as the CPU" : "tokens differ from the CPU",
                    ok: gpuReply.tokens == reply.tokens)
            }
        } catch {
            report("built-in model", "\(error)", ok: false)
        }
        if problems > 0 { throw ExitCode(1) }
    }
}
