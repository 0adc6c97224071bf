import OnebitEngine
import OnebitModel

/// The two OpenAI completion families; they differ only in the JSON they are wrapped in.
enum CompletionKind: Sendable {
    /// `/v1/chat/completions`: `chat.completion` and `chat.completion.chunk` objects.
    case chat
    /// `/v1/completions`: `text_completion` objects.
    case text
}

/// Builds OpenAI response objects for one completion.
struct ResponseEncoder: Sendable {
    let kind: CompletionKind
    /// `chatcmpl-...` or `cmpl-...`.
    let id: String
    /// Unix seconds.
    let created: Int
    let model: String
    let tokenizer: Tokenizer

    /// A whole non-streamed completion.
    func completion(text: String, logprobs: [GeneratedToken]?, finishReason: String, usage: GenerationUsage)
        -> JSONValue
    {
        var choice: [(String, JSONValue)] = [("index", .integer(0))]
        switch kind {
        case .chat:
            choice.append(("message", .object(["role": .string("assistant"), "content": .string(text)])))
        case .text:
            choice.insert(("text", .string(text)), at: 0)
        }
        choice.append(("logprobs", logprobs.map(encodeLogprobs) ?? .null))
        choice.append(("finish_reason", .string(finishReason)))
        return .object([
            "id": .string(id), "object": .string(kind == .chat ? "chat.completion" : "text_completion"),
            "created": .integer(created), "model": .string(model), "choices": .array([object(choice)]),
            "usage": Self.usage(usage),
        ])
    }

    /// A streamed chunk with one choice: `role` goes in the first chat delta only, `finishReason` in the last.
    func chunk(text: String, role: Bool = false, logprobs: [GeneratedToken]?, finishReason: String?, usage: Bool)
        -> JSONValue
    {
        var choice: [(String, JSONValue)] = [("index", .integer(0))]
        switch kind {
        case .chat:
            var delta: [(String, JSONValue)] = []
            if role { delta.append(("role", .string("assistant"))) }
            if !text.isEmpty || role { delta.append(("content", .string(text))) }
            choice.append(("delta", object(delta)))
        case .text:
            choice.insert(("text", .string(text)), at: 0)
        }
        choice.append(("logprobs", logprobs.map(encodeLogprobs) ?? .null))
        choice.append(("finish_reason", finishReason.map(JSONValue.string) ?? .null))
        var members: [(String, JSONValue)] = header(chunk: true) + [("choices", .array([object(choice)]))]
        if usage { members.append(("usage", .null)) }
        return object(members)
    }

    /// The extra last chunk of `stream_options.include_usage`: empty `choices`, then the counts.
    func usageChunk(_ usage: GenerationUsage) -> JSONValue {
        object(header(chunk: true) + [("choices", .array([])), ("usage", Self.usage(usage))])
    }

    static func usage(_ usage: GenerationUsage) -> JSONValue {
        .object([
            "prompt_tokens": .integer(usage.promptTokens), "completion_tokens": .integer(usage.completionTokens),
            "total_tokens": .integer(usage.promptTokens + usage.completionTokens),
        ])
    }

    private func header(chunk: Bool) -> [(String, JSONValue)] {
        let object = kind == .chat ? (chunk ? "chat.completion.chunk" : "chat.completion") : "text_completion"
        return [
            ("id", .string(id)), ("object", .string(object)), ("created", .integer(created)),
            ("model", .string(model)),
        ]
    }

    /// An object keeping the members' order; a repeated key (two tokens that decode alike) keeps its first value.
    private func object(_ members: [(String, JSONValue)]) -> JSONValue {
        .object(.init(members, uniquingKeysWith: { first, _ in first }))
    }

    /// Chat: `{"content": [{token, logprob, bytes, top_logprobs}]}`; text: the legacy parallel arrays.
    private func encodeLogprobs(_ tokens: [GeneratedToken]) -> JSONValue {
        switch kind {
        case .chat:
            let entry = { (id: Int, logprob: Float) -> [(String, JSONValue)] in
                let text = tokenizer.decode([id])
                return [
                    ("token", .string(text)), ("logprob", .number(Double(logprob))),
                    ("bytes", .array(text.utf8.map { .integer(Int($0)) })),
                ]
            }
            return .object([
                "content": .array(
                    tokens.map { token in
                        object(
                            entry(token.id, token.logprob ?? 0)
                                + [("top_logprobs", .array(token.topLogprobs.map { object(entry($0.id, $0.logprob)) }))]
                        )
                    })
            ])
        case .text:
            var offset = 0
            var offsets: [JSONValue] = []
            for token in tokens {
                offsets.append(.integer(offset))
                offset += tokenizer.decode([token.id]).utf8.count
            }
            return .object([
                "tokens": .array(tokens.map { .string(tokenizer.decode([$0.id])) }),
                "token_logprobs": .array(tokens.map { .number(Double($0.logprob ?? 0)) }),
                "top_logprobs": .array(
                    tokens.map { token in
                        object(token.topLogprobs.map { (tokenizer.decode([$0.id]), .number(Double($0.logprob))) })
                    }),
                "text_offset": .array(offsets),
            ])
        }
    }
}

/// Server-sent events as OpenAI streams them: `data: <json>` frames and a closing `data: [DONE]`.
enum ServerSentEvents {
    /// One frame.
    static func frame(_ value: JSONValue) -> String { "data: \(value.jsonText)\n\n" }
    /// The frame that ends a stream.
    static let done = "data: [DONE]\n\n"
}
