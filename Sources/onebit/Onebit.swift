import ArgumentParser

/// The `onebit` command line.
@main
struct Onebit: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run ternary (1.58-bit) BitNet language models.",
        subcommands: [
            Say.self, Score.self, Perplexity.self, Tokenize.self, Detokenize.self, RenderTemplate.self, Info.self,
            Bench.self, SelfTest.self, Chat.self, Doctor.self,
            Serve.self, MCPCommand.self, Specialists.self,
        ]
    )
}
