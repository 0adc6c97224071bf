import Testing

@testable import OnebitModel

#if canImport(Glibc)
    import Glibc
#endif

/// Truncated, inconsistent and hostile Hugging Face checkpoints fail with an error that names the problem.
@Suite struct BrokenCheckpointTests {
    /// A scratch copy of a fixture directory, with one file replaced.
    final class ScratchDirectory {
        let path: String

        init(copying source: String) throws {
            var template = Array("/tmp/onebit-test-XXXXXX".utf8CString)
            let made = template.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!) }
            path = String(cString: try #require(made))
            for name in ["config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json"] {
                let bytes = try HuggingFaceLoaderTests.read(source + "/" + name)
                try write(name, bytes)
            }
        }

        func write(_ name: String, _ bytes: [UInt8]) throws {
            let file = try #require(fopen(path + "/" + name, "wb"))
            defer { fclose(file) }
            #expect(fwrite(bytes, 1, bytes.count, file) == bytes.count)
        }

        func read(_ name: String) throws -> [UInt8] { try HuggingFaceLoaderTests.read(path + "/" + name) }

        deinit {
            for name in ["config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json"] {
                unlink(path + "/" + name)
            }
            rmdir(path)
        }
    }

    func scratch() throws -> ScratchDirectory {
        try ScratchDirectory(copying: HuggingFaceLoaderTests.fixtures + "/hf-packed-autobitlinear")
    }

    func loadError(_ directory: ScratchDirectory) -> ModelLoadError? {
        do {
            _ = try HuggingFaceCheckpointLoader.load(directory: directory.path)
            return nil
        } catch {
            return error
        }
    }

    @Test func truncatedWeights() throws {
        let directory = try scratch()
        let weights = try directory.read("model.safetensors")
        for cut in [0, 4, 9, weights.count / 2, weights.count - 1] {
            try directory.write("model.safetensors", Array(weights.prefix(cut)))
            let error = try #require(loadError(directory), "cut at \(cut) must fail")
            #expect(
                "\(error)".contains("truncated") || "\(error)".contains("malformed"), "cut at \(cut): \(error)")
        }
    }

    @Test func lyingHeaderLength() throws {
        let directory = try scratch()
        var weights = try directory.read("model.safetensors")
        weights.replaceSubrange(0..<8, with: [0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x7F])
        try directory.write("model.safetensors", weights)
        let error = try #require(loadError(directory))
        #expect("\(error)".contains("header length"))
    }

    @Test func tensorOffsetsBeyondTheFile() throws {
        let directory = try scratch()
        let header: [UInt8] = Array(
            #"{"model.embed_tokens.weight":{"dtype":"BF16","shape":[380,64],"data_offsets":[0,48640]}}"#.utf8)
        var file = withUnsafeBytes(of: UInt64(header.count).littleEndian) { Array($0) }
        file += header + [0, 0, 0, 0]
        try directory.write("model.safetensors", file)
        let error = try #require(loadError(directory))
        #expect("\(error)".contains("truncated"))
    }

    @Test func sizeThatDisagreesWithTheShape() throws {
        let directory = try scratch()
        let header: [UInt8] = Array(#"{"x":{"dtype":"F32","shape":[4,4],"data_offsets":[0,8]}}"#.utf8)
        var file = withUnsafeBytes(of: UInt64(header.count).littleEndian) { Array($0) }
        file += header + [UInt8](repeating: 0, count: 8)
        try directory.write("model.safetensors", file)
        let error = try #require(loadError(directory))
        #expect("\(error)".contains("need 64 bytes"))
    }

    @Test func configThatIsNotJSON() throws {
        let directory = try scratch()
        try directory.write("config.json", Array("{\"hidden_size\": 64,".utf8))
        let error = try #require(loadError(directory))
        #expect("\(error)".contains("config.json"))
    }

    @Test func configWithImpossibleHeads() throws {
        let directory = try scratch()
        var config = String(decoding: try directory.read("config.json"), as: UTF8.self)
        config = config.replacing("\"num_key_value_heads\": 2", with: "\"num_key_value_heads\": 3")
        try directory.write("config.json", Array(config.utf8))
        let error = try #require(loadError(directory))
        #expect("\(error)".contains("KV heads"))
    }

    @Test func configWithWrongHiddenSize() throws {
        let directory = try scratch()
        var config = String(decoding: try directory.read("config.json"), as: UTF8.self)
        config = config.replacing("\"hidden_size\": 64", with: "\"hidden_size\": 128")
        try directory.write("config.json", Array(config.utf8))
        let error = try #require(loadError(directory))
        #expect("\(error)".contains("shape"), "\(error)")
    }

    @Test func otherArchitecture() throws {
        let directory = try scratch()
        var config = String(decoding: try directory.read("config.json"), as: UTF8.self)
        config = config.replacing("BitNetForCausalLM", with: "LlamaForCausalLM").replacing(
            "\"bitnet\"", with: "\"llama\"")
        try directory.write("config.json", Array(config.utf8))
        let error = try #require(loadError(directory))
        #expect("\(error)".contains("LlamaForCausalLM"))
    }

    @Test func missingDirectory() {
        #expect(throws: ModelLoadError.self) {
            try ModelLoader.load(path: "/nonexistent/onebit/model")
        }
    }
}

extension HuggingFaceLoaderTests {
    static func read(_ path: String) throws -> [UInt8] {
        let file = try MappedFile(path: path)
        return try file.bytes(offset: 0, count: file.count, what: "test file")
    }
}
