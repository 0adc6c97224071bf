import ArgumentParser
import OnebitModel

/// `onebit tokenize`: text to token ids.
struct Tokenize: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print the token ids of a text (with the special tokens the tokenizer adds, like BOS).")

    @OptionGroup var options: ModelOptions

    @Flag(help: "Print {\"token_ids\": [...]}.")
    var json = false

    @Argument(help: "The text.")
    var text: String

    func run() throws {
        let model = try options.load()
        let ids = model.tokenizer.encode(text)
        if json {
            print(JSONValue.object(["token_ids": .array(ids.map { .integer($0) })]).jsonText)
        } else {
            for id in ids { print("\(id)\t\(JSONValue.string(model.tokenizer.tokenText(id) ?? "").jsonText)") }
        }
    }
}

/// `onebit detokenize`: token ids to text.
struct Detokenize: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Print the text of comma-separated token ids.")

    @OptionGroup var options: ModelOptions

    @Flag(help: "Leave out special tokens such as BOS.")
    var skipSpecialTokens = false

    @Argument(help: "Token ids, like 128000,9906,1917.")
    var tokenIDs: String

    func run() throws {
        let model = try options.load()
        let ids = try TokenIDList.parse(tokenIDs)
        if let bad = ids.first(where: { $0 >= model.config.vocabSize }) {
            throw ValidationError("token id \(bad) is outside the vocabulary (0..<\(model.config.vocabSize))")
        }
        print(model.tokenizer.decode(ids, skipSpecialTokens: skipSpecialTokens))
    }
}
