import Testing

@testable import OnebitModel

/// A two-block BitNet model small enough to write in a test, wide enough for 256-weight TQ blocks.
struct TinyGGUFModel {
    static let (hidden, heads, kvHeads, headDim, ffn, layers, vocab) = (256, 4, 2, 64, 256, 2, 16)
    static let tokens = (0..<13).map { "t\($0)" } + ["<|begin_of_text|>", "<|end_of_text|>", "<|eot_id|>"]

    var architecture: String
    var extraMetadata: [(key: String, value: GGUFValue)] = []
    var generator = SplitMix64(state: 42)
    /// The ternary values written for each projection, by tensor name.
    var ternary: [String: [Int8]] = [:]

    init(architecture: String) {
        self.architecture = architecture
    }

    /// The file, with projections encoded by `encode(values, rows, columns) -> (ggml type, data)`.
    mutating func builder(
        encode: (_ values: [Int8], _ rows: Int, _ columns: Int) -> (type: UInt32, data: [UInt8])
    ) -> GGUFBuilder {
        let a = architecture
        var builder = GGUFBuilder()
        builder.metadata = [
            ("general.architecture", .string(a)), ("general.name", .string("tiny")),
            ("general.file_type", .uint32(40)), ("\(a).context_length", .uint32(128)),
            ("\(a).embedding_length", .uint32(UInt32(Self.hidden))), ("\(a).block_count", .uint32(UInt32(Self.layers))),
            ("\(a).feed_forward_length", .uint32(UInt32(Self.ffn))),
            ("\(a).attention.head_count", .uint32(UInt32(Self.heads))),
            ("\(a).attention.head_count_kv", .uint32(UInt32(Self.kvHeads))),
            ("\(a).attention.layer_norm_rms_epsilon", .float32(1e-5)), ("\(a).rope.freq_base", .float32(500_000)),
            ("tokenizer.ggml.model", .string("gpt2")), ("tokenizer.ggml.pre", .string("llama-bpe")),
            ("tokenizer.ggml.tokens", .array(Self.tokens.map { .string($0) })),
            ("tokenizer.ggml.token_type", .array(Self.tokens.indices.map { .int32($0 >= 13 ? 3 : 1) })),
            ("tokenizer.ggml.merges", .array([.string("t 1")])), ("tokenizer.ggml.bos_token_id", .uint32(13)),
            ("tokenizer.ggml.eos_token_id", .uint32(14)), ("tokenizer.ggml.add_bos_token", .bool(true)),
            ("tokenizer.chat_template", .string("{{ messages }}")),
        ]
        builder.metadata += extraMetadata
        func real(_ name: String, _ dimensions: [Int]) -> TestTensor {
            let count = dimensions.reduce(1, *)
            let values = (0..<count).map { _ in Float.random(in: -1...1, using: &generator) }
            return TestTensor(name: name, dimensions: dimensions, type: 0, data: TestEncoding.f32(values))
        }
        builder.tensors = [real("token_embd.weight", [Self.hidden, Self.vocab])]
        let (attention, kv) = (Self.heads * Self.headDim, Self.kvHeads * Self.headDim)
        for layer in 0..<Self.layers {
            let projections = [
                ("attn_q", attention, Self.hidden), ("attn_k", kv, Self.hidden), ("attn_v", kv, Self.hidden),
                ("attn_output", Self.hidden, attention), ("ffn_gate", Self.ffn, Self.hidden),
                ("ffn_up", Self.ffn, Self.hidden), ("ffn_down", Self.hidden, Self.ffn),
            ]
            for norm in [("attn_norm", Self.hidden), ("attn_sub_norm", attention), ("ffn_norm", Self.hidden)] {
                builder.tensors.append(real("blk.\(layer).\(norm.0).weight", [norm.1]))
            }
            builder.tensors.append(real("blk.\(layer).ffn_sub_norm.weight", [Self.ffn]))
            for (role, rows, columns) in projections {
                let name = "blk.\(layer).\(role).weight"
                let values = randomTernary(rows * columns, &generator)
                ternary[name] = values
                let (type, data) = encode(values, rows, columns)
                builder.tensors.append(TestTensor(name: name, dimensions: [columns, rows], type: type, data: data))
            }
        }
        builder.tensors.append(real("output_norm.weight", [Self.hidden]))
        return builder
    }

    static func i2S(_ values: [Int8], _ rows: Int, _ columns: Int) -> (type: UInt32, data: [UInt8]) {
        (36, TestEncoding.i2S(values, scale: 0.5))
    }
}

func loadGGUF(_ builder: GGUFBuilder) throws -> CheckpointContents {
    try withMappedFile(builder.bytes) { try GGUFModelLoader.load(file: $0) }
}

func loadError(_ builder: GGUFBuilder) -> ModelLoadError? {
    do {
        _ = try loadGGUF(builder)
        return nil
    } catch let error as ModelLoadError {
        return error
    } catch {
        return .unsupported("unexpected error \(error)")
    }
}

@Suite struct GGUFLoaderTests {
    @Test func loadsBitNetB158InI2S() throws {
        var model = TinyGGUFModel(architecture: "bitnet-b1.58")
        let contents = try loadGGUF(model.builder(encode: TinyGGUFModel.i2S))
        let config = contents.config
        #expect(config.architecture == "bitnet-b1.58")
        #expect(config.hiddenSize == 256 && config.layerCount == 2 && config.headCount == 4 && config.kvHeadCount == 2)
        #expect(config.headDim == 64 && config.intermediateSize == 256 && config.vocabSize == 16)
        #expect(config.contextLength == 128 && config.ropeTheta == 500_000 && config.rmsNormEpsilon == 1e-5)
        #expect(config.activation == .relu2 && config.tiedEmbeddings)
        #expect(contents.weights.outputHead == nil)
        let down = contents.weights.layers[1].down
        let expected = try #require(model.ternary["blk.1.ffn_down.weight"])
        #expect(down == TernaryMatrix(rows: 256, columns: 256, values: expected, scale: .perTensor(0.5)))

        guard case .gguf(let tokenizer) = contents.tokenizer else {
            Issue.record("expected a GGUF tokenizer")
            return
        }
        #expect(tokenizer.model == "gpt2" && tokenizer.preTokenizer == "llama-bpe")
        #expect(tokenizer.tokens == TinyGGUFModel.tokens && tokenizer.merges == ["t 1"])
        #expect(tokenizer.tokenTypes.count == 16 && tokenizer.tokenTypes[15] == 3)
        #expect(tokenizer.bosTokenID == 13 && tokenizer.eosTokenID == 14 && tokenizer.eotTokenID == nil)
        #expect(tokenizer.addBOS == true)
        // eos, then <|eot_id|> found in the vocabulary although no eot key names it.
        #expect(contents.endOfSequenceTokenIDs == [14, 15])
        #expect(contents.chatTemplate == "{{ messages }}")

        let details = Dictionary(uniqueKeysWithValues: contents.formatDetails.map { ($0.key, $0.value) })
        #expect(details["format"] == "GGUF v3" && details["architecture"] == "bitnet-b1.58")
        #expect(details["name"] == "tiny" && details["file type"] == "40 (mostly i2_s)")
        #expect(details["tensor types"] == "i2_s × 14, f32 × 10")
    }

    /// Mainline llama.cpp's `bitnet`: SiLU by default, an untied head, and `.scale` tensors folded into the
    /// TQ2_0 block scales.
    @Test func loadsMainlineBitnetWithScales() throws {
        var model = TinyGGUFModel(architecture: "bitnet")
        var builder = model.builder { values, _, _ in
            (35, TestEncoding.tq2(values, scales: (0..<values.count / 256).map { Float16(1 + Float($0 % 2)) }))
        }
        builder.tensors.append(
            TestTensor(name: "blk.0.attn_q.scale", dimensions: [1], type: 0, data: TestEncoding.f32([0.25])))
        builder.tensors.append(
            TestTensor(
                name: "output.weight", dimensions: [256, 16], type: 1,
                data: TestEncoding.f16(.init(repeating: 1, count: 4096))))
        let contents = try loadGGUF(builder)
        #expect(contents.config.activation == .silu && !contents.config.tiedEmbeddings)
        #expect(contents.weights.outputHead?.elementTypeName == "f16")
        let query = contents.weights.layers[0].query
        #expect(query.scale(row: 0, column: 0) == 0.25 && query.scale(row: 0, column: 256) == 0.5)
        #expect(contents.weights.layers[1].query.scale(row: 0, column: 256) == 2)
        let expected = try #require(model.ternary["blk.0.attn_q.weight"])
        #expect((0..<256).allSatisfy { query.value(row: 3, column: $0) == expected[3 * 256 + $0] })
    }

    @Test func readsActivationKeyAndOptionalHyperparameters() throws {
        var model = TinyGGUFModel(architecture: "bitnet")
        model.extraMetadata = [("bitnet.hidden_act", .string("relu2")), ("bitnet.attention.key_length", .uint32(32))]
        var builder = model.builder { values, _, _ in
            (34, TestEncoding.tq1(values, scales: .init(repeating: 1, count: values.count / 256)))
        }
        builder.metadata.removeAll { $0.key.hasSuffix("rope.freq_base") }
        // key_length 32 makes the attention 128 wide with 4 heads: the 256-wide tensors no longer fit.
        #expect(loadError(builder) == .shapeMismatch(tensor: "layer 0 q", expected: [128, 256], found: [256, 256]))
        builder.metadata.removeAll { $0.key.hasSuffix("key_length") }
        let contents = try loadGGUF(builder)
        #expect(contents.config.activation == .relu2 && contents.config.ropeTheta == 10_000)
        #expect(contents.config.kvHeadCount == 2 && contents.config.headDim == 64)
    }

    @Test func loadsBitNet25WithRealTernaryWeights() throws {
        var model = TinyGGUFModel(architecture: "bitnet-25")
        let contents = try loadGGUF(
            model.builder { values, _, _ in (1, TestEncoding.f16(values.map { Float($0) * 0.125 })) })
        #expect(contents.config.activation == .relu2)
        #expect(contents.weights.layers[0].gate.scale == .perTensor(0.125))
    }

    @Test func rejectsUnknownArchitecture() throws {
        var model = TinyGGUFModel(architecture: "llama")
        let error = loadError(model.builder(encode: TinyGGUFModel.i2S))
        #expect(error == .unsupported("GGUF architecture llama; onebit runs bitnet-b1.58, bitnet-25, bitnet"))
    }

    @Test func rejectsTensorsThatContradictTheConfig() throws {
        var model = TinyGGUFModel(architecture: "bitnet-b1.58")
        var builder = model.builder(encode: TinyGGUFModel.i2S)
        let index = try #require(builder.tensors.firstIndex { $0.name == "blk.1.attn_k.weight" })
        builder.tensors[index].dimensions = [256, 64]
        builder.tensors[index].data = TestEncoding.i2S(.init(repeating: 0, count: 256 * 64), scale: 1)
        #expect(loadError(builder) == .shapeMismatch(tensor: "layer 1 k", expected: [128, 256], found: [64, 256]))

        var missing = model.builder(encode: TinyGGUFModel.i2S)
        missing.tensors.removeAll { $0.name == "blk.1.ffn_up.weight" }
        #expect(loadError(missing) == .missingTensor("blk.1.ffn_up.weight"))

        var badID = model.builder(encode: TinyGGUFModel.i2S)
        badID.metadata.append(("tokenizer.ggml.eot_token_id", .uint32(16)))
        #expect(
            loadError(badID)
                == .invalidConfig("tokenizer.ggml.eot_token_id = 16 is outside the vocabulary of 16 tokens"))

        var wrongType = model.builder(encode: TinyGGUFModel.i2S)
        wrongType.metadata.removeAll { $0.key == "bitnet-b1.58.block_count" }
        wrongType.metadata.append(("bitnet-b1.58.block_count", .string("2")))
        guard case .malformed(_, let detail) = loadError(wrongType) else {
            Issue.record("a string block count must be malformed")
            return
        }
        #expect(detail.contains("block_count is string, expected an integer"))
    }
}
