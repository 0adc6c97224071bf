import Testing

@testable import OnebitModel

/// Replays what Hugging Face `tokenizers` returned for every fixture string and compares exactly.
@Suite struct TokenizerParityTests {
    /// Collects mismatches so one failing fixture reports a count and a few examples, not hundreds of lines.
    private struct Mismatches {
        var count = 0
        var examples: [String] = []

        mutating func check<T: Equatable>(_ got: T, _ expected: T, _ what: @autoclosure () -> String) {
            guard got != expected else { return }
            count += 1
            if examples.count < 5 { examples.append("\(what()): got \(got), expected \(expected)") }
        }
    }

    /// Tokenizers whose decode gives back the exact input: no normalizer, prefix space or stripping added tokens.
    private static let roundTrips: Set<String> = ["llama3", "gpt2", "qwen2_pairs"]

    private func streamed(_ tokenizer: Tokenizer, _ ids: [Int], skipSpecialTokens: Bool = false) -> String {
        var decoder = tokenizer.makeStreamingDecoder(skipSpecialTokens: skipSpecialTokens)
        var text = ""
        for id in ids { text += decoder.append(id) }
        return text + decoder.flush()
    }

    @Test(arguments: TokenizerFixtures.names)
    func encodeAndDecodeMatchReference(name: String) throws {
        let tokenizer = try TokenizerFixtures.tokenizer(name)
        let fixture = try TokenizerFixtures.json("\(name).cases.json")
        #expect(tokenizer.vocabularySize == fixture["vocabulary_size"]?.intValue)
        var mismatches = Mismatches()
        let cases = fixture["encode"]?.arrayValue ?? []
        for entry in cases {
            let text = entry["text"]?.stringValue ?? ""
            let ids = TokenizerFixtures.ids(entry["ids"])
            mismatches.check(tokenizer.encode(text), ids, "encode \(text.debugDescription)")
            mismatches.check(
                tokenizer.encode(text, addSpecialTokens: false), TokenizerFixtures.ids(entry["ids_no_special"]),
                "encode without special tokens \(text.debugDescription)")
            let decoded = entry["decoded"]?.stringValue ?? ""
            mismatches.check(
                tokenizer.decode(ids).unicodeScalars.elementsEqual(decoded.unicodeScalars), true,
                "decode \(ids) to \(decoded.debugDescription)")
            mismatches.check(
                tokenizer.decode(ids, skipSpecialTokens: true).unicodeScalars.elementsEqual(
                    (entry["decoded_skip_special"]?.stringValue ?? "").unicodeScalars), true,
                "decode skipping special tokens \(ids)")
            mismatches.check(
                streamed(tokenizer, ids).unicodeScalars.elementsEqual(decoded.unicodeScalars), true,
                "streamed decode \(ids)")
            if Self.roundTrips.contains(name) {
                mismatches.check(
                    tokenizer.decode(tokenizer.encode(text, addSpecialTokens: false)).unicodeScalars.elementsEqual(
                        text.unicodeScalars), true, "round trip \(text.debugDescription)")
            }
        }
        #expect(cases.count > 300)
        #expect(mismatches.count == 0, "\(name): \(mismatches.count) mismatches: \(mismatches.examples)")
        print("\(name): \(cases.count) strings compared, \(mismatches.count) mismatches")
    }

    @Test(arguments: TokenizerFixtures.names)
    func randomIDsDecodeLikeReference(name: String) throws {
        let tokenizer = try TokenizerFixtures.tokenizer(name)
        let cases = try TokenizerFixtures.json("\(name).cases.json")["decode"]?.arrayValue ?? []
        var mismatches = Mismatches()
        for entry in cases {
            let ids = TokenizerFixtures.ids(entry["ids"])
            let decoded = Array((entry["decoded"]?.stringValue ?? "").unicodeScalars)
            let skipped = Array((entry["decoded_skip_special"]?.stringValue ?? "").unicodeScalars)
            mismatches.check(Array(tokenizer.decode(ids).unicodeScalars), decoded, "decode \(ids)")
            mismatches.check(
                Array(tokenizer.decode(ids, skipSpecialTokens: true).unicodeScalars), skipped, "decode skip \(ids)")
            mismatches.check(Array(streamed(tokenizer, ids).unicodeScalars), decoded, "streamed \(ids)")
            mismatches.check(
                Array(streamed(tokenizer, ids, skipSpecialTokens: true).unicodeScalars), skipped, "streamed skip \(ids)"
            )
        }
        #expect(cases.count == 60)
        #expect(mismatches.count == 0, "\(name): \(mismatches.count) mismatches: \(mismatches.examples)")
    }

    @Test func ggufMetadataEncodesLikeTokenizerJSON() throws {
        let gguf = try Tokenizer(source: .gguf(TokenizerFixtures.ggufData("llama3.gguf.json")))
        let fixture = try TokenizerFixtures.json("llama3.cases.json")
        var mismatches = Mismatches()
        let cases = fixture["encode"]?.arrayValue ?? []
        for entry in cases {
            let text = entry["text"]?.stringValue ?? ""
            let ids = TokenizerFixtures.ids(entry["ids"])
            mismatches.check(gguf.encode(text), ids, "encode \(text.debugDescription)")
            mismatches.check(
                gguf.encode(text, addSpecialTokens: false), TokenizerFixtures.ids(entry["ids_no_special"]),
                "encode without special tokens \(text.debugDescription)")
            mismatches.check(
                Array(gguf.decode(ids, skipSpecialTokens: true).unicodeScalars),
                Array((entry["decoded_skip_special"]?.stringValue ?? "").unicodeScalars), "decode \(ids)")
        }
        #expect(mismatches.count == 0, "\(mismatches.count) mismatches: \(mismatches.examples)")
        #expect(gguf.vocabularySize == fixture["vocabulary_size"]?.intValue)
        #expect(gguf.bosToken == "<|begin_of_text|>")
        #expect(gguf.eosToken == "<|end_of_text|>")
        #expect(gguf.addsBOS)
    }

    @Test func specialTokenFields() throws {
        let llama3 = try TokenizerFixtures.tokenizer("llama3")
        #expect(llama3.bosToken == "<|begin_of_text|>")
        #expect(llama3.bosTokenID == llama3.tokenID("<|begin_of_text|>"))
        #expect(llama3.eosToken == "<|end_of_text|>")
        #expect(llama3.eosTokenID == llama3.tokenID("<|end_of_text|>"))
        #expect(llama3.addsBOS)
        #expect(llama3.encode("").count == 1)
        #expect(llama3.encode("", addSpecialTokens: false).isEmpty)
        let eot = try #require(llama3.tokenID("<|eot_id|>"))
        #expect(llama3.tokenText(eot) == "<|eot_id|>")
        #expect(llama3.isSpecialToken(eot))
        #expect(llama3.tokenText(llama3.vocabularySize) == nil)
        #expect(llama3.tokenID("Ġthe") != nil)

        let gpt2 = try TokenizerFixtures.tokenizer("gpt2")
        #expect(!gpt2.addsBOS)
        #expect(gpt2.bosToken == "<|endoftext|>")
        #expect(try TokenizerFixtures.tokenizer("gpt2_prefix_space").bosToken == nil)

        let qwen = try TokenizerFixtures.tokenizer("qwen2_pairs")
        #expect(qwen.eosToken == "<|im_end|>")
        #expect(qwen.bosTokenID == nil)
    }

    @Test func streamingHoldsBackIncompleteCharacters() throws {
        let tokenizer = try TokenizerFixtures.tokenizer("llama3")
        // "€" is E2 82 AC: one byte-level token per byte.
        let ids = [0xE2, 0x82, 0xAC].map { byte in
            tokenizer.tokenID(String(ByteLevelAlphabet.scalarForByte[byte]))!
        }
        var decoder = tokenizer.makeStreamingDecoder()
        #expect(decoder.append(ids[0]) == "")
        #expect(decoder.append(ids[1]) == "")
        #expect(decoder.append(ids[2]) == "€")
        #expect(decoder.append(ids[0]) == "")
        #expect(decoder.flush() == "\u{FFFD}")
        #expect(decoder.flush() == "")
    }
}
