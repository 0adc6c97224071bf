/// Loads a BitNet b1.58 model from a GGUF file: configuration from `{arch}.*` metadata, tensors by their llama.cpp
/// names, tokenizer from `tokenizer.ggml.*`.
public enum GGUFModelLoader {
    /// The `general.architecture` values onebit runs: bitnet.cpp's `bitnet-b1.58` and `bitnet-25` (2B-4T and its
    /// first upload) and mainline llama.cpp's `bitnet`.
    public static let supportedArchitectures = ["bitnet-b1.58", "bitnet-25", "bitnet"]

    /// Reads the model in `file`.
    public static func load(file: MappedFile) throws(ModelLoadError) -> CheckpointContents {
        try load(gguf: GGUFFile(file: file))
    }

    /// Reads the model described by an already parsed GGUF header.
    public static func load(gguf: GGUFFile) throws(ModelLoadError) -> CheckpointContents {
        guard let architecture = try gguf.string("general.architecture") else {
            throw .invalidConfig("the GGUF metadata lacks general.architecture")
        }
        guard supportedArchitectures.contains(architecture) else {
            throw .unsupported(
                "GGUF architecture \(architecture); onebit runs \(supportedArchitectures.joined(separator: ", "))")
        }
        // Metadata first: a file whose configuration or tokenizer is unusable fails before any tensor is converted.
        let decoder = GGUFTensorDecoder(gguf: gguf)
        let embeddingInfo = try decoder.info("token_embd.weight")
        let outputInfo = gguf.tensor(named: "output.weight")
        let config = try configuration(
            gguf, architecture: architecture, embeddingRows: embeddingInfo.dimensions.dropFirst().first ?? 0,
            tied: outputInfo == nil)
        try config.validate()
        let tokenizer = try GGUFTokenizerData(gguf: gguf)

        var layers: [LayerWeights] = []
        layers.reserveCapacity(config.layerCount)
        for index in 0..<config.layerCount {
            layers.append(try layer(index, decoder: decoder))
        }
        let weights = ModelWeights(
            embeddings: try decoder.dense(embeddingInfo), layers: layers,
            finalNorm: try decoder.vector(try decoder.info("output_norm.weight")),
            outputHead: try outputInfo.map { (info) throws(ModelLoadError) in try decoder.dense(info) })
        try weights.validate(against: config)

        return CheckpointContents(
            config: config, weights: weights, tokenizer: .gguf(tokenizer),
            chatTemplate: try gguf.string("tokenizer.chat_template"),
            endOfSequenceTokenIDs: tokenizer.endOfSequenceTokenIDs,
            formatDetails: try formatDetails(gguf, architecture: architecture))
    }

    /// The configuration from `{arch}.*` keys. The head width is `key_length`, else `rope.dimension_count`, else
    /// `embedding_length / head_count`; the vocabulary size defaults to the embedding rows.
    private static func configuration(
        _ gguf: GGUFFile, architecture: String, embeddingRows: Int, tied: Bool
    ) throws(ModelLoadError) -> ModelConfig {
        let prefix = architecture + "."
        let hidden = try gguf.requiredInteger(prefix + "embedding_length")
        let heads = try gguf.requiredInteger(prefix + "attention.head_count")
        guard heads > 0 else { throw .invalidConfig("\(prefix)attention.head_count is \(heads)") }
        guard let epsilon = try gguf.float(prefix + "attention.layer_norm_rms_epsilon") else {
            throw .invalidConfig("the GGUF metadata lacks \(prefix)attention.layer_norm_rms_epsilon")
        }
        // `??` would erase the typed error of its right-hand side, hence the explicit steps.
        var headDim = hidden / heads
        if let keyLength = try gguf.integer(prefix + "attention.key_length") {
            headDim = keyLength
        } else if let ropeDimensions = try gguf.integer(prefix + "rope.dimension_count") {
            headDim = ropeDimensions
        }
        return ModelConfig(
            architecture: architecture, hiddenSize: hidden,
            layerCount: try gguf.requiredInteger(prefix + "block_count"), headCount: heads,
            kvHeadCount: try gguf.integer(prefix + "attention.head_count_kv") ?? heads, headDim: headDim,
            intermediateSize: try gguf.requiredInteger(prefix + "feed_forward_length"),
            vocabSize: try gguf.integer(prefix + "vocab_size") ?? embeddingRows,
            contextLength: try gguf.requiredInteger(prefix + "context_length"),
            ropeTheta: try gguf.float(prefix + "rope.freq_base") ?? 10_000, rmsNormEpsilon: epsilon,
            activation: try activation(gguf, architecture: architecture), tiedEmbeddings: tied)
    }

    /// bitnet.cpp's architectures use relu², mainline llama.cpp's `bitnet` SiLU; a `hidden_act` or `activation`
    /// key, which some converters write, overrides either.
    private static func activation(
        _ gguf: GGUFFile, architecture: String
    ) throws(ModelLoadError) -> ModelConfig.Activation {
        let key = gguf.metadata.keys.first { key in
            let leaf = key.split(separator: ".").last
            return leaf == "hidden_act" || leaf == "activation"
        }
        guard let key else { return architecture == "bitnet" ? .silu : .relu2 }
        switch try gguf.string(key)?.lowercased() {
        case "relu2", "relu_squared", "relu_sqr", "squared_relu": return .relu2
        case "silu", "swish": return .silu
        case let other: throw .unsupported("feed-forward activation \(other ?? "?") (\(key))")
        }
    }

    /// The tensors of block `index`. A `blk.N.*.scale` tensor, which mainline llama.cpp multiplies into the
    /// projection's output, is folded into the projection's ternary scale.
    private static func layer(_ index: Int, decoder: GGUFTensorDecoder) throws(ModelLoadError) -> LayerWeights {
        func vector(_ role: String) throws(ModelLoadError) -> [Float] {
            try decoder.vector(try decoder.info("blk.\(index).\(role).weight"))
        }
        func projection(_ role: String) throws(ModelLoadError) -> TernaryMatrix {
            let matrix = try decoder.ternary(try decoder.info("blk.\(index).\(role).weight"))
            guard let scaleInfo = decoder.gguf.tensor(named: "blk.\(index).\(role).scale") else { return matrix }
            let factor = try decoder.vector(scaleInfo)
            guard factor.count == 1 else {
                throw .unsupported("\(scaleInfo.name) holds \(factor.count) values; onebit folds only a single scale")
            }
            return matrix.scaled(by: factor[0])
        }
        return LayerWeights(
            attentionNorm: try vector("attn_norm"), query: try projection("attn_q"), key: try projection("attn_k"),
            value: try projection("attn_v"), attentionSubNorm: try vector("attn_sub_norm"),
            output: try projection("attn_output"), feedForwardNorm: try vector("ffn_norm"),
            gate: try projection("ffn_gate"), up: try projection("ffn_up"),
            feedForwardSubNorm: try vector("ffn_sub_norm"), down: try projection("ffn_down"))
    }

    /// What `onebit info` prints about the file.
    private static func formatDetails(
        _ gguf: GGUFFile, architecture: String
    ) throws(ModelLoadError) -> [(key: String, value: String)] {
        var details: [(key: String, value: String)] = [("format", "GGUF v\(gguf.version)")]
        details.append(("architecture", architecture))
        if let name = try gguf.string("general.name") { details.append(("name", name)) }
        if let fileType = try gguf.integer("general.file_type") {
            details.append(("file type", fileTypeNames[fileType].map { "\(fileType) (\($0))" } ?? "\(fileType)"))
        }
        var counts: [GGMLType: Int] = [:]
        for tensor in gguf.tensors { counts[tensor.type, default: 0] += 1 }
        let summary = counts.sorted { ($1.value, $0.key.rawValue) < ($0.value, $1.key.rawValue) }
            .map { "\($0.key.name) × \($0.value)" }
        details.append(("tensor types", summary.joined(separator: ", ")))
        return details
    }

    /// `general.file_type` values (llama.cpp's `llama_ftype`, bitnet.cpp's 40) that BitNet files carry.
    private static let fileTypeNames: [Int: String] = [
        0: "all f32", 1: "mostly f16", 7: "mostly q8_0", 18: "mostly q6_K", 32: "mostly bf16", 36: "mostly tq1_0",
        37: "mostly tq2_0", 40: "mostly i2_s",
    ]
}

extension TernaryMatrix {
    /// The same codes with every scale multiplied by `factor`.
    func scaled(by factor: Float) -> TernaryMatrix {
        let scale: TernaryScale =
            switch self.scale {
            case .perTensor(let s): .perTensor(s * factor)
            case .perBlock(let blockSize, let scales): .perBlock(blockSize: blockSize, scales.map { $0 * factor })
            }
        return TernaryMatrix(rows: rows, columns: columns, codes: codes, scale: scale)
    }
}
