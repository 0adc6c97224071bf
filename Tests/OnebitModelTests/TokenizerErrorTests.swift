import Testing

@testable import OnebitModel

/// Malformed and unsupported sources are refused with an error naming the place, never a crash.
@Suite struct TokenizerErrorTests {
    private static let validModel = #"{"type": "BPE", "vocab": {"a": 0, "b": 1, "ab": 2}, "merges": ["a b"]}"#

    private func failure(_ json: String) -> TokenizerError? {
        do {
            _ = try Tokenizer(source: .huggingFace(tokenizerJSON: Array(json.utf8), tokenizerConfig: nil))
            return nil
        } catch {
            return error
        }
    }

    private func failure(_ data: GGUFTokenizerData) -> TokenizerError? {
        do {
            _ = try Tokenizer(source: .gguf(data))
            return nil
        } catch {
            return error
        }
    }

    private func path(_ error: TokenizerError?) -> String? {
        switch error {
        case .malformed(let path, _), .unsupported(let path, _): path
        default: nil
        }
    }

    private func isUnsupported(_ error: TokenizerError?) -> Bool {
        if case .unsupported = error { return true }
        return false
    }

    @Test func minimalTokenizerLoads() throws {
        #expect(failure(#"{"model": \#(Self.validModel)}"#) == nil)
    }

    @Test func notJSON() {
        let error = failure("{not json")
        guard case .invalidJSON = error else {
            Issue.record("expected invalidJSON, got \(String(describing: error))")
            return
        }
        #expect(error?.description.contains("not valid JSON") == true)
    }

    @Test func missingModel() {
        #expect(path(failure("{}")) == "model")
        #expect(path(failure(#"{"model": null}"#)) == "model")
        #expect(path(failure("[1, 2]")) == "$")
    }

    @Test func unknownModelType() {
        let error = failure(#"{"model": {"type": "WordPiece", "vocab": {}}}"#)
        #expect(path(error) == "model.type")
        #expect(isUnsupported(error))
        #expect(error?.description.contains("only byte-level BPE") == true)
    }

    @Test func mergesNamingUnknownTokens() {
        let unknown = failure(#"{"model": {"type": "BPE", "vocab": {"a": 0, "b": 1}, "merges": ["a c"]}}"#)
        #expect(path(unknown) == "model.merges[0]")
        #expect(unknown?.description.contains("\"c\"") == true)
        let unmerged = failure(#"{"model": {"type": "BPE", "vocab": {"a": 0, "b": 1}, "merges": [["a", "b"]]}}"#)
        #expect(path(unmerged) == "model.merges[0]")
        let badLine = failure(#"{"model": {"type": "BPE", "vocab": {"a": 0}, "merges": ["a"]}}"#)
        #expect(path(badLine) == "model.merges[0]")
        #expect(path(failure(#"{"model": {"type": "BPE", "vocab": {"a": 0}}}"#)) == "model.merges")
        #expect(path(failure(#"{"model": {"type": "BPE", "vocab": {"a": -1}, "merges": []}}"#)) == "model.vocab[\"a\"]")
    }

    @Test func unknownPipelineStages() {
        let preTokenizer = failure(#"{"model": \#(Self.validModel), "pre_tokenizer": {"type": "Whitespace"}}"#)
        #expect(path(preTokenizer) == "pre_tokenizer.type")
        #expect(isUnsupported(preTokenizer))

        let regex = failure(
            #"{"model": \#(Self.validModel), "pre_tokenizer": {"type": "Sequence", "pretokenizers": [{"type": "Split", "pattern": {"Regex": "\\w+"}, "behavior": "Isolated", "invert": false}]}}"#
        )
        #expect(path(regex) == "pre_tokenizer.pretokenizers[0].pattern.Regex")
        #expect(isUnsupported(regex))

        let normalizer = failure(#"{"model": \#(Self.validModel), "normalizer": {"type": "NFKC"}}"#)
        #expect(path(normalizer) == "normalizer.type")

        let decoder = failure(#"{"model": \#(Self.validModel), "decoder": {"type": "WordPiece"}}"#)
        #expect(path(decoder) == "decoder.type")

        let processor = failure(#"{"model": \#(Self.validModel), "post_processor": {"type": "BertProcessing"}}"#)
        #expect(path(processor) == "post_processor.type")

        let missingType = failure(#"{"model": \#(Self.validModel), "decoder": {}}"#)
        #expect(path(missingType) == "decoder.type")
    }

    @Test func malformedAddedTokens() {
        let json = #"{"model": \#(Self.validModel), "added_tokens": [{"id": "x", "content": "<s>"}]}"#
        #expect(path(failure(json)) == "added_tokens[0].id")
    }

    @Test func unsupportedGGUF() {
        let base = GGUFTokenizerData(
            model: "gpt2", preTokenizer: "llama-bpe", tokens: ["a", "b", "ab"], merges: ["a b"], tokenTypes: [],
            bosTokenID: nil, eosTokenID: nil, eotTokenID: nil, addBOS: nil)
        #expect(failure(base) == nil)

        var sentencePiece = base
        sentencePiece.model = "llama"
        #expect(path(failure(sentencePiece)) == "tokenizer.ggml.model")

        var noPre = base
        noPre.preTokenizer = nil
        #expect(path(failure(noPre)) == "tokenizer.ggml.pre")

        var unknownPre = base
        unknownPre.preTokenizer = "falcon"
        #expect(path(failure(unknownPre)) == "tokenizer.ggml.pre")

        var badMerge = base
        badMerge.merges = ["a c"]
        #expect(path(failure(badMerge)) == "tokenizer.ggml.merges[0]")

        var badTypes = base
        badTypes.tokenTypes = [1]
        #expect(path(failure(badTypes)) == "tokenizer.ggml.token_type")

        var badBOS = base
        badBOS.bosTokenID = 7
        #expect(path(failure(badBOS)) == "tokenizer.ggml.bos_token_id")
    }
}
