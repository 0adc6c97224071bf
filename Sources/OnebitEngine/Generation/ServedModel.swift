import OnebitModel

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// The model as the HTTP API and the MCP tools present it.
public struct ServedModel: Sendable {
    /// The id clients name in `model` (and `/v1/models` lists).
    public var id: String
    /// Unix seconds when the server loaded it.
    public var created: Int
    /// Text to token ids and back.
    public var tokenizer: Tokenizer
    /// How chat messages become a prompt.
    public var chatTemplate: ChatTemplate
    /// What is loaded, for people: file format, where it runs, context (shown by the web page).
    public var summary: String
    /// The tokenizer's tokens as a byte trie, for `response_format` (built once here, shared by every request).
    public let vocabulary: TokenVocabulary

    /// Describes the served model; `created` defaults to now.
    public init(
        id: String, tokenizer: Tokenizer, chatTemplate: ChatTemplate, summary: String = "",
        created: Int = Int(time(nil))
    ) {
        self.id = id
        self.summary = summary
        self.created = created
        self.tokenizer = tokenizer
        self.chatTemplate = chatTemplate
        vocabulary = TokenVocabulary(tokenizer: tokenizer)
    }

    /// The prompt tokens of a conversation: `messages` (`role` and text `content`) rendered by the chat template
    /// with the generation prompt appended, then tokenized (the template writes any special tokens itself).
    public func chatPrompt(_ messages: [JSONValue]) throws(TemplateError) -> [Int] {
        let rendered = try chatTemplate.render(
            messages: messages, addGenerationPrompt: true, bosToken: tokenizer.bosToken ?? "",
            eosToken: tokenizer.eosToken ?? "")
        return tokenizer.encode(rendered, addSpecialTokens: false)
    }
}
