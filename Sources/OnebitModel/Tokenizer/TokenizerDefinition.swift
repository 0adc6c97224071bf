/// Everything a ``Tokenizer`` is built from, independent of the file format it came from.
struct TokenizerDefinition {
    var model: BPEModel
    var addedTokens: [AddedToken]
    var normalizer: [NormalizerStep]?
    var preTokenizer: [PreTokenizerStep]
    /// Ids the post-processor puts before and after the text when special tokens are added.
    var prefixIDs: [Int]
    var suffixIDs: [Int]
    var decoder: DecoderKind
    var bosToken: String?
    var eosToken: String?
    /// When set, overrides ``bosToken`` with an id (GGUF names ids, not text).
    var bosTokenID: Int?
    var eosTokenID: Int?
}

/// How ids turn back into text.
enum DecoderKind: Sendable {
    /// Maps byte-level alphabet characters back to bytes, then decodes UTF-8 (invalid bytes as U+FFFD).
    case byteLevel
    /// No decoder: token texts joined by single spaces, as `tokenizers` does without one.
    case none
}
