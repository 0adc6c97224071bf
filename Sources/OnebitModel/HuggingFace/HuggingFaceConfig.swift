/// How a Hugging Face BitNet checkpoint stores its ternary projections (`quantization_config`).
enum HuggingFaceWeightLayout: Equatable {
    /// `uint8 [out/4, in]` codes and a `weight_scale` that multiplies (`linear_class: autobitlinear`, 2B-4T).
    case packedMultiplyingScale
    /// `uint8 [out/4, in]` codes and a `weight_scale` that divides (`linear_class: bitlinear`).
    case packedDividingScale
    /// Full-precision master weights, ternarized at load with the per-tensor absmean rule.
    case masters

    var summary: String {
        switch self {
        case .packedMultiplyingScale: "packed 2-bit, autobitlinear (weight_scale multiplies)"
        case .packedDividingScale: "packed 2-bit, bitlinear (weight_scale divides)"
        case .masters: "full-precision masters, ternarized at load (absmean)"
        }
    }
}

/// Reads `config.json` of a `BitNetForCausalLM` checkpoint.
struct HuggingFaceConfig {
    var model: ModelConfig
    var layout: HuggingFaceWeightLayout
    var bosTokenID: Int?
    var eosTokenIDs: [Int]

    init(json: JSONValue, path: String) throws(ModelLoadError) {
        func integer(_ key: String, default fallback: Int? = nil) throws(ModelLoadError) -> Int {
            if let value = json[key], !value.isNull {
                guard let number = value.intValue else { throw .invalidConfig("\(key) must be an integer in \(path)") }
                return number
            }
            guard let fallback else { throw .invalidConfig("\(path) has no \(key)") }
            return fallback
        }
        func real(_ value: JSONValue?, _ key: String, default fallback: Double) throws(ModelLoadError) -> Double {
            guard let value, !value.isNull else { return fallback }
            guard let number = value.doubleValue else { throw .invalidConfig("\(key) must be a number in \(path)") }
            return number
        }
        let architectures = json["architectures"]?.arrayValue?.compactMap(\.stringValue) ?? []
        let modelType = json["model_type"]?.stringValue
        guard architectures.contains("BitNetForCausalLM") || modelType == "bitnet" else {
            throw .unsupported(
                "\(path) declares \(architectures.first ?? modelType ?? "no architecture"); onebit runs BitNetForCausalLM"
            )
        }
        let hidden = try integer("hidden_size")
        let heads = try integer("num_attention_heads")
        let activationName = json["hidden_act"]?.stringValue ?? "relu2"
        guard let activation = Self.activation(named: activationName) else {
            throw .unsupported("hidden_act \(activationName); onebit supports relu2 and silu")
        }
        // transformers 5 nests RoPE settings in rope_parameters; older configs keep rope_theta at the top.
        let rope = json["rope_parameters"] ?? json["rope_scaling"]
        if let ropeType = rope?["rope_type"]?.stringValue ?? rope?["type"]?.stringValue, ropeType != "default" {
            throw .unsupported("RoPE scaling \(ropeType)")
        }
        let theta = try real(rope?["rope_theta"] ?? json["rope_theta"], "rope_theta", default: 500_000)
        model = ModelConfig(
            architecture: architectures.first ?? "BitNetForCausalLM",
            hiddenSize: hidden,
            layerCount: try integer("num_hidden_layers"),
            headCount: heads,
            kvHeadCount: try integer("num_key_value_heads", default: heads),
            headDim: try integer("head_dim", default: heads > 0 ? hidden / heads : 0),
            intermediateSize: try integer("intermediate_size"),
            vocabSize: try integer("vocab_size"),
            contextLength: try integer("max_position_embeddings", default: 2048),
            ropeTheta: Float(theta),
            rmsNormEpsilon: Float(try real(json["rms_norm_eps"], "rms_norm_eps", default: 1e-5)),
            activation: activation,
            tiedEmbeddings: json["tie_word_embeddings"]?.boolValue ?? false
        )
        try model.validate()
        layout = try Self.layout(json["quantization_config"], path: path)
        bosTokenID = json["bos_token_id"]?.intValue
        eosTokenIDs = Self.tokenIDs(json["eos_token_id"])
    }

    /// `eos_token_id` may be one id or a list of ids.
    static func tokenIDs(_ value: JSONValue?) -> [Int] {
        if let single = value?.intValue { return [single] }
        return value?.arrayValue?.compactMap(\.intValue) ?? []
    }

    static func activation(named name: String) -> ModelConfig.Activation? {
        switch name {
        case "relu2", "relu_squared", "squared_relu": .relu2
        case "silu", "swish": .silu
        default: nil
        }
    }

    private static func layout(_ quantization: JSONValue?, path: String) throws(ModelLoadError)
        -> HuggingFaceWeightLayout
    {
        guard let quantization, !quantization.isNull else { return .masters }
        let method = quantization["quant_method"]?.stringValue ?? "none"
        guard method == "bitnet" else {
            throw .unsupported("quantization method \(method) in \(path); onebit reads quant_method bitnet")
        }
        if quantization["use_rms_norm"]?.boolValue == true {
            throw .unsupported("quantization_config.use_rms_norm (an extra norm inside every BitLinear)")
        }
        let linearClass = quantization["linear_class"]?.stringValue ?? "bitlinear"
        let mode = quantization["quantization_mode"]?.stringValue ?? "offline"
        switch (linearClass, mode) {
        case (_, "online"): return .masters
        case ("autobitlinear", "offline"): return .packedMultiplyingScale
        case ("bitlinear", "offline"): return .packedDividingScale
        default:
            throw .unsupported("linear_class \(linearClass) with quantization_mode \(mode)")
        }
    }
}
