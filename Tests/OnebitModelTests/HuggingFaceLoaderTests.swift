import Testing

@testable import OnebitModel

/// Loading Hugging Face checkpoints: the committed fixtures, and every way a directory can be broken.
@Suite struct HuggingFaceLoaderTests {
    static let fixtures: String = {
        var parts = "\(#filePath)".split(separator: "/", omittingEmptySubsequences: false)
        parts.removeLast(2)
        return parts.joined(separator: "/") + "/Fixtures/models"
    }()

    @Test func packedAutobitlinearMultipliesTheScale() throws {
        let contents = try HuggingFaceCheckpointLoader.load(directory: Self.fixtures + "/hf-packed-autobitlinear")
        let masters = try HuggingFaceCheckpointLoader.load(directory: Self.fixtures + "/hf-bf16-masters")
        let packed = contents.weights.layers[0].query
        let ternarized = masters.weights.layers[0].query
        // Same seed: the packed codes are the masters ternarized, and both scales are the absmean.
        #expect(packed.codes == ternarized.codes)
        guard case .perTensor(let a) = packed.scale, case .perTensor(let b) = ternarized.scale else {
            Issue.record("expected per-tensor scales")
            return
        }
        #expect(abs(a - b) / b < 0.01)
        #expect(contents.config.tiedEmbeddings && contents.weights.outputHead == nil)
    }

    @Test func shardedMastersLoad() throws {
        let contents = try HuggingFaceCheckpointLoader.load(directory: Self.fixtures + "/hf-bf16-masters")
        #expect(contents.formatDetails.contains { $0.key == "shards" })
        #expect(contents.endOfSequenceTokenIDs.count == 2)
    }

    @Test func untiedBitlinearHasItsOwnHead() throws {
        let contents = try HuggingFaceCheckpointLoader.load(directory: Self.fixtures + "/hf-packed-bitlinear-untied")
        #expect(contents.weights.outputHead != nil)
        #expect(contents.config.vocabSize == contents.weights.head.rows)
    }

    @Test func unpackingFollowsTransformersRowOrder() throws {
        // Packed row r holds rows r, r + R, r + 2R, r + 3R (R = rows / 4) in bit pairs 0, 1, 2, 3.
        let rows = 8
        let columns = 4
        var values = [Int8](repeating: 0, count: rows * columns)
        for i in values.indices { values[i] = Int8(i % 3) - 1 }
        var packed = [UInt8](repeating: 0, count: rows / 4 * columns)
        for row in 0..<rows {
            for column in 0..<columns {
                let code = UInt8(values[row * columns + column] + 1)
                packed[(row % 2) * columns + column] |= code << UInt8(2 * (row / 2))
            }
        }
        let matrix = try HuggingFaceCheckpointLoader.unpack(
            packed, name: "w", rows: rows, columns: columns, scale: 1)
        for row in 0..<rows {
            for column in 0..<columns {
                #expect(matrix.value(row: row, column: column) == values[row * columns + column])
            }
        }
        packed[0] = 0xFF
        #expect(throws: ModelLoadError.notTernary(tensor: "w")) {
            try HuggingFaceCheckpointLoader.unpack(packed, name: "w", rows: rows, columns: columns, scale: 1)
        }
    }
}
