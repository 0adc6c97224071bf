import Testing

@testable import OnebitModel

/// Prints how long encoding takes; speed is reported, never asserted, so a busy machine cannot fail the suite.
@Suite struct TokenizerSpeedTests {
    @Test func encodeHundredKilobytes() throws {
        let tokenizer = try TokenizerFixtures.tokenizer("llama3")
        let cases = try TokenizerFixtures.json("llama3.cases.json")["encode"]?.arrayValue ?? []
        let strings = cases.compactMap { $0["text"]?.stringValue }
        var text = ""
        var index = 0
        while text.utf8.count < 100_000 {
            text += strings[index % strings.count] + (index % 7 == 0 ? "\n" : " ")
            index += 1
        }
        let clock = ContinuousClock()
        var ids: [Int] = []
        let cold = clock.measure { ids = tokenizer.encode(text) }
        let warm = clock.measure { ids = tokenizer.encode(text) }
        #expect(ids.count > 10_000)
        print("encoded \(text.utf8.count) bytes into \(ids.count) tokens: \(cold) cold cache, \(warm) warm")
    }

    /// Loads a Llama-3 sized tokenizer.json named by `ONEBIT_LARGE_TOKENIZER_JSON`
    /// (`tools/make_tokenizer_fixtures.py --synthetic-large PATH` writes one); skipped when unset.
    @Test(.enabled(if: getenv("ONEBIT_LARGE_TOKENIZER_JSON") != nil))
    func loadLargeTokenizerJSON() throws {
        let path = String(cString: getenv("ONEBIT_LARGE_TOKENIZER_JSON"))
        guard let file = fopen(path, "rb") else { throw TokenizerError.invalidJSON("cannot open \(path)") }
        defer { fclose(file) }
        fseek(file, 0, SEEK_END)
        var bytes = [UInt8](repeating: 0, count: ftell(file))
        fseek(file, 0, SEEK_SET)
        #expect(fread(&bytes, 1, bytes.count, file) == bytes.count)
        let clock = ContinuousClock()
        let parse = try clock.measure { _ = try JSONValue(parsing: bytes) }
        var tokenizer: Tokenizer?
        let load = try clock.measure {
            tokenizer = try Tokenizer(source: .huggingFace(tokenizerJSON: bytes, tokenizerConfig: nil))
        }
        #expect(tokenizer?.vocabularySize == 128_256)
        print("\(bytes.count) bytes: JSON parse \(parse), whole tokenizer load \(load)")
    }
}

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif
