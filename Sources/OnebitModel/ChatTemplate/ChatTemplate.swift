// PLACEHOLDER: replaced by the Jinja-subset renderer (issue 3). Only the public API shape is fixed here.

public struct TemplateError: Error, CustomStringConvertible, Equatable {
    public var message: String
    public var line: Int
    public var column: Int
    public var description: String { "chat template error at \(line):\(column): \(message)" }
}

public struct ChatTemplate: Sendable {
    public let source: String

    public init(source: String) throws(TemplateError) { self.source = source }

    public static func resolved(from source: String?) throws(TemplateError) -> ChatTemplate {
        try ChatTemplate(source: source ?? "")
    }

    public func render(
        messages: [JSONValue], addGenerationPrompt: Bool, bosToken: String, eosToken: String,
        tools: [JSONValue]? = nil, extraContext: [String: JSONValue] = [:]
    ) throws(TemplateError) -> String {
        throw TemplateError(message: "not implemented", line: 0, column: 0)
    }
}
