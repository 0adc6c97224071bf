import OnebitModel

/// Turns command-line prompts into token ids the way the model expects them.
struct PromptBuilder {
    let model: LoadedModel

    /// `raw`: the text with the tokenizer's special tokens (BOS). Otherwise one user message through the chat
    /// template; the rendered prompt already holds BOS, so no special tokens are added again.
    func tokens(for prompt: String, raw: Bool) throws -> [Int] {
        if raw { return model.tokenizer.encode(prompt, addSpecialTokens: true) }
        let message: JSONValue = .object(["role": .string("user"), "content": .string(prompt)])
        let rendered = try render([message], addGenerationPrompt: true)
        return model.tokenizer.encode(rendered, addSpecialTokens: false)
    }

    /// The chat template applied to `messages`.
    func render(_ messages: [JSONValue], addGenerationPrompt: Bool) throws -> String {
        try model.chatTemplate.render(
            messages: messages, addGenerationPrompt: addGenerationPrompt,
            bosToken: model.tokenizer.bosToken ?? "", eosToken: model.tokenizer.eosToken ?? "")
    }
}
