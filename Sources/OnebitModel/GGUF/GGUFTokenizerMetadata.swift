extension GGUFTokenizerData {
    /// Reads the `tokenizer.ggml.*` metadata of `gguf`, checking that the special ids name tokens that exist.
    init(gguf: GGUFFile) throws(ModelLoadError) {
        guard let model = try gguf.string("tokenizer.ggml.model"),
            let tokens = try gguf.strings("tokenizer.ggml.tokens")
        else {
            throw .invalidConfig("the GGUF file has no tokenizer (tokenizer.ggml.model and tokenizer.ggml.tokens)")
        }
        let tokenTypes = try gguf.integers("tokenizer.ggml.token_type") ?? []
        guard tokenTypes.isEmpty || tokenTypes.count == tokens.count else {
            throw .invalidConfig("tokenizer.ggml.token_type has \(tokenTypes.count) entries for \(tokens.count) tokens")
        }
        func tokenID(_ key: String) throws(ModelLoadError) -> Int? {
            guard let id = try gguf.integer(key) else { return nil }
            guard tokens.indices.contains(id) else {
                throw .invalidConfig("\(key) = \(id) is outside the vocabulary of \(tokens.count) tokens")
            }
            return id
        }
        self.init(
            model: model, preTokenizer: try gguf.string("tokenizer.ggml.pre"), tokens: tokens,
            merges: try gguf.strings("tokenizer.ggml.merges") ?? [], tokenTypes: tokenTypes,
            bosTokenID: try tokenID("tokenizer.ggml.bos_token_id"),
            eosTokenID: try tokenID("tokenizer.ggml.eos_token_id"),
            eotTokenID: try tokenID("tokenizer.ggml.eot_token_id"),
            addBOS: try gguf.bool("tokenizer.ggml.add_bos_token"))
    }

    /// The ids that end generation: eos, eot, and Llama-3's `<|eot_id|>` when the vocabulary has it. bitnet.cpp's
    /// files name only `<|end_of_text|>` as eos, yet the chat models end each turn with `<|eot_id|>`.
    var endOfSequenceTokenIDs: [Int] {
        var ids: [Int] = []
        for id in [eosTokenID, eotTokenID, tokens.firstIndex(of: "<|eot_id|>")] {
            if let id, !ids.contains(id) { ids.append(id) }
        }
        return ids
    }
}
