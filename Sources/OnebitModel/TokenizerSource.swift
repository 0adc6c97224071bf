/// Where a checkpoint keeps its tokenizer, before it is built.
public enum TokenizerSource: Sendable {
    /// A Hugging Face `tokenizer.json` and the parsed `tokenizer_config.json` (`nil` when absent).
    case huggingFace(tokenizerJSON: [UInt8], tokenizerConfig: JSONValue?)
    /// The `tokenizer.ggml.*` metadata of a GGUF file.
    case gguf(GGUFTokenizerData)
}

/// The tokenizer fields of GGUF metadata (`tokenizer.ggml.*`), as the GGUF reader found them.
public struct GGUFTokenizerData: Sendable, Equatable {
    /// `tokenizer.ggml.model`, e.g. `gpt2` for byte-level BPE.
    public var model: String
    /// `tokenizer.ggml.pre`, e.g. `llama-bpe`; `nil` when absent.
    public var preTokenizer: String?
    /// `tokenizer.ggml.tokens`: the vocabulary, index = token id.
    public var tokens: [String]
    /// `tokenizer.ggml.merges`: `"a b"` pairs in rank order.
    public var merges: [String]
    /// `tokenizer.ggml.token_type` (1 normal, 2 unknown, 3 control, 4 user-defined, 5 unused, 6 byte); empty when absent.
    public var tokenTypes: [Int]
    /// `tokenizer.ggml.bos_token_id`.
    public var bosTokenID: Int?
    /// `tokenizer.ggml.eos_token_id`.
    public var eosTokenID: Int?
    /// `tokenizer.ggml.eot_token_id`, when present.
    public var eotTokenID: Int?
    /// `tokenizer.ggml.add_bos_token`; `nil` when the file does not say.
    public var addBOS: Bool?

    /// Groups the fields.
    public init(
        model: String, preTokenizer: String?, tokens: [String], merges: [String], tokenTypes: [Int],
        bosTokenID: Int?, eosTokenID: Int?, eotTokenID: Int?, addBOS: Bool?
    ) {
        self.model = model
        self.preTokenizer = preTokenizer
        self.tokens = tokens
        self.merges = merges
        self.tokenTypes = tokenTypes
        self.bosTokenID = bosTokenID
        self.eosTokenID = eosTokenID
        self.eotTokenID = eotTokenID
        self.addBOS = addBOS
    }
}

/// What a format-specific loader read from a checkpoint, before the tokenizer and template are built.
public struct CheckpointContents: Sendable {
    /// Shapes and hyper-parameters.
    public var config: ModelConfig
    /// Tensors in canonical form.
    public var weights: ModelWeights
    /// Where the tokenizer lives.
    public var tokenizer: TokenizerSource
    /// The Jinja chat template the file ships, if any.
    public var chatTemplate: String?
    /// Ids that end generation (`eos_token_id` of generation_config.json, or GGUF eos/eot).
    public var endOfSequenceTokenIDs: [Int]
    /// One line per fact `onebit info` prints about the file (format, linear class, tensor types...).
    public var formatDetails: [(key: String, value: String)]

    /// Groups what a loader read.
    public init(
        config: ModelConfig, weights: ModelWeights, tokenizer: TokenizerSource, chatTemplate: String?,
        endOfSequenceTokenIDs: [Int], formatDetails: [(key: String, value: String)]
    ) {
        self.config = config
        self.weights = weights
        self.tokenizer = tokenizer
        self.chatTemplate = chatTemplate
        self.endOfSequenceTokenIDs = endOfSequenceTokenIDs
        self.formatDetails = formatDetails
    }
}
