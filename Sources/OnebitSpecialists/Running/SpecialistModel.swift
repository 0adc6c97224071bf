import OnebitEngine
import OnebitModel

/// The model the specialists write with: generation goes through the engine's scheduler like any request.
public struct SpecialistModel: Sendable {
    /// Where generations are submitted.
    public let scheduler: Scheduler
    /// Text to tokens and back.
    public let tokenizer: Tokenizer
    /// How the system prompt and the facts become a prompt.
    public let chatTemplate: ChatTemplate
    /// The tokens as bytes, for schema-constrained decoding (build once per model).
    public let vocabulary: TokenVocabulary

    /// Wraps a running scheduler; `vocabulary` is built from `tokenizer` when not given.
    public init(
        scheduler: Scheduler, tokenizer: Tokenizer, chatTemplate: ChatTemplate, vocabulary: TokenVocabulary? = nil
    ) {
        self.scheduler = scheduler
        self.tokenizer = tokenizer
        self.chatTemplate = chatTemplate
        self.vocabulary = vocabulary ?? TokenVocabulary(tokenizer: tokenizer)
    }

    /// A JSON value of `schema`, written by the model after `systemPrompt` and `facts`; `nil` when the model ran out
    /// of room before the value was complete. Long facts are shortened until the prompt leaves room to write.
    func write(
        schema: JSONValue, systemPrompt: String, facts: String, maxTokens: Int, seed: UInt64
    ) async throws(SpecialistError) -> JSONValue? {
        let grammar: JSONGrammar
        do {
            grammar = try JSONGrammar(schema: schema, strict: true)
        } catch {
            throw .invalidOutput(path: "output", reason: error.description)
        }
        let context = scheduler.configuration.contextLength
        let generated = max(8, min(maxTokens, context / 2))
        var facts = facts
        var prompt: [Int] = []
        for _ in 0..<8 {
            prompt = try render(systemPrompt: systemPrompt, facts: facts)
            if prompt.count + generated < context || facts.isEmpty { break }
            // Cut the facts in proportion to the excess and try again; the tokenizer is not linear in characters.
            let keep = max(0, facts.count * (context - generated - 1) / max(1, prompt.count) - 8)
            facts = String(facts.prefix(keep))
        }
        guard prompt.count + 1 < context else {
            throw .generationFailed(reason: "the system prompt alone fills the model's context of \(context) tokens")
        }
        let request = GenerationRequest(
            prompt: prompt, maxTokens: min(generated, context - prompt.count - 1),
            sampling: SamplingParameters(temperature: 0.7, topK: 40, repetitionPenalty: 1.1, seed: seed),
            constraint: TokenConstraint(grammar: grammar, vocabulary: vocabulary))
        let stream: GenerationStream
        do {
            stream = try scheduler.submit(request)
        } catch {
            throw .generationFailed(reason: error.description)
        }
        var tokens: [Int] = []
        for await event in stream {
            switch event {
            case .token(let token):
                tokens.append(token.id)
            case .finished(let reason, _):
                guard reason == .stop else { return nil }
                return try? JSONValue(parsing: tokenizer.decode(tokens))
            case .failed(let message):
                throw .generationFailed(reason: message)
            }
        }
        return nil
    }

    private func render(systemPrompt: String, facts: String) throws(SpecialistError) -> [Int] {
        let messages: [JSONValue] = [
            .object(["role": .string("system"), "content": .string(systemPrompt)]),
            .object(["role": .string("user"), "content": .string(facts)]),
        ]
        do {
            let text = try chatTemplate.render(
                messages: messages, addGenerationPrompt: true, bosToken: tokenizer.bosToken ?? "",
                eosToken: tokenizer.eosToken ?? "")
            return tokenizer.encode(text, addSpecialTokens: false)
        } catch {
            throw .generationFailed(reason: "the chat template failed: \(error.description)")
        }
    }
}
