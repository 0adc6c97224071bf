import ArgumentParser
import OnebitModel

/// `onebit template`: the prompt the chat template renders for a message list.
struct RenderTemplate: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "template",
        abstract: "Print the prompt the model's chat template renders for a JSON list of messages.",
        discussion: "Only the rendered text goes to standard output, byte for byte, with no newline added.")

    @OptionGroup var options: ModelOptions

    @Option(help: "A JSON file holding a list of messages ({\"role\": ..., \"content\": ...}).")
    var messages: String

    @Flag(help: "Do not end the prompt with the assistant's turn header.")
    var noGenerationPrompt = false

    func run() throws {
        let model = try options.load()
        let list: [JSONValue]
        do {
            guard let array = try JSONValue(parsing: TextFile.read(messages)).arrayValue else {
                throw ValidationError("\(messages) must hold a JSON array of messages")
            }
            list = array
        } catch let error as JSONError {
            throw ValidationError("\(messages): \(error)")
        }
        for (i, message) in list.enumerated() where message["role"]?.stringValue == nil {
            throw ValidationError("message \(i) in \(messages) has no string \"role\"")
        }
        writeOutput(try PromptBuilder(model: model).render(list, addGenerationPrompt: !noGenerationPrompt))
    }
}
