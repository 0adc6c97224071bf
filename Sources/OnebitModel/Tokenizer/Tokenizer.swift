/// A Hugging Face compatible byte-level BPE tokenizer.
///
/// Built from a `tokenizer.json` or from GGUF metadata, it encodes and decodes exactly as the `tokenizers` library
/// does: added tokens are cut out first, the rest is normalized, pre-tokenized with the checkpoint's pattern, mapped
/// to the byte-level alphabet and merged by rank; the post-processor then adds BOS where the checkpoint asks.
/// Thread-safe: the only mutable state is an internal cache of tokenized words behind a lock.
public final class Tokenizer: Sendable {
    /// One more than the highest token id, added tokens included (the size an embedding table needs).
    public let vocabularySize: Int
    /// The beginning-of-sequence token, from `tokenizer_config.json`, the post-processor or GGUF metadata.
    public let bosTokenID: Int?
    /// The end-of-sequence token, from `tokenizer_config.json` or GGUF metadata.
    public let eosTokenID: Int?
    /// The text of the BOS token, e.g. `<|begin_of_text|>`, as chat templates use it.
    public let bosToken: String?
    /// The text of the EOS token.
    public let eosToken: String?
    /// Whether `encode(_:addSpecialTokens: true)` prepends the BOS token.
    public let addsBOS: Bool

    private let model: BPEModel
    /// Added tokens matched in the raw text, then those matched in the normalized text.
    private let rawAddedTokens: AddedTokenMatcher
    private let normalizedAddedTokens: AddedTokenMatcher
    private let normalizer: [NormalizerStep]?
    private let preTokenizer: [PreTokenizerStep]
    private let prefixIDs: [Int]
    private let suffixIDs: [Int]
    let decoder: DecoderKind
    /// Added tokens by id; they take precedence over model entries with the same id.
    private let addedTokensByID: [Int: AddedToken]
    private let addedTokenIDs: [[UInt8]: Int]

    /// Builds the tokenizer a checkpoint describes, or says precisely what in it is malformed or unsupported.
    public init(source: TokenizerSource) throws(TokenizerError) {
        let definition: TokenizerDefinition
        switch source {
        case .huggingFace(let tokenizerJSON, let tokenizerConfig):
            definition = try HuggingFaceTokenizerFile.definition(
                tokenizerJSON: tokenizerJSON, tokenizerConfig: tokenizerConfig)
        case .gguf(let data):
            definition = try GGUFTokenizer.definition(data)
        }
        model = definition.model
        normalizer = definition.normalizer
        preTokenizer = definition.preTokenizer
        prefixIDs = definition.prefixIDs
        suffixIDs = definition.suffixIDs
        decoder = definition.decoder
        rawAddedTokens = AddedTokenMatcher(tokens: definition.addedTokens.filter { !$0.normalized }, normalizer: nil)
        normalizedAddedTokens = AddedTokenMatcher(
            tokens: definition.addedTokens.filter(\.normalized), normalizer: definition.normalizer)
        var byID: [Int: AddedToken] = [:]
        var idsByText: [[UInt8]: Int] = [:]
        for token in definition.addedTokens {
            byID[token.id] = token
            idsByText[Array(token.content.utf8)] = token.id
        }
        addedTokensByID = byID
        addedTokenIDs = idsByText
        vocabularySize = max(model.tokens.count, (byID.keys.max() ?? -1) + 1)

        func id(of text: String?) -> Int? {
            guard let text else { return nil }
            let bytes = Array(text.utf8)
            return idsByText[bytes] ?? definition.model.vocabulary[bytes]
        }
        func text(of id: Int?) -> String? {
            guard let id else { return nil }
            return byID[id]?.content
                ?? (definition.model.tokens.indices.contains(id) ? definition.model.tokens[id] : nil)
        }
        let bosID = definition.bosTokenID ?? id(of: definition.bosToken)
        let eosID = definition.eosTokenID ?? id(of: definition.eosToken)
        bosTokenID = bosID
        eosTokenID = eosID
        bosToken = definition.bosToken ?? text(of: bosID)
        eosToken = definition.eosToken ?? text(of: eosID)
        addsBOS = bosID.map { definition.prefixIDs.contains($0) } ?? false
    }

    /// The ids of `text`, equal to `tokenizers`' `Tokenizer.encode(text, add_special_tokens:).ids`.
    ///
    /// Special tokens written in the text (e.g. `<|eot_id|>`) are recognised as such; `addSpecialTokens` only
    /// controls what the post-processor adds around the text (BOS for Llama-3 style checkpoints).
    public func encode(_ text: String, addSpecialTokens: Bool = true) -> [Int] {
        var ids = addSpecialTokens ? prefixIDs : []
        ids.reserveCapacity(text.utf8.count / 3 + 4)
        var segments: [Segment] = []
        rawAddedTokens.split(Array(text.unicodeScalars), into: &segments)
        var inner: [Segment] = []
        for segment in segments {
            switch segment {
            case .token(let id):
                ids.append(id)
            case .text(let scalars):
                inner.removeAll(keepingCapacity: true)
                normalizedAddedTokens.split(normalizer?.apply(scalars) ?? scalars, into: &inner)
                for piece in inner {
                    switch piece {
                    case .token(let id):
                        ids.append(id)
                    case .text(let scalars):
                        for word in preTokenizer.apply(scalars) { model.tokenize(word, into: &ids) }
                    }
                }
            }
        }
        if addSpecialTokens { ids += suffixIDs }
        return ids
    }

    /// The text of `ids`, equal to `tokenizers`' `Tokenizer.decode`; unknown ids are skipped and invalid UTF-8
    /// becomes U+FFFD.
    public func decode(_ ids: [Int], skipSpecialTokens: Bool = false) -> String {
        var bytes: [UInt8] = []
        var isFirst = true
        for id in ids { appendBytes(of: id, skipSpecialTokens: skipSpecialTokens, isFirst: &isFirst, to: &bytes) }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// Appends the bytes token `id` decodes to; `isFirst` tracks the separators a tokenizer without decoder puts
    /// between tokens.
    func appendBytes(of id: Int, skipSpecialTokens: Bool, isFirst: inout Bool, to bytes: inout [UInt8]) {
        guard let text = tokenText(id) else { return }
        if skipSpecialTokens, addedTokensByID[id]?.isSpecial == true { return }
        switch decoder {
        case .byteLevel:
            bytes += ByteLevelAlphabet.decode(text)
        case .none:
            if !isFirst { bytes.append(UInt8(ascii: " ")) }
            bytes += text.utf8
        }
        isFirst = false
    }

    /// The raw vocabulary entry of `id` (byte-level characters for ordinary tokens, plain text for added tokens),
    /// or `nil` for an id outside the vocabulary.
    public func tokenText(_ id: Int) -> String? {
        if let added = addedTokensByID[id] { return added.content }
        return model.tokens.indices.contains(id) ? model.tokens[id] : nil
    }

    /// The bytes token `id` contributes to decoded text; `nil` for an id outside the vocabulary, and for every id
    /// of a tokenizer without decoder, which joins tokens with spaces so that a token's bytes depend on its place.
    ///
    /// Constrained decoding matches these against a grammar.
    public func tokenBytes(_ id: Int) -> [UInt8]? {
        guard let text = tokenText(id), case .byteLevel = decoder else { return nil }
        return ByteLevelAlphabet.decode(text)
    }

    /// The id of a vocabulary entry or added token written exactly as `text`, or `nil`.
    public func tokenID(_ text: String) -> Int? {
        let bytes = Array(text.utf8)
        return addedTokenIDs[bytes] ?? model.vocabulary[bytes]
    }

    /// Whether `id` is a special token (BOS, EOS, chat markers...), which `decode(_:skipSpecialTokens: true)` drops.
    public func isSpecialToken(_ id: Int) -> Bool {
        addedTokensByID[id]?.isSpecial == true
    }

    /// A decoder that turns ids into text one at a time, for streaming generated tokens.
    public func makeStreamingDecoder(skipSpecialTokens: Bool = false) -> StreamingDecoder {
        StreamingDecoder(tokenizer: self, skipSpecialTokens: skipSpecialTokens)
    }
}
