import Testing

@testable import OnebitModel

/// Where the fixtures live and what `reference.json` says about the GGUF ones.
enum GGUFFixtures {
    static let directory: String = {
        var components = #filePath.split(separator: "/", omittingEmptySubsequences: false)
        components.removeLast(2)
        return components.joined(separator: "/") + "/Fixtures/models"
    }()

    /// The GGUF entries of `reference.json`: file name, HF source directory and expected configuration.
    static let entries: [(path: String, source: String, config: JSONValue)]? = {
        guard let file = try? MappedFile(path: directory + "/reference.json"),
            let bytes = try? file.bytes(offset: 0, count: file.count, what: "reference.json"),
            let reference = try? JSONValue(parsing: bytes)
        else { return nil }
        return reference["models"]?.arrayValue?.compactMap { model in
            guard model["format"]?.stringValue == "gguf", let path = model["path"]?.stringValue,
                let source = model["source"]?.stringValue, let config = model["config"]
            else { return nil }
            return (path, source, config)
        }
    }()
}

/// The GGUF fixtures of `Tests/Fixtures/models/` (made by `tools/make_fixtures.py` with gguf-py), each compared with
/// the Hugging Face checkpoint it was converted from.
@Suite(.enabled(if: GGUFFixtures.entries != nil, "Tests/Fixtures/models/reference.json is absent"))
struct GGUFFixtureTests {
    @Test(arguments: GGUFFixtures.entries?.map(\.path) ?? [])
    func matchesItsSource(name: String) throws {
        let fixture = try #require(GGUFFixtures.entries?.first { $0.path == name })
        let directory = GGUFFixtures.directory
        let contents = try GGUFModelLoader.load(file: try MappedFile(path: "\(directory)/\(name)"))
        let config = contents.config
        let expected = fixture.config
        #expect(config.hiddenSize == expected["hidden_size"]?.intValue)
        #expect(config.intermediateSize == expected["intermediate_size"]?.intValue)
        #expect(config.headCount == expected["num_attention_heads"]?.intValue)
        #expect(config.kvHeadCount == expected["num_key_value_heads"]?.intValue)
        #expect(config.headDim == expected["head_dim"]?.intValue)
        #expect(config.layerCount == expected["num_hidden_layers"]?.intValue)
        #expect(config.vocabSize == expected["vocab_size"]?.intValue)
        #expect(config.tiedEmbeddings == expected["tie_word_embeddings"]?.boolValue)
        #expect(Double(config.ropeTheta) == expected["rope_theta"]?.doubleValue)
        #expect(config.rmsNormEpsilon == expected["rms_norm_eps"]?.doubleValue.map(Float.init))
        #expect(config.activation == .relu2)
        #expect(contents.endOfSequenceTokenIDs.contains(369) && contents.endOfSequenceTokenIDs.contains(377))
        let details = Dictionary(uniqueKeysWithValues: contents.formatDetails.map { ($0.key, $0.value) })
        #expect(details["format"] == "GGUF v\(expected["gguf_version"]?.intValue ?? 0)")

        let source = try SafetensorsFixture(path: "\(directory)/\(fixture.source)/model.safetensors")
        for (index, layer) in contents.weights.layers.enumerated() {
            let roles = [
                ("self_attn.q_proj", layer.query), ("self_attn.k_proj", layer.key), ("self_attn.v_proj", layer.value),
                ("self_attn.o_proj", layer.output), ("mlp.gate_proj", layer.gate), ("mlp.up_proj", layer.up),
                ("mlp.down_proj", layer.down),
            ]
            for (role, matrix) in roles {
                let name = "model.layers.\(index).\(role)"
                let values = try source.unpackedTernary(name + ".weight")
                let scale = try source.floats(name + ".weight_scale")[0]
                #expect(
                    matrix
                        == TernaryMatrix(
                            rows: matrix.rows, columns: matrix.columns, values: values, scale: .perTensor(scale)),
                    "\(name)")
            }
            #expect(layer.attentionNorm == (try source.floats("model.layers.\(index).input_layernorm.weight")))
            #expect(layer.feedForwardSubNorm == (try source.floats("model.layers.\(index).mlp.ffn_sub_norm.weight")))
        }
        #expect(contents.weights.finalNorm == (try source.floats("model.norm.weight")))

        let embeddings = try source.floats("model.embed_tokens.weight")
        let decoded = (0..<contents.weights.embeddings.rows).flatMap { contents.weights.embeddings.row($0) }
        let exact = ["F32", "BF16"].contains(expected["embedding_type"]?.stringValue ?? "")
        let largest = embeddings.map(\.magnitude).max() ?? 0
        let worst = zip(decoded, embeddings).map { ($0 - $1).magnitude }.max() ?? .infinity
        #expect(decoded.count == embeddings.count)
        #expect(exact ? worst == 0 : worst <= largest / 32, "embedding error \(worst) of \(largest)")
    }
}

/// Just enough of a safetensors reader to compare fixtures: bf16 tensors and packed ternary weights.
struct SafetensorsFixture {
    let file: MappedFile
    let header: JSONValue
    let dataStart: Int

    init(path: String) throws {
        file = try MappedFile(path: path)
        let length = try file.bytes(offset: 0, count: 8, what: "header length").reversed().reduce(0) {
            $0 << 8 | Int($1)
        }
        header = try JSONValue(parsing: try file.bytes(offset: 8, count: length, what: "header"))
        dataStart = 8 + length
    }

    func raw(_ name: String) throws -> (shape: [Int], bytes: [UInt8]) {
        guard let entry = header[name], let offsets = entry["data_offsets"]?.arrayValue?.compactMap(\.intValue),
            let shape = entry["shape"]?.arrayValue?.compactMap(\.intValue)
        else { throw ModelLoadError.missingTensor(name) }
        return (shape, try file.bytes(offset: dataStart + offsets[0], count: offsets[1] - offsets[0], what: name))
    }

    /// A bf16 tensor as floats.
    func floats(_ name: String) throws -> [Float] {
        let bytes = try raw(name).bytes
        return stride(from: 0, to: bytes.count, by: 2).map {
            Float(bfloat16Bits: UInt16(bytes[$0]) | UInt16(bytes[$0 + 1]) << 8)
        }
    }

    /// A packed `uint8 [out / 4, in]` weight: output row `i * out / 4 + p` is bits `2i` of packed row `p`, code - 1.
    func unpackedTernary(_ name: String) throws -> [Int8] {
        let (shape, bytes) = try raw(name)
        let (packedRows, columns) = (shape[0], shape[1])
        var values = [Int8](repeating: 0, count: 4 * bytes.count)
        for i in 0..<4 {
            for p in 0..<packedRows {
                for c in 0..<columns {
                    values[(i * packedRows + p) * columns + c] = Int8((bytes[p * columns + c] >> (2 * i)) & 3) - 1
                }
            }
        }
        return values
    }
}
