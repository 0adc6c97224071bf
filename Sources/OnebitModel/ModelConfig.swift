/// The shape and hyper-parameters of a BitNet b1.58 transformer, whatever file it came from.
public struct ModelConfig: Sendable, Equatable {
    /// The architecture name the file declares (`BitNetForCausalLM`, `bitnet-b1.58`, `bitnet-25`, `bitnet`).
    public var architecture: String
    /// Width of the residual stream.
    public var hiddenSize: Int
    /// Number of transformer blocks.
    public var layerCount: Int
    /// Query heads.
    public var headCount: Int
    /// Key/value heads (grouped-query attention when fewer than ``headCount``).
    public var kvHeadCount: Int
    /// Width of one head.
    public var headDim: Int
    /// Width of the feed-forward layer.
    public var intermediateSize: Int
    /// Rows of the embedding table and of the output head.
    public var vocabSize: Int
    /// Longest sequence the model was trained for.
    public var contextLength: Int
    /// RoPE base frequency.
    public var ropeTheta: Float
    /// RMSNorm epsilon.
    public var rmsNormEpsilon: Float
    /// The gate activation of the feed-forward layer.
    public var activation: Activation
    /// Whether the output head reuses the embedding table.
    public var tiedEmbeddings: Bool

    /// Feed-forward gate activations BitNet checkpoints use.
    public enum Activation: String, Sendable, Equatable {
        /// `relu(x)^2` (BitNet b1.58 2B-4T, `hidden_act = relu2`).
        case relu2
        /// `x * sigmoid(x)` (the original 1bitLLM models, mainline llama.cpp's `bitnet`).
        case silu
    }

    /// Creates a configuration; ``validate()`` checks it.
    public init(
        architecture: String, hiddenSize: Int, layerCount: Int, headCount: Int, kvHeadCount: Int, headDim: Int,
        intermediateSize: Int, vocabSize: Int, contextLength: Int, ropeTheta: Float, rmsNormEpsilon: Float,
        activation: Activation, tiedEmbeddings: Bool
    ) {
        self.architecture = architecture
        self.hiddenSize = hiddenSize
        self.layerCount = layerCount
        self.headCount = headCount
        self.kvHeadCount = kvHeadCount
        self.headDim = headDim
        self.intermediateSize = intermediateSize
        self.vocabSize = vocabSize
        self.contextLength = contextLength
        self.ropeTheta = ropeTheta
        self.rmsNormEpsilon = rmsNormEpsilon
        self.activation = activation
        self.tiedEmbeddings = tiedEmbeddings
    }

    /// Throws when the numbers cannot describe a working model (a zero width, heads that do not divide, ...).
    public func validate() throws(ModelLoadError) {
        func require(_ condition: Bool, _ what: String) throws(ModelLoadError) {
            if !condition { throw .invalidConfig(what) }
        }
        try require(hiddenSize > 0 && layerCount > 0 && headCount > 0 && kvHeadCount > 0, "sizes must be positive")
        try require(
            headDim > 0 && headDim % 2 == 0, "head_dim \(headDim) must be positive and even (RoPE rotates pairs)")
        try require(
            headCount % kvHeadCount == 0, "\(headCount) attention heads do not divide into \(kvHeadCount) KV heads")
        try require(intermediateSize > 0 && vocabSize > 0 && contextLength > 0, "sizes must be positive")
        try require(hiddenSize % 4 == 0, "hidden_size \(hiddenSize) must be a multiple of 4")
        try require(intermediateSize % 4 == 0, "intermediate_size \(intermediateSize) must be a multiple of 4")
        try require((headCount * headDim) % 4 == 0, "attention width must be a multiple of 4")
        try require(ropeTheta > 0 && rmsNormEpsilon > 0, "rope_theta and rms_norm_eps must be positive")
        try require(
            hiddenSize <= 1 << 16 && intermediateSize <= 1 << 18 && layerCount <= 1024 && vocabSize <= 1 << 22,
            "sizes are implausibly large")
    }
}
