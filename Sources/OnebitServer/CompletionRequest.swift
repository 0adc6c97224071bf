import OnebitEngine
import OnebitModel

/// The generation fields `/v1/chat/completions` and `/v1/completions` share, validated.
struct GenerationOptions {
    /// The `model` field, when sent.
    var model: String?
    /// `max_tokens` or `max_completion_tokens`; `nil` generates until the context is full.
    var maxTokens: Int?
    var sampling: SamplingParameters
    var presencePenalty: Float
    var frequencyPenalty: Float
    var logitBias: [Int: Float]
    var stop: [String]
    var stream: Bool
    var includeUsage: Bool
    /// The grammar `response_format` asks for; `nil` for free text.
    var grammar: JSONGrammar?

    /// Reads the shared fields; `n` other than 1 and values out of range are 400s naming the field.
    init(_ fields: RequestFields, vocabularySize: Int) throws(APIError) {
        model = try fields.string("model")
        // `??` takes an autoclosure whose error type is untyped, so each field is read on its own.
        let maxCompletionTokens = try fields.integer("max_completion_tokens", in: 1...Int.max)
        let legacyMaxTokens = try fields.integer("max_tokens", in: 1...Int.max)
        maxTokens = maxCompletionTokens ?? legacyMaxTokens
        if let n = try fields.integer("n"), n != 1 {
            throw .invalid("n", "only n = 1 is supported; send one request per completion")
        }
        let seed = try fields.integer("seed").map { UInt64(bitPattern: Int64($0)) }
        let repetitionPenalty = try fields.number("repetition_penalty", in: 0...100)
        let repeatPenalty = try fields.number("repeat_penalty", in: 0...100)
        sampling = SamplingParameters(
            temperature: Float(try fields.number("temperature", in: 0...2) ?? 1),
            topK: try fields.integer("top_k", in: 0...Int.max) ?? 0,
            topP: Float(try fields.number("top_p", in: 0...1) ?? 1),
            minP: Float(try fields.number("min_p", in: 0...1) ?? 0),
            repetitionPenalty: Float(repetitionPenalty ?? repeatPenalty ?? 1),
            seed: seed ?? UInt64.random(in: 0...UInt64.max))
        do {
            try sampling.validate()
        } catch {
            guard case .outOfRange(let parameter, _) = error else { throw .invalid("", error.description) }
            throw .invalid(parameter, error.description)
        }
        presencePenalty = Float(try fields.number("presence_penalty", in: -2...2) ?? 0)
        frequencyPenalty = Float(try fields.number("frequency_penalty", in: -2...2) ?? 0)
        logitBias = try Self.logitBias(fields, vocabularySize: vocabularySize)
        stop = try Self.stop(fields)
        stream = try fields.bool("stream") ?? false
        includeUsage = try fields.object("stream_options")?.bool("include_usage") ?? false
        _ = try fields.string("user")
        grammar = try Self.grammar(fields)
    }

    /// The grammar of `response_format`: `text` (none), `json_object`, or `json_schema` with
    /// `{"name", "schema", "strict"}`; a schema the engine cannot enforce is a 400 naming the keyword.
    private static func grammar(_ fields: RequestFields) throws(APIError) -> JSONGrammar? {
        guard let format = try fields.object("response_format") else { return nil }
        switch try format.string("type") {
        case nil:
            throw .invalid("response_format.type", "response_format.type is required: text, json_object or json_schema")
        case "text":
            return nil
        case "json_object":
            return .anyObject
        case "json_schema":
            guard let described = try format.object("json_schema") else {
                throw .invalid(
                    "response_format.json_schema",
                    "response_format.json_schema is required: {\"name\", \"schema\", \"strict\"}")
            }
            _ = try described.string("name")
            let strict = try described.bool("strict") ?? false
            guard let schema = described.value("schema") else {
                throw .invalid("response_format.json_schema.schema", "response_format.json_schema.schema is required")
            }
            do {
                return try JSONGrammar(schema: schema, strict: strict)
            } catch {
                throw .invalid("response_format.json_schema.schema", error.description)
            }
        case let other?:
            throw .invalid(
                "response_format.type",
                "response_format.type \"\(other)\" is not supported; use text, json_object or json_schema")
        }
    }

    private static func logitBias(_ fields: RequestFields, vocabularySize: Int) throws(APIError) -> [Int: Float] {
        guard let bias = try fields.object("logit_bias") else { return [:] }
        var result: [Int: Float] = [:]
        for key in bias.object.keys {
            guard let id = Int(key), id >= 0, id < vocabularySize else {
                throw .invalid(
                    "logit_bias", "logit_bias keys must be token ids below \(vocabularySize); got \"\(key)\"")
            }
            result[id] = Float(try bias.number(key, in: -100...100) ?? 0)
        }
        return result
    }

    private static func stop(_ fields: RequestFields) throws(APIError) -> [String] {
        guard let value = fields.value("stop") else { return [] }
        if let single = value.stringValue { return single.isEmpty ? [] : [single] }
        guard let list = value.arrayValue else { throw fields.wrongType("stop", "a string or an array of strings") }
        guard list.count <= 16 else { throw .invalid("stop", "stop takes at most 16 strings") }
        var result: [String] = []
        for item in list {
            guard let s = item.stringValue else { throw fields.wrongType("stop", "a string or an array of strings") }
            if !s.isEmpty { result.append(s) }
        }
        return result
    }
}

/// A validated `/v1/chat/completions` request.
struct ChatCompletionRequest {
    var options: GenerationOptions
    /// The messages with `content` flattened to text, as the chat template expects.
    var messages: [JSONValue]
    /// `nil`: no log-probabilities; otherwise the number of alternatives per token (`top_logprobs`).
    var topLogprobs: Int?

    init(_ fields: RequestFields, vocabularySize: Int) throws(APIError) {
        options = try GenerationOptions(fields, vocabularySize: vocabularySize)
        guard let value = fields.value("messages") else {
            throw .invalid("messages", "messages is required: an array of {\"role\", \"content\"} objects")
        }
        guard let list = value.arrayValue else { throw fields.wrongType("messages", "an array of message objects") }
        guard !list.isEmpty else { throw .invalid("messages", "messages must hold at least one message") }
        messages = []
        for (index, message) in list.enumerated() {
            messages.append(try Self.normalized(message, at: "messages[\(index)]"))
        }
        let top = try fields.integer("top_logprobs", in: 0...20)
        topLogprobs = try fields.bool("logprobs") == true ? (top ?? 0) : nil
    }

    /// A message whose `content` is a string: content parts of type `text` are joined, `null` becomes `""`.
    static func normalized(_ message: JSONValue, at path: String) throws(APIError) -> JSONValue {
        guard case .object(var members) = message else { throw .invalid(path, "\(path) must be an object") }
        guard members["role"]?.stringValue != nil else {
            throw .invalid(path + ".role", "\(path).role must be a string (system, user, assistant or tool)")
        }
        switch members["content"] ?? .null {
        case .null: members["content"] = .string("")
        case .string: break
        case .array(let parts):
            var text = ""
            for (index, part) in parts.enumerated() {
                let partPath = "\(path).content[\(index)]"
                if let s = part.stringValue {
                    text += s
                    continue
                }
                guard part["type"]?.stringValue == "text", let s = part["text"]?.stringValue else {
                    throw .invalid(partPath, "\(partPath) must be a text part {\"type\": \"text\", \"text\": ...}")
                }
                text += s
            }
            members["content"] = .string(text)
        default:
            throw .invalid(path + ".content", "\(path).content must be a string or an array of content parts")
        }
        return .object(members)
    }
}

/// A validated `/v1/completions` request.
struct TextCompletionRequest {
    /// The prompt as text or as token ids.
    enum Prompt {
        case text(String)
        case tokens([Int])
    }

    var options: GenerationOptions
    var prompt: Prompt
    /// `nil`: no log-probabilities; otherwise the number of alternatives per token (`logprobs`).
    var topLogprobs: Int?
    /// Whether the prompt is repeated before the completion (`echo`).
    var echo: Bool

    init(_ fields: RequestFields, vocabularySize: Int) throws(APIError) {
        options = try GenerationOptions(fields, vocabularySize: vocabularySize)
        topLogprobs = try fields.integer("logprobs", in: 0...20)
        echo = try fields.bool("echo") ?? false
        let wrong = fields.wrongType("prompt", "a string, an array of token ids, or an array holding one of them")
        guard var value = fields.value("prompt") else { throw .invalid("prompt", "prompt is required") }
        if let list = value.arrayValue, list.count == 1, list[0].stringValue != nil || list[0].arrayValue != nil {
            value = list[0]
        }
        if let text = value.stringValue {
            prompt = .text(text)
        } else if let list = value.arrayValue {
            if list.contains(where: { $0.stringValue != nil || $0.arrayValue != nil }) {
                throw .invalid("prompt", "only one prompt per request is supported; send one request per prompt")
            }
            var ids: [Int] = []
            for item in list {
                guard let id = item.intValue else { throw wrong }
                guard id >= 0, id < vocabularySize else {
                    throw .invalid("prompt", "token id \(id) is outside the vocabulary (0..<\(vocabularySize))")
                }
                ids.append(id)
            }
            prompt = .tokens(ids)
        } else {
            throw wrong
        }
    }
}

extension GenerationOptions {
    /// The generation fields of Ollama's `/api/chat` and `/api/generate`: `model`, `stream` (true unless sent as
    /// false), `format` (`"json"` or a JSON schema) and the sampler's settings under `options` (`temperature`,
    /// `top_k`, `top_p`, `min_p`, `num_predict`, `stop`, `seed`, `repeat_penalty`, `presence_penalty`,
    /// `frequency_penalty`), whose defaults are the ones Ollama documents for a model file without parameters
    /// (temperature 0.8, top_k 40, top_p 0.9, repeat_penalty 1.1). The rest of `options` (`num_ctx`, `num_thread`,
    /// ...) sets up Ollama's own runner and is ignored.
    init(ollama fields: RequestFields, vocabularySize: Int) throws(APIError) {
        let options = try fields.object("options") ?? RequestFields(members: [:], path: "options.")
        model = try fields.string("model")
        // num_predict: -1 (Ollama's default) generates until the context is full, and so does -2 ("fill the context").
        let predict = try options.integer("num_predict", in: -2...Int.max)
        maxTokens = predict.flatMap { $0 > 0 ? $0 : nil }
        if predict == 0 { throw .invalid("options.num_predict", "options.num_predict must be -1, -2 or at least 1") }
        let seed = try options.integer("seed").map { UInt64(bitPattern: Int64($0)) }
        sampling = SamplingParameters(
            temperature: Float(try options.number("temperature", in: 0...2) ?? 0.8),
            topK: try options.integer("top_k", in: 0...Int.max) ?? 40,
            topP: Float(try options.number("top_p", in: 0...1) ?? 0.9),
            minP: Float(try options.number("min_p", in: 0...1) ?? 0),
            repetitionPenalty: Float(try options.number("repeat_penalty", in: 0...100) ?? 1.1),
            seed: seed ?? UInt64.random(in: 0...UInt64.max))
        do {
            try sampling.validate()
        } catch {
            guard case .outOfRange(let parameter, _) = error else { throw .invalid("options", error.description) }
            throw .invalid("options." + parameter, error.description)
        }
        presencePenalty = Float(try options.number("presence_penalty", in: -2...2) ?? 0)
        frequencyPenalty = Float(try options.number("frequency_penalty", in: -2...2) ?? 0)
        logitBias = [:]
        stop = try Self.stop(options)
        stream = try fields.bool("stream") ?? true
        includeUsage = false
        grammar = try Self.ollamaFormat(fields)
    }

    /// Ollama's `format`: `"json"` for any JSON object, or a JSON schema, held to strictly.
    private static func ollamaFormat(_ fields: RequestFields) throws(APIError) -> JSONGrammar? {
        switch fields.value("format") {
        case nil:
            return nil
        case .string(let name):
            if name.isEmpty { return nil }
            guard name == "json" else {
                throw .invalid("format", "format must be \"json\" or a JSON schema object; got \"\(name)\"")
            }
            return .anyObject
        case let schema? where schema.objectValue != nil:
            do {
                return try JSONGrammar(schema: schema, strict: true)
            } catch {
                throw .invalid("format", error.description)
            }
        default:
            throw fields.wrongType("format", "\"json\" or a JSON schema object")
        }
    }
}
