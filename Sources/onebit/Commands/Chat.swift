import ArgumentParser
import OnebitEngine
import OnebitModel

/// `onebit chat`: a conversation in the terminal.
struct Chat: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Talk with the model in the terminal.",
        discussion: """
            Each line you type is a user message; the whole conversation goes through the model's chat template \
            and the reply streams back. Type /reset to start over and /exit (or end the input) to leave.
            """)

    @OptionGroup var options: ModelOptions
    @OptionGroup var sampling: SamplingOptions

    @Option(help: "A system message that opens the conversation.")
    var system: String?

    @Option(help: "Most tokens per reply.")
    var maxTokens = 256

    func validate() throws {
        guard maxTokens > 0 else { throw ValidationError("--max-tokens must be at least 1") }
        try sampling.validate()
    }

    func run() throws {
        let language = try options.loadPrepared()
        let model = language.model
        let prompts = PromptBuilder(model: model)
        let opening: [JSONValue] = system.map { [.object(["role": .string("system"), "content": .string($0)])] } ?? []
        var messages = opening
        var parameters = sampling.parameters
        writeError("onebit: chatting with \(model.origin) on \(language.deviceDescription); /reset, /exit\n")
        while true {
            writeOutput("> ")
            guard let line = readLine() else { break }
            let text = line.trimmingSpaces
            if text.isEmpty { continue }
            if text == "/exit" { break }
            if text == "/reset" {
                messages = opening
                continue
            }
            messages.append(.object(["role": .string("user"), "content": .string(text)]))
            var tokens = model.tokenizer.encode(
                try prompts.render(messages, addGenerationPrompt: true), addSpecialTokens: false)
            // Keep the conversation inside the context: drop the oldest turns, never the system message.
            while tokens.count + maxTokens > language.contextLength, messages.count > opening.count + 1 {
                messages.remove(at: opening.count)
                tokens = model.tokenizer.encode(
                    try prompts.render(messages, addGenerationPrompt: true), addSpecialTokens: false)
            }
            var decoder = model.tokenizer.makeStreamingDecoder()
            let result = try language.generate(
                prompt: tokens, maxTokens: min(maxTokens, max(1, language.contextLength - tokens.count)),
                sampling: parameters
            ) { token in
                writeOutput(decoder.append(token))
                return true
            }
            writeOutput(decoder.flush() + "\n")
            messages.append(
                .object(["role": .string("assistant"), "content": .string(model.tokenizer.decode(result.tokens))]))
            // A new seed per reply: the same seed would make every reply to the same line identical.
            parameters.seed &+= 1
        }
    }
}

extension String {
    /// The string without leading and trailing spaces and newlines.
    fileprivate var trimmingSpaces: String {
        var view = Substring(self)
        while view.first?.isWhitespace == true { view.removeFirst() }
        while view.last?.isWhitespace == true { view.removeLast() }
        return String(view)
    }
}
