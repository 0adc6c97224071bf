import Testing

@testable import OnebitModel

/// The hand-written pattern scanners against the pieces `tokenizers` (Oniguruma) cut a fuzz corpus into.
@Suite struct TokenizerPreTokenizerTests {
    @Test(arguments: ["llama3", "qwen2", "gpt2"])
    func scannerMatchesReferenceRegex(name: String) throws {
        let fixture = try #require(try TokenizerFixtures.json("pretokenizer.cases.json")[name])
        let pattern = try #require(PreTokenizerPattern(text: fixture["pattern"]?.stringValue ?? ""))
        let cases = fixture["cases"]?.arrayValue ?? []
        var failures: [String] = []
        for entry in cases {
            let text = Array((entry["text"]?.stringValue ?? "").unicodeScalars)
            let expected = (entry["pieces"]?.arrayValue ?? []).map { Array(($0.stringValue ?? "").unicodeScalars) }
            let pieces = pattern.matches(in: text).map { Array(text[$0]) }
            if pieces != expected {
                failures.append("\(String(String.UnicodeScalarView(text)).debugDescription)")
            }
        }
        #expect(cases.count == 500)
        #expect(failures.isEmpty, "\(name): \(failures.count) of \(cases.count) differ, e.g. \(failures.prefix(5))")
    }

    @Test func unknownPatternIsNotRecognised() {
        #expect(PreTokenizerPattern(text: #"\s+"#) == nil)
    }
}
