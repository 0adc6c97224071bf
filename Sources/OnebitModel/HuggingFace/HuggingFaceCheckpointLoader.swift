/// Loads a Hugging Face `BitNetForCausalLM` directory into canonical tensors.
public enum HuggingFaceCheckpointLoader {
    /// Reads `config.json`, the safetensors weights, the tokenizer and generation settings of `directory`.
    public static func load(directory path: String) throws(ModelLoadError) -> CheckpointContents {
        try load(directory: ModelDirectory(path: path))
    }

    /// Reads `config.json`, the safetensors weights, the tokenizer and generation settings of `directory`.
    public static func load(directory: ModelDirectory) throws(ModelLoadError) -> CheckpointContents {
        guard directory.contains("config.json") else { throw .missingFile("config.json") }
        let config = try HuggingFaceConfig(
            json: try directory.json("config.json"), path: directory.name + "/config.json")
        let checkpoint = try SafetensorsCheckpoint(directory: directory)
        let weights = try loadWeights(checkpoint, config: config)
        try weights.validate(against: config.model)

        guard directory.contains("tokenizer.json") else { throw .missingFile("tokenizer.json") }
        let tokenizerConfig =
            directory.contains("tokenizer_config.json") ? try directory.json("tokenizer_config.json") : nil
        let generation =
            directory.contains("generation_config.json") ? try directory.json("generation_config.json") : nil
        // generation_config.json is what transformers' generate() stops on; config.json is the fallback.
        var endIDs = HuggingFaceConfig.tokenIDs(generation?["eos_token_id"])
        if endIDs.isEmpty { endIDs = config.eosTokenIDs }

        var details: [(key: String, value: String)] = [
            ("format", "Hugging Face safetensors"),
            ("weights", config.layout.summary),
            ("embeddings", weights.embeddings.elementTypeName),
            ("output head", weights.outputHead.map { "untied, \($0.elementTypeName)" } ?? "tied to the embeddings"),
        ]
        if !directory.contains("model.safetensors") { details.append(("shards", "model.safetensors.index.json")) }
        return CheckpointContents(
            config: config.model,
            weights: weights,
            tokenizer: .huggingFace(
                tokenizerJSON: try directory.bytes("tokenizer.json"), tokenizerConfig: tokenizerConfig),
            chatTemplate: chatTemplate(tokenizerConfig, directory: directory),
            endOfSequenceTokenIDs: endIDs,
            formatDetails: details
        )
    }

    /// The template of `tokenizer_config.json`, or of the separate `chat_template.jinja` newer exports write.
    private static func chatTemplate(_ tokenizerConfig: JSONValue?, directory: ModelDirectory) -> String? {
        if let template = tokenizerConfig?["chat_template"]?.stringValue { return template }
        // A list of named templates: use the default one.
        if let named = tokenizerConfig?["chat_template"]?.arrayValue {
            return named.first { $0["name"]?.stringValue == "default" }?["template"]?.stringValue
        }
        if directory.contains("chat_template.jinja"), let bytes = try? directory.bytes("chat_template.jinja") {
            return String(decoding: bytes, as: UTF8.self)
        }
        return nil
    }

    private static func loadWeights(
        _ checkpoint: SafetensorsCheckpoint, config: HuggingFaceConfig
    ) throws(ModelLoadError) -> ModelWeights {
        func vector(_ name: String) throws(ModelLoadError) -> [Float] {
            try checkpoint.file(for: name).floats(name)
        }
        func ternary(_ name: String, rows: Int, columns: Int) throws(ModelLoadError) -> TernaryMatrix {
            try ternaryMatrix(checkpoint, name: name, rows: rows, columns: columns, layout: config.layout)
        }
        let c = config.model
        let attention = c.headCount * c.headDim
        let kv = c.kvHeadCount * c.headDim
        var layers: [LayerWeights] = []
        for i in 0..<c.layerCount {
            let p = "model.layers.\(i)."
            layers.append(
                LayerWeights(
                    attentionNorm: try vector(p + "input_layernorm.weight"),
                    query: try ternary(p + "self_attn.q_proj", rows: attention, columns: c.hiddenSize),
                    key: try ternary(p + "self_attn.k_proj", rows: kv, columns: c.hiddenSize),
                    value: try ternary(p + "self_attn.v_proj", rows: kv, columns: c.hiddenSize),
                    attentionSubNorm: try vector(p + "self_attn.attn_sub_norm.weight"),
                    output: try ternary(p + "self_attn.o_proj", rows: c.hiddenSize, columns: attention),
                    feedForwardNorm: try vector(p + "post_attention_layernorm.weight"),
                    gate: try ternary(p + "mlp.gate_proj", rows: c.intermediateSize, columns: c.hiddenSize),
                    up: try ternary(p + "mlp.up_proj", rows: c.intermediateSize, columns: c.hiddenSize),
                    feedForwardSubNorm: try vector(p + "mlp.ffn_sub_norm.weight"),
                    down: try ternary(p + "mlp.down_proj", rows: c.hiddenSize, columns: c.intermediateSize)
                ))
        }
        let embeddings = try checkpoint.file(for: "model.embed_tokens.weight").denseMatrix("model.embed_tokens.weight")
        // A tied checkpoint may still carry lm_head.weight (a copy); only an untied one needs it.
        var head: DenseMatrix?
        if !c.tiedEmbeddings {
            guard checkpoint.contains("lm_head.weight") else {
                throw .missingTensor("lm_head.weight (config.json says tie_word_embeddings is false)")
            }
            head = try checkpoint.file(for: "lm_head.weight").denseMatrix("lm_head.weight")
        }
        return ModelWeights(
            embeddings: embeddings, layers: layers, finalNorm: try vector("model.norm.weight"), outputHead: head)
    }

    /// One projection as a canonical ternary matrix, from packed codes or from master weights.
    private static func ternaryMatrix(
        _ checkpoint: SafetensorsCheckpoint, name: String, rows: Int, columns: Int, layout: HuggingFaceWeightLayout
    ) throws(ModelLoadError) -> TernaryMatrix {
        let weightName = name + ".weight"
        let file = try checkpoint.file(for: weightName)
        let info = try file.info(weightName)
        switch layout {
        case .masters:
            guard info.shape == [rows, columns] else {
                throw .shapeMismatch(tensor: weightName, expected: [rows, columns], found: info.shape)
            }
            return TernaryQuantizer.absmean(try file.floats(weightName), rows: rows, columns: columns)
        case .packedMultiplyingScale, .packedDividingScale:
            guard rows % 4 == 0 else {
                throw .unsupported("\(weightName): packed weights need an output size divisible by 4, got \(rows)")
            }
            guard info.shape == [rows / 4, columns] else {
                throw .shapeMismatch(tensor: weightName, expected: [rows / 4, columns], found: info.shape)
            }
            let scaleName = name + ".weight_scale"
            let scales = try checkpoint.file(for: scaleName).floats(scaleName)
            guard scales.count == 1, let stored = scales.first, stored.isFinite, stored > 0 else {
                throw .malformed(
                    path: file.file.path, detail: "\(scaleName) must hold one positive number, found \(scales)")
            }
            let scale = layout == .packedMultiplyingScale ? stored : 1 / stored
            return try unpack(try file.bytes(weightName), name: weightName, rows: rows, columns: columns, scale: scale)
        }
    }

    /// Turns transformers' packing (packed row `r` holds rows `r + k * rows/4` in bit pair `k`) into the canonical
    /// layout.
    static func unpack(
        _ packed: [UInt8], name: String, rows: Int, columns: Int, scale: Float
    ) throws(ModelLoadError) -> TernaryMatrix {
        let packedRows = rows / 4
        let bytesPerRow = columns / 4
        var codes = [UInt8](repeating: 0, count: rows * bytesPerRow)
        var sawInvalidCode = false
        for k in 0..<4 {
            for r in 0..<packedRows {
                let source = r * columns
                let destination = (k * packedRows + r) * bytesPerRow
                for c in 0..<columns {
                    let code = (packed[source + c] >> UInt8(2 * k)) & 3
                    sawInvalidCode = sawInvalidCode || code == 3
                    codes[destination + c >> 2] |= code << UInt8((c & 3) * 2)
                }
            }
        }
        if sawInvalidCode { throw .notTernary(tensor: name) }
        return TernaryMatrix(rows: rows, columns: columns, codes: codes, scale: .perTensor(scale))
    }
}
