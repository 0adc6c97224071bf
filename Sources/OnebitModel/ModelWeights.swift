/// The tensors of one transformer block, in the roles the forward pass uses them.
public struct LayerWeights: Sendable {
    /// RMSNorm before attention (`input_layernorm`, `attn_norm`).
    public var attentionNorm: [Float]
    /// Query projection, `[heads * head_dim, hidden]`.
    public var query: TernaryMatrix
    /// Key projection, `[kv_heads * head_dim, hidden]`.
    public var key: TernaryMatrix
    /// Value projection, `[kv_heads * head_dim, hidden]`.
    public var value: TernaryMatrix
    /// RMSNorm over the concatenated head outputs, before ``output`` (`attn_sub_norm`).
    public var attentionSubNorm: [Float]
    /// Attention output projection, `[hidden, heads * head_dim]`.
    public var output: TernaryMatrix
    /// RMSNorm before the feed-forward layer (`post_attention_layernorm`, `ffn_norm`).
    public var feedForwardNorm: [Float]
    /// Gate projection, `[intermediate, hidden]`.
    public var gate: TernaryMatrix
    /// Up projection, `[intermediate, hidden]`.
    public var up: TernaryMatrix
    /// RMSNorm over `act(gate) * up`, before ``down`` (`ffn_sub_norm`).
    public var feedForwardSubNorm: [Float]
    /// Down projection, `[hidden, intermediate]`.
    public var down: TernaryMatrix

    /// Groups the tensors of one block.
    public init(
        attentionNorm: [Float], query: TernaryMatrix, key: TernaryMatrix, value: TernaryMatrix,
        attentionSubNorm: [Float], output: TernaryMatrix, feedForwardNorm: [Float], gate: TernaryMatrix,
        up: TernaryMatrix, feedForwardSubNorm: [Float], down: TernaryMatrix
    ) {
        self.attentionNorm = attentionNorm
        self.query = query
        self.key = key
        self.value = value
        self.attentionSubNorm = attentionSubNorm
        self.output = output
        self.feedForwardNorm = feedForwardNorm
        self.gate = gate
        self.up = up
        self.feedForwardSubNorm = feedForwardSubNorm
        self.down = down
    }

    /// The seven ternary projections with their roles, for checks and statistics.
    public var projections: [(name: String, matrix: TernaryMatrix)] {
        [
            ("q", query), ("k", key), ("v", value), ("o", output), ("gate", gate), ("up", up), ("down", down),
        ]
    }
}

/// All tensors of a model in canonical form.
public struct ModelWeights: Sendable {
    /// Token embeddings, `[vocab, hidden]`.
    public var embeddings: DenseMatrix
    /// The transformer blocks, first to last.
    public var layers: [LayerWeights]
    /// RMSNorm after the last block.
    public var finalNorm: [Float]
    /// The output head `[vocab, hidden]`; `nil` when it is tied to ``embeddings``.
    public var outputHead: DenseMatrix?

    /// Groups a model's tensors.
    public init(embeddings: DenseMatrix, layers: [LayerWeights], finalNorm: [Float], outputHead: DenseMatrix?) {
        self.embeddings = embeddings
        self.layers = layers
        self.finalNorm = finalNorm
        self.outputHead = outputHead
    }

    /// The matrix that produces logits: the untied head, or the embeddings.
    public var head: DenseMatrix { outputHead ?? embeddings }

    /// No tensors: what a model keeps once a backend holds its weights in a layout of its own, so that the
    /// canonical copies (gigabytes for a 2B model) are freed.
    public static let released = ModelWeights(
        embeddings: DenseMatrix(rows: 0, columns: 0, storage: .float32([])), layers: [], finalNorm: [],
        outputHead: nil)

    /// Checks every tensor against the configuration, so a lying file fails at load with the tensor's name
    /// instead of reading out of bounds later.
    public func validate(against config: ModelConfig) throws(ModelLoadError) {
        func expect(_ name: String, _ shape: (Int, Int), _ wanted: (Int, Int)) throws(ModelLoadError) {
            if shape != wanted {
                throw .shapeMismatch(tensor: name, expected: [wanted.0, wanted.1], found: [shape.0, shape.1])
            }
        }
        func expect(_ name: String, _ vector: [Float], _ count: Int) throws(ModelLoadError) {
            if vector.count != count { throw .shapeMismatch(tensor: name, expected: [count], found: [vector.count]) }
        }
        let hidden = config.hiddenSize
        let attention = config.headCount * config.headDim
        let kv = config.kvHeadCount * config.headDim
        let ffn = config.intermediateSize
        try expect("embeddings", (embeddings.rows, embeddings.columns), (config.vocabSize, hidden))
        if let outputHead {
            try expect("output head", (outputHead.rows, outputHead.columns), (config.vocabSize, hidden))
        }
        try expect("final norm", finalNorm, hidden)
        guard layers.count == config.layerCount else {
            throw .invalidConfig("the file has \(layers.count) layers, the config says \(config.layerCount)")
        }
        for (i, layer) in layers.enumerated() {
            let shapes: [(String, TernaryMatrix, (Int, Int))] = [
                ("q", layer.query, (attention, hidden)), ("k", layer.key, (kv, hidden)),
                ("v", layer.value, (kv, hidden)), ("o", layer.output, (hidden, attention)),
                ("gate", layer.gate, (ffn, hidden)), ("up", layer.up, (ffn, hidden)),
                ("down", layer.down, (hidden, ffn)),
            ]
            for (name, matrix, wanted) in shapes {
                try expect("layer \(i) \(name)", (matrix.rows, matrix.columns), wanted)
            }
            try expect("layer \(i) attention norm", layer.attentionNorm, hidden)
            try expect("layer \(i) attention sub-norm", layer.attentionSubNorm, attention)
            try expect("layer \(i) feed-forward norm", layer.feedForwardNorm, hidden)
            try expect("layer \(i) feed-forward sub-norm", layer.feedForwardSubNorm, ffn)
        }
    }
}
