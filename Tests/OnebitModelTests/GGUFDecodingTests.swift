import Testing

@testable import OnebitModel

@Suite struct GGUFDecodingTests {
    /// Decodes the single tensor `tensor` of a file built around it.
    func decode<R>(_ tensor: TestTensor, _ body: (GGUFTensorDecoder, GGUFTensorInfo) throws -> R) throws -> R {
        let bytes = GGUFBuilder(tensors: [tensor]).bytes
        return try withMappedFile(bytes) { file in
            let decoder = GGUFTensorDecoder(gguf: try GGUFFile(file: file))
            return try body(decoder, try decoder.info(tensor.name))
        }
    }

    func expectValues(_ matrix: TernaryMatrix, _ values: [Int8], rows: Int, columns: Int) {
        #expect(matrix.rows == rows && matrix.columns == columns)
        for row in 0..<rows {
            for column in 0..<columns where matrix.value(row: row, column: column) != values[row * columns + column] {
                Issue.record("weight (\(row), \(column)) differs")
                return
            }
        }
    }

    /// Row-major weight counts that are and are not multiples of the 128-weight I2_S block.
    @Test(arguments: [(4, 128), (3, 20), (5, 64), (2, 132), (7, 256)])
    func decodesI2S(rows: Int, columns: Int) throws {
        var generator = SplitMix64(state: UInt64(rows * 1000 + columns))
        let values = randomTernary(rows * columns, &generator)
        let data = TestEncoding.i2S(values, scale: 0.625)
        #expect(data.count == rows * columns / 4 + 32)
        let tensor = TestTensor(name: "w", dimensions: [columns, rows], type: 36, data: data)
        let matrix = try decode(tensor) { try $0.ternary($1) }
        expectValues(matrix, values, rows: rows, columns: columns)
        #expect(matrix.scale == .perTensor(0.625))
    }

    @Test func rejectsI2SCodeThree() throws {
        var data = TestEncoding.i2S([Int8](repeating: 0, count: 128), scale: 1)
        data[17] = 0b0111_0101
        let tensor = TestTensor(name: "blk.0.attn_q.weight", dimensions: [128, 1], type: 36, data: data)
        #expect(throws: ModelLoadError.notTernary(tensor: "blk.0.attn_q.weight")) {
            try decode(tensor) { try $0.ternary($1) }
        }
    }

    @Test func decodesTQ2() throws {
        let (rows, columns) = (3, 512)
        var generator = SplitMix64(state: 2)
        let values = randomTernary(rows * columns, &generator)
        let scales = (0..<rows * columns / 256).map { Float16(0.5 + Float($0) / 8) }
        let tensor = TestTensor(
            name: "w", dimensions: [columns, rows], type: 35, data: TestEncoding.tq2(values, scales: scales))
        let matrix = try decode(tensor) { try $0.ternary($1) }
        expectValues(matrix, values, rows: rows, columns: columns)
        #expect(matrix.scale == .perBlock(blockSize: 256, scales.map(Float.init)))
        #expect(matrix.scale(row: 2, column: 300) == Float(scales[5]))
    }

    @Test func rejectsTQ2CodeThree() throws {
        var data = TestEncoding.tq2([Int8](repeating: 1, count: 256), scales: [1])
        data[40] |= 0b1100_0000
        let tensor = TestTensor(name: "w", dimensions: [256, 1], type: 35, data: data)
        #expect(throws: ModelLoadError.notTernary(tensor: "w")) { try decode(tensor) { try $0.ternary($1) } }
    }

    @Test func decodesTQ1() throws {
        let (rows, columns) = (2, 768)
        var generator = SplitMix64(state: 1)
        let values = randomTernary(rows * columns, &generator)
        let scales = [Float16](repeating: 0.75, count: rows * columns / 256)
        let tensor = TestTensor(
            name: "w", dimensions: [columns, rows], type: 34, data: TestEncoding.tq1(values, scales: scales))
        let matrix = try decode(tensor) { try $0.ternary($1) }
        expectValues(matrix, values, rows: rows, columns: columns)
        // Equal block scales collapse to one per-tensor scale.
        #expect(matrix.scale == .perTensor(0.75))
    }

    /// Converters that ternarize and write real numbers: every value is 0 or ±s.
    @Test(arguments: [UInt32(0), 1, 30])
    func decodesRealTernary(type: UInt32) throws {
        var generator = SplitMix64(state: 3)
        let values = randomTernary(4 * 8, &generator)
        let scale: Float = 0.375
        let reals = values.map { Float($0) * scale }
        let data =
            switch type {
            case 0: TestEncoding.f32(reals)
            case 1: TestEncoding.f16(reals)
            default: TestEncoding.bf16(reals)
            }
        let matrix = try decode(TestTensor(name: "w", dimensions: [8, 4], type: type, data: data)) {
            try $0.ternary($1)
        }
        expectValues(matrix, values, rows: 4, columns: 8)
        #expect(matrix.scale == .perTensor(scale))
    }

    @Test func rejectsRealsThatAreNotTernary() throws {
        for reals in [[0.5, -0.5, 0.25, 0], [0.5, 0.5, 0.5, Float.nan]] as [[Float]] {
            let tensor = TestTensor(name: "w", dimensions: [4, 1], type: 0, data: TestEncoding.f32(reals))
            #expect(throws: ModelLoadError.notTernary(tensor: "w")) { try decode(tensor) { try $0.ternary($1) } }
        }
    }

    @Test func decodesQ8Zero() throws {
        var generator = SplitMix64(state: 4)
        var data: [UInt8] = []
        var expected: [Float] = []
        for block in 0..<4 {
            let d = Float16(Float(block + 1) / 64)
            let q = (0..<32).map { _ in Int8.random(in: -128...127, using: &generator) }
            data += TestEncoding.littleEndian(d.bitPattern) + q.map { UInt8(bitPattern: $0) }
            expected += q.map { Float(d) * Float($0) }
        }
        let tensor = TestTensor(name: "token_embd.weight", dimensions: [64, 2], type: 8, data: data)
        let matrix = try decode(tensor) { try $0.dense($1) }
        #expect(matrix.rows == 2 && matrix.columns == 64)
        #expect(matrix.storage == .float32(expected))
    }

    /// Q6_K against its documented formula: for each 128-element half and l < 32, elements l, l+32, l+64, l+96
    /// take the low or high nibble of ql[l] / ql[l+32], two bits of qh[l], and scales l/16 + 0, 2, 4, 6.
    @Test func decodesQ6K() throws {
        var generator = SplitMix64(state: 5)
        var data: [UInt8] = []
        var expected: [Float] = []
        for _ in 0..<2 {
            let ql = (0..<128).map { _ in UInt8.random(in: 0...255, using: &generator) }
            let qh = (0..<64).map { _ in UInt8.random(in: 0...255, using: &generator) }
            let scales = (0..<16).map { _ in Int8.random(in: -128...127, using: &generator) }
            let d = Float16(Float.random(in: -0.01...0.01, using: &generator))
            data += ql + qh + scales.map { UInt8(bitPattern: $0) } + TestEncoding.littleEndian(d.bitPattern)
            var block = [Float](repeating: 0, count: 256)
            for half in 0..<2 {
                let (l0, h0, s0) = (64 * half, 32 * half, 8 * half)
                for l in 0..<32 {
                    let q1 = Int(ql[l0 + l] & 0xF | ((qh[h0 + l] >> 0) & 3) << 4) - 32
                    let q2 = Int(ql[l0 + l + 32] & 0xF | ((qh[h0 + l] >> 2) & 3) << 4) - 32
                    let q3 = Int(ql[l0 + l] >> 4 | ((qh[h0 + l] >> 4) & 3) << 4) - 32
                    let q4 = Int(ql[l0 + l + 32] >> 4 | ((qh[h0 + l] >> 6) & 3) << 4) - 32
                    let s = s0 + l / 16
                    block[128 * half + l] = Float(d) * Float(scales[s]) * Float(q1)
                    block[128 * half + l + 32] = Float(d) * Float(scales[s + 2]) * Float(q2)
                    block[128 * half + l + 64] = Float(d) * Float(scales[s + 4]) * Float(q3)
                    block[128 * half + l + 96] = Float(d) * Float(scales[s + 6]) * Float(q4)
                }
            }
            expected += block
        }
        let tensor = TestTensor(name: "token_embd.weight", dimensions: [256, 2], type: 14, data: data)
        let matrix = try decode(tensor) { try $0.dense($1) }
        #expect(matrix.storage == .float32(expected))
    }

    @Test func keepsHalfPrecisionDenseAndReadsVectors() throws {
        let reals: [Float] = [1, -2, 0.5, 3, 0.25, -1]
        let f16 = try decode(TestTensor(name: "e", dimensions: [3, 2], type: 1, data: TestEncoding.f16(reals))) {
            try $0.dense($1)
        }
        #expect(f16.elementTypeName == "f16" && f16.row(1) == [3, 0.25, -1])
        let bf16 = try decode(TestTensor(name: "e", dimensions: [3, 2], type: 30, data: TestEncoding.bf16(reals))) {
            try $0.dense($1)
        }
        #expect(bf16.elementTypeName == "bf16" && bf16.row(0) == [1, -2, 0.5])
        let norm = try decode(TestTensor(name: "n", dimensions: [6], type: 30, data: TestEncoding.bf16(reals))) {
            try $0.vector($1)
        }
        #expect(norm == reals)
    }

    @Test func rejectsTypesARoleCannotUse() throws {
        let q4 = TestTensor(
            name: "token_embd.weight", dimensions: [32, 1], type: 2, data: [UInt8](repeating: 0, count: 18))
        #expect(throws: ModelLoadError.unsupportedTensorType(tensor: "token_embd.weight", type: "q4_0")) {
            try decode(q4) { try $0.dense($1) }
        }
        let i2s = TestTensor(name: "n", dimensions: [128], type: 36, data: [UInt8](repeating: 0x55, count: 64))
        #expect(throws: ModelLoadError.unsupportedTensorType(tensor: "n", type: "i2_s")) {
            try decode(i2s) { try $0.vector($1) }
        }
        let vector = TestTensor(name: "v", dimensions: [8], type: 0, data: [UInt8](repeating: 0, count: 32))
        #expect(throws: ModelLoadError.self) { try decode(vector) { try $0.ternary($1) } }
    }
}
