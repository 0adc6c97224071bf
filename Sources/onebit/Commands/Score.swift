import ArgumentParser
import OnebitEngine
import OnebitModel

/// `onebit score`: teacher-forced log-probabilities of a text or token sequence.
struct Score: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print the log-probability of every token of a text given the tokens before it.")

    @OptionGroup var options: ModelOptions

    @Option(help: "Text to score; BOS is prepended when the tokenizer adds one.")
    var text: String?

    @Option(name: .customLong("token-ids"), help: "Comma-separated token ids to score as they are.")
    var tokenIDs: String?

    @Flag(help: "Print {\"token_ids\": [...], \"token_logprobs\": [null, ...]}.")
    var json = false

    func validate() throws {
        guard (text == nil) != (tokenIDs == nil) else {
            throw ValidationError("give exactly one of --text and --token-ids")
        }
        if let tokenIDs { _ = try TokenIDList.parse(tokenIDs) }
    }

    func run() throws {
        let language = try options.loadPrepared()
        let model = language.model
        let tokens = try text.map { model.tokenizer.encode($0, addSpecialTokens: true) } ?? TokenIDList.parse(tokenIDs!)
        let logprobs = try language.score(tokens)
        if json {
            let object: JSONValue = .object([
                "token_ids": .array(tokens.map { .integer($0) }),
                "token_logprobs": .array(logprobs.map { $0.map { .number($0) } ?? .null }),
            ])
            print(object.jsonText)
            return
        }
        for (token, logprob) in zip(tokens, logprobs) {
            let piece = model.tokenizer.decode([token])
            print("\(token)\t\(logprob.map { String($0) } ?? "-")\t\(JSONValue.string(piece).jsonText)")
        }
    }
}

/// Parses `1,2,3` lists of token ids.
enum TokenIDList {
    static func parse(_ text: String) throws -> [Int] {
        let parts = text.split(separator: ",", omittingEmptySubsequences: false)
        var ids: [Int] = []
        for part in parts {
            let trimmed = part.trimmingCharacters(in: " ")
            guard let id = Int(trimmed), id >= 0 else {
                throw ValidationError("'\(trimmed)' is not a token id; expected comma-separated integers like 1,2,3")
            }
            ids.append(id)
        }
        guard !ids.isEmpty else { throw ValidationError("no token ids given") }
        return ids
    }
}

extension Substring {
    func trimmingCharacters(in set: Character) -> Substring {
        var s = self
        while s.first == set { s.removeFirst() }
        while s.last == set { s.removeLast() }
        return s
    }
}
