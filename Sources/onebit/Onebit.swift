import ArgumentParser

@main
struct Onebit: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Run ternary (1.58-bit) language models.")
}
