import ArgumentParser
import OnebitEngine
import OnebitModel

/// `onebit ppl`: perplexity of a text file.
struct Perplexity: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ppl",
        abstract: "Measure the perplexity of a text file.",
        discussion: """
            The file is tokenized once, without special tokens, and scored in windows of --ctx tokens whose \
            starts advance by --stride. Each window begins with BOS when the model's tokenizer adds one; every \
            token is predicted exactly once, from BOS and the tokens of its window before it.
            """)

    @OptionGroup var options: ModelOptions

    @Option(help: "The text file.")
    var file: String

    @Option(help: "Window length in tokens (default: the smaller of 512 and the model's context).")
    var ctx: Int?

    @Option(help: "How far each window advances (default: --ctx, i.e. non-overlapping windows).")
    var stride: Int?

    @Flag(help: "Also measure with an int8 copy of the output head and report what it costs in perplexity.")
    var int8Head = false

    @Flag(help: "Print one JSON object.")
    var json = false

    func validate() throws {
        if let ctx, ctx < 2 { throw ValidationError("--ctx must be at least 2") }
        if let stride, stride < 1 { throw ValidationError("--stride must be at least 1") }
        if let ctx, let stride, stride > ctx { throw ValidationError("--stride cannot exceed --ctx") }
    }

    func run() throws {
        let model = try options.load()
        let context = ctx ?? min(512, model.config.contextLength)
        guard context <= model.config.contextLength else {
            throw ValidationError("--ctx \(context) exceeds the model's context of \(model.config.contextLength)")
        }
        let text = try TextFile.read(file)
        let tokens = model.tokenizer.encode(text, addSpecialTokens: false)
        guard tokens.count >= 2 else { throw ValidationError("\(file) holds fewer than 2 tokens") }
        let prefix = model.tokenizer.addsBOS ? model.tokenizer.bosTokenID.map { [$0] } ?? [] : []
        let status = StatusLine()
        func measure(int8Head: Bool) throws -> PerplexityResult {
            let label = int8Head ? "perplexity (int8 head)" : "perplexity"
            let result = try options.prepare(model, int8Head: int8Head).perplexity(
                tokens, prefix: prefix, context: context, stride: stride ?? context
            ) {
                status.progress(label, fraction: $0, detail: "of \(tokens.count) tokens")
            }
            status.clear()
            return result
        }
        let result = try measure(int8Head: false)
        let int8Result = int8Head ? try measure(int8Head: true) : nil
        let cost = int8Result.map { $0.perplexity / result.perplexity - 1 }
        if json {
            var object: JSONValue = .object([
                "perplexity": .number(result.perplexity),
                "mean_nll": .number(result.meanNegativeLogLikelihood),
                "tokens": .integer(result.tokenCount),
                "ctx": .integer(context), "stride": .integer(stride ?? context),
            ])
            if let int8Result, let cost, case .object(var members) = object {
                members["int8_head_perplexity"] = .number(int8Result.perplexity)
                members["int8_head_relative_cost"] = .number(cost)
                object = .object(members)
            }
            print(object.jsonText)
        } else {
            print(
                "perplexity \(result.perplexity) over \(result.tokenCount) tokens (ctx \(context), stride \(stride ?? context))"
            )
            if let int8Result, let cost {
                let percent = (cost * 10000).rounded() / 100
                print("int8 head: perplexity \(int8Result.perplexity) (\(percent >= 0 ? "+" : "")\(percent)%)")
            }
        }
    }
}
