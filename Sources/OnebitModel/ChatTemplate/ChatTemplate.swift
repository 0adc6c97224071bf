/// Why a chat template could not be parsed or rendered, and where in the template source.
public struct TemplateError: Error, CustomStringConvertible, Equatable {
    /// What went wrong; for `raise_exception(msg)` exactly `msg`.
    public var message: String
    /// 1-based line in the template source (after `\r\n` and `\r` become `\n`).
    public var line: Int
    /// 1-based column in that line, counted in Unicode scalars.
    public var column: Int

    /// Creates an error at a place in the template.
    public init(message: String, line: Int, column: Int) {
        self.message = message
        self.line = line
        self.column = column
    }

    /// The message with its place, e.g. `chat template error at 3:14: unknown tag 'foo'`.
    public var description: String { "chat template error at \(line):\(column): \(message)" }
}

/// A Hugging Face chat template (a Jinja template), parsed once and rendered per request the way transformers'
/// `apply_chat_template` renders it: `trim_blocks` and `lstrip_blocks` on, loop controls, `raise_exception`,
/// `strftime_now`, and a `tojson` that keeps non-ASCII text and key order.
public struct ChatTemplate: Sendable {
    /// The template text as given.
    public let source: String
    private let nodes: [Node]

    /// Parses `source`; constructs outside the supported Jinja subset fail here with their line and column.
    public init(source: String) throws(TemplateError) {
        self.source = source
        nodes = try TemplateParser.parse(source)
    }

    /// BitNet b1.58's training chat format, as a template: `<|begin_of_text|>System: …<|eot_id|>User: …<|eot_id|>`
    /// and `Assistant: ` to prompt a reply. Roles are capitalised and contents stripped; content-part arrays
    /// contribute their text parts.
    public static let bitNetTrainingFormat = """
        {{- bos_token -}}
        {%- for message in messages -%}
            {%- if message['content'] is string -%}
                {%- set content = message['content'] -%}
            {%- elif message['content'] is iterable and message['content'] is not mapping -%}
                {%- set parts = namespace(text='') -%}
                {%- for part in message['content'] if part is mapping and part['type'] == 'text' -%}
                    {%- set parts.text = parts.text + part['text'] -%}
                {%- endfor -%}
                {%- set content = parts.text -%}
            {%- else -%}
                {%- set content = '' -%}
            {%- endif -%}
            {{- message['role'] | capitalize + ': ' + content | trim + '<|eot_id|>' -}}
        {%- endfor -%}
        {%- if add_generation_prompt -%}
            {{- 'Assistant: ' -}}
        {%- endif -%}
        """

    /// The template to use for a checkpoint: its own, or BitNet's training format when it has none or ships the
    /// known-wrong bitnet.cpp one (the "BITNETAssistant" template)
    public static func resolved(from source: String?) throws(TemplateError) -> ChatTemplate {
        guard let source, !source.allSatisfy(\.isWhitespace), !source.contains("BITNETAssistant") else {
            return try ChatTemplate(source: bitNetTrainingFormat)
        }
        return try ChatTemplate(source: source)
    }

    /// Renders a conversation. `messages` are JSON objects (`role`, `content` as text or content parts,
    /// `tool_calls`, ...); `tools` is `None` to the template when nil; `extraContext` adds variables (such as
    /// `date_string`) and may override `bos_token` and `eos_token`, as keyword arguments do in transformers.
    public func render(
        messages: [JSONValue], addGenerationPrompt: Bool, bosToken: String, eosToken: String,
        tools: [JSONValue]? = nil, extraContext: [String: JSONValue] = [:]
    ) throws(TemplateError) -> String {
        var context: [String: TemplateValue] = ["bos_token": .string(bosToken), "eos_token": .string(eosToken)]
        for (name, value) in extraContext { context[name] = TemplateValue(value) }
        context["messages"] = .list(messages.map(TemplateValue.init))
        context["tools"] = tools.map { .list($0.map(TemplateValue.init)) } ?? TemplateValue.none
        context["documents"] = TemplateValue.none
        context["add_generation_prompt"] = .bool(addGenerationPrompt)
        return try TemplateRenderer(context: context).render(nodes)
    }
}
