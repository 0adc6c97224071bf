import ArgumentParser
import OnebitEngine
import OnebitModel

/// `onebit say`: one prompt in, generated text out.
struct Say: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Generate a reply to one prompt.",
        discussion: "The prompt is sent as one user message through the model's chat template unless --raw is given."
    )

    @OptionGroup var options: ModelOptions
    @OptionGroup var sampling: SamplingOptions

    @Option(help: "Most tokens to generate.")
    var maxTokens = 256

    @Flag(
        help: "Compute logits with an int8 copy of the output head (faster; `onebit ppl --int8-head` shows its cost).")
    var int8Head = false

    @Flag(help: "Use the prompt as is (with the tokenizer's BOS), without the chat template.")
    var raw = false

    @Flag(
        help: """
            Print {"token_ids": [...], "text": "..."} of the generated part instead of streaming text; token_ids \
            end with the end-of-sequence id when one stopped generation, the text leaves it out.
            """)
    var json = false

    @Flag(help: "Report on standard error the device, the prompt time and the generation speed.")
    var stats = false

    @Argument(help: "The prompt.")
    var prompt: String

    func validate() throws {
        guard maxTokens > 0 else { throw ValidationError("--max-tokens must be at least 1") }
        try sampling.validate()
    }

    func run() throws {
        // The loaded tensors go straight to the backend; only its prepared copy stays in memory.
        let language = try options.loadPrepared(int8Head: int8Head)
        let model = language.model
        let tokens = try PromptBuilder(model: model).tokens(for: prompt, raw: raw)
        var decoder = model.tokenizer.makeStreamingDecoder()
        let clock = ContinuousClock()
        let start = clock.now
        var firstToken: ContinuousClock.Instant?
        let result = try language.generate(prompt: tokens, maxTokens: maxTokens, sampling: sampling.parameters) {
            token in
            firstToken = firstToken ?? clock.now
            if !json { writeOutput(decoder.append(token)) }
            return true
        }
        if stats, let firstToken {
            // The first token comes with the prompt's forward pass; the rest are one decode step each.
            let prompt = firstToken - start
            let decode = clock.now - firstToken
            let seconds = Double(decode.components.seconds) + Double(decode.components.attoseconds) * 1e-18
            let rate = result.tokens.count > 1 ? Double(result.tokens.count - 1) / seconds : 0
            writeError(
                "onebit: \(language.deviceDescription): prompt \(tokens.count) tokens in \(prompt), "
                    + "\(result.tokens.count - 1) more tokens at \(Int(rate.rounded())) tokens/s\n")
        }
        if json {
            let object: JSONValue = .object([
                "token_ids": .array((result.tokens + (result.stopToken.map { [$0] } ?? [])).map { .integer($0) }),
                "text": .string(model.tokenizer.decode(result.tokens)),
            ])
            print(object.jsonText)
        } else {
            writeOutput(decoder.flush() + "\n")
        }
    }
}

/// The sampling options of commands that generate.
struct SamplingOptions: ParsableArguments {
    @Option(help: "Sampling temperature; 0 always picks the most likely token.")
    var temperature: Float = 0.7

    @Option(help: "Sample only among the K most likely tokens (0: all).")
    var topK = 40

    @Option(help: "Sample only among the most likely tokens whose probabilities add up to P.")
    var topP: Float = 0.95

    @Option(help: "Drop tokens less likely than this fraction of the most likely one.")
    var minP: Float = 0.05

    @Option(help: "Penalty for tokens already in the text (1: none).")
    var repetitionPenalty: Float = 1

    @Option(help: "Random seed; the same seed and prompt give the same output. Random when absent.")
    var seed: UInt64?

    var parameters: SamplingParameters {
        SamplingParameters(
            temperature: temperature, topK: topK, topP: topP, minP: minP, repetitionPenalty: repetitionPenalty,
            seed: seed ?? UInt64.random(in: 0...UInt64.max))
    }

    func validate() throws {
        do {
            try parameters.validate()
        } catch {
            throw ValidationError("--" + String(error.description.map { $0 == "_" ? "-" : $0 }))
        }
    }
}
