/// Builds a ``TokenizerDefinition`` from GGUF `tokenizer.ggml.*` metadata, equal to the Hugging Face tokenizer the
/// file was converted from.
enum GGUFTokenizer {
    /// GGUF token types (`tokenizer.ggml.token_type`).
    private enum TokenType {
        static let control = 3
        static let userDefined = 4
    }

    /// The official bitnet-b1.58-2B-4T GGUF writes no `tokenizer.ggml.pre`; a vocabulary carrying Llama-3's
    /// special tokens was pre-tokenized the Llama-3 way, so that is what such a file gets.
    static func impliedPreTokenizer(_ data: GGUFTokenizerData) -> String? {
        let llama3Markers: Set = ["<|begin_of_text|>", "<|eot_id|>", "<|start_header_id|>"]
        return data.tokens.contains(where: llama3Markers.contains) ? "llama-bpe" : nil
    }

    static func definition(_ data: GGUFTokenizerData) throws(TokenizerError) -> TokenizerDefinition {
        guard data.model == "gpt2" else {
            throw .unsupported(
                path: "tokenizer.ggml.model", reason: "\"\(data.model)\"; only gpt2 (byte-level BPE) is supported")
        }
        guard let pre = data.preTokenizer ?? impliedPreTokenizer(data) else {
            throw .malformed(
                path: "tokenizer.ggml.pre", reason: "missing; the pre-tokenizer cannot be guessed for a gpt2 model")
        }
        let preTokenizer: [PreTokenizerStep]
        let ignoreMerges: Bool
        switch pre {
        case "llama-bpe", "llama3", "llama-v3":
            preTokenizer = [
                .split(.known(.llama3), .isolated, invert: false), .byteLevel(addPrefixSpace: false, useRegex: false),
            ]
            ignoreMerges = true
        case "qwen2":
            preTokenizer = [
                .split(.known(.qwen2), .isolated, invert: false), .byteLevel(addPrefixSpace: false, useRegex: false),
            ]
            ignoreMerges = false
        case "gpt2", "default":
            preTokenizer = [.byteLevel(addPrefixSpace: false, useRegex: true)]
            ignoreMerges = false
        default:
            throw .unsupported(
                path: "tokenizer.ggml.pre", reason: "\"\(pre)\"; supported: llama-bpe, llama3, qwen2, gpt2, default")
        }
        guard data.tokenTypes.isEmpty || data.tokenTypes.count == data.tokens.count else {
            throw .malformed(
                path: "tokenizer.ggml.token_type",
                reason: "\(data.tokenTypes.count) entries for \(data.tokens.count) tokens")
        }
        for (key, id) in [("bos", data.bosTokenID), ("eos", data.eosTokenID), ("eot", data.eotTokenID)] {
            if let id, !data.tokens.indices.contains(id) {
                throw .malformed(path: "tokenizer.ggml.\(key)_token_id", reason: "\(id) is not a token id")
            }
        }
        var vocabulary: [[UInt8]: Int] = [:]
        vocabulary.reserveCapacity(data.tokens.count)
        var addedTokens: [AddedToken] = []
        for (id, text) in data.tokens.enumerated() {
            let type = data.tokenTypes.isEmpty ? 1 : data.tokenTypes[id]
            let isControl =
                type == TokenType.control
                || (data.tokenTypes.isEmpty && (id == data.bosTokenID || id == data.eosTokenID))
            if isControl || type == TokenType.userDefined {
                addedTokens.append(
                    AddedToken(
                        id: id, content: text, isSpecial: isControl, singleWord: false, leftStrip: false,
                        rightStrip: false, normalized: !isControl))
            } else {
                vocabulary[Array(text.utf8)] = id
            }
        }
        let merges = try BPEModel.mergeTable(
            count: data.merges.count, path: "tokenizer.ggml.merges", vocabulary: vocabulary
        ) { (rank) throws(TokenizerError) in
            try BPEModel.splitMerge(data.merges[rank], path: "tokenizer.ggml.merges[\(rank)]")
        }
        let model = BPEModel(
            vocabulary: vocabulary, merges: merges, ignoreMerges: ignoreMerges, byteFallback: false,
            unknownTokenID: nil, fuseUnknown: false)
        let addsBOS = data.addBOS ?? (pre != "gpt2" && pre != "default" && pre != "qwen2")
        return TokenizerDefinition(
            model: model, addedTokens: addedTokens, normalizer: nil, preTokenizer: preTokenizer,
            prefixIDs: addsBOS ? data.bosTokenID.map { [$0] } ?? [] : [], suffixIDs: [], decoder: .byteLevel,
            bosToken: nil, eosToken: nil, bosTokenID: data.bosTokenID, eosTokenID: data.eosTokenID)
    }
}
