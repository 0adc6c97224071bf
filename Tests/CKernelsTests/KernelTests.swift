import CKernels
import OnebitCPU
import OnebitModel
import Testing

/// A small seeded generator, so a failing case can be rerun exactly.
struct SplitMix: RandomNumberGenerator {
    var state: UInt64

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// Random canonical ternary codes (each 2-bit field 0, 1 or 2) for `rows` x `cols`.
func randomCodes(rows: Int, cols: Int, using rng: inout SplitMix) -> [UInt8] {
    (0..<rows * cols / 4).map { _ in
        var byte: UInt8 = 0
        for k in 0..<4 { byte |= UInt8.random(in: 0...2, using: &rng) << UInt8(2 * k) }
        return byte
    }
}

/// Every instruction set this machine can run; each is compared with the scalar reference.
let instructionSets = CPUInstructionSet.allCases.filter(\.isSupported)

/// In-dimensions that are multiples of 4 but not of 32 or 256 (padding paths), full blocks, and real model widths.
let columnCounts = [4, 12, 100, 256, 276, 512, 1028, 3200, 6912]

@Suite struct TernaryKernelTests {
    @Test(arguments: instructionSets, columnCounts)
    func integerDotProductsMatchTheReference(_ isa: CPUInstructionSet, cols: Int) {
        var rng = SplitMix(state: UInt64(cols))
        for (rows, tokens) in [(1, 1), (5, 1), (7, 3), (9, 6), (4, 17)] {
            let codes = randomCodes(rows: rows, cols: cols, using: &rng)
            let q = (0..<tokens * cols).map { _ in Int8.random(in: -128...127, using: &rng) }
            var packed = [UInt8](repeating: 0xFF, count: rows * ob_packed_row_bytes(cols))
            ob_ternary_pack(codes, rows, cols, &packed)
            var expected = [Int32](repeating: 0, count: rows * tokens)
            ob_ternary_dot_reference(codes, cols, 0, rows, rows, q, tokens, &expected)
            // Rows in two ranges, as two threads would split them.
            var actual = [Int32](repeating: -1, count: rows * tokens)
            let split = rows / 2
            ob_ternary_dot_packed(isa.rawValue, packed, cols, 0, split, rows, q, tokens, &actual)
            ob_ternary_dot_packed(isa.rawValue, packed, cols, split, rows, rows, q, tokens, &actual)
            #expect(actual == expected, "\(isa) rows \(rows) tokens \(tokens) cols \(cols)")
        }
    }

    @Test(arguments: instructionSets)
    func extremeActivationsDoNotSaturate(_ isa: CPUInstructionSet) {
        let (rows, cols) = (3, 1028)
        // All +1 weights against -128 everywhere, and all -1 against -128: the largest sums either way.
        for code: UInt8 in [0b1010_1010, 0] {
            let codes = [UInt8](repeating: code, count: rows * cols / 4)
            let q = [Int8](repeating: -128, count: cols)
            var packed = [UInt8](repeating: 0, count: rows * ob_packed_row_bytes(cols))
            ob_ternary_pack(codes, rows, cols, &packed)
            var expected = [Int32](repeating: 0, count: rows)
            var actual = [Int32](repeating: 0, count: rows)
            ob_ternary_dot_reference(codes, cols, 0, rows, rows, q, 1, &expected)
            ob_ternary_dot_packed(isa.rawValue, packed, cols, 0, rows, rows, q, 1, &actual)
            #expect(actual == expected)
        }
    }

    @Test(arguments: instructionSets, [0, 256, 512])
    func matrixProductsAreBitIdentical(_ isa: CPUInstructionSet, blockSize: Int) {
        var rng = SplitMix(state: 7 + UInt64(blockSize))
        for cols in [12, 276, 512, 1024, 3200] where blockSize == 0 || cols % blockSize == 0 {
            for (rows, tokens) in [(1, 1), (6, 5), (13, 70)] {
                let codes = randomCodes(rows: rows, cols: cols, using: &rng)
                let q = (0..<tokens * cols).map { _ in Int8.random(in: -128...127, using: &rng) }
                let actScales = (0..<tokens).map { _ in Float.random(in: 0.5...300, using: &rng) }
                let wScales = (0..<(blockSize == 0 ? 1 : rows * cols / blockSize)).map { _ in
                    Float.random(in: 0.01...2, using: &rng)
                }
                var packed = [UInt8](repeating: 0, count: rows * ob_packed_row_bytes(cols))
                ob_ternary_pack(codes, rows, cols, &packed)
                var expected = [Float](repeating: 0, count: rows * tokens)
                var actual = [Float](repeating: .nan, count: rows * tokens)
                ob_ternary_matmul_reference(
                    codes, cols, 0, rows, rows, wScales, blockSize, q, actScales, tokens, &expected)
                ob_ternary_matmul_packed(
                    isa.rawValue, packed, cols, 0, rows, rows, wScales, blockSize, q, actScales, tokens, &actual)
                #expect(actual.map(\.bitPattern) == expected.map(\.bitPattern), "\(isa) \(rows)x\(cols) t\(tokens)")
            }
        }
    }
}

@Suite struct DenseKernelTests {
    /// Summing `n` products in another order moves a float sum by at most about `2 n ε Σ|products|`; the bound
    /// below uses that, so it holds for any order and catches any wrong element.
    static func withinReorderingBound(_ a: Float, _ b: Float, magnitude: Float, count: Int) -> Bool {
        abs(a - b) <= 2 * Float(count) * Float.ulpOfOne * magnitude + Float.leastNormalMagnitude
    }

    @Test(arguments: instructionSets, [4, 12, 100, 276, 2560])
    func bfloat16HeadMatchesTheReference(_ isa: CPUInstructionSet, cols: Int) {
        var rng = SplitMix(state: 11)
        let rows = 37
        let floats = (0..<rows * cols).map { _ in Float.random(in: -1...1, using: &rng) }
        let w = floats.map { UInt16($0.bitPattern >> 16) }
        let x = (0..<cols).map { _ in Float.random(in: -3...3, using: &rng) }
        var expected = [Float](repeating: 0, count: rows)
        var actual = [Float](repeating: 0, count: rows)
        ob_dense_gemv_bf16(w, cols, 0, rows, x, &expected)
        ob_bf16_gemv(isa.rawValue, w, cols, 0, 20, x, &actual)
        ob_bf16_gemv(isa.rawValue, w, cols, 20, rows, x, &actual)
        for r in 0..<rows {
            let magnitude = (0..<cols).reduce(Float(0)) { $0 + abs(Float(bfloat16Bits: w[r * cols + $1]) * x[$1]) }
            #expect(Self.withinReorderingBound(actual[r], expected[r], magnitude: magnitude, count: cols))
        }
    }

    @Test(arguments: instructionSets, [(4, 1), (12, 3), (100, 5), (276, 9), (2560, 4)])
    func batchedBfloat16HeadMatchesOneToken(_ isa: CPUInstructionSet, shape: (cols: Int, batch: Int)) {
        var rng = SplitMix(state: 13)
        let (cols, batch) = shape
        let rows = 37
        let w = (0..<rows * cols).map { _ in UInt16(Float.random(in: -1...1, using: &rng).bitPattern >> 16) }
        let x = (0..<batch * cols).map { _ in Float.random(in: -3...3, using: &rng) }
        var actual = [Float](repeating: 0, count: batch * rows)
        // Odd row ranges, as threads would take them; each token's logits are those of the one-token kernel over the
        // same ranges, bit for bit (a batched step must not change any sequence's logits).
        ob_bf16_gemm(isa.rawValue, w, cols, 0, 19, x, batch, rows, &actual)
        ob_bf16_gemm(isa.rawValue, w, cols, 19, rows, x, batch, rows, &actual)
        for b in 0..<batch {
            var expected = [Float](repeating: 0, count: rows)
            Array(x[b * cols..<(b + 1) * cols]).withUnsafeBufferPointer { xb in
                ob_bf16_gemv(isa.rawValue, w, cols, 0, 19, xb.baseAddress, &expected)
                ob_bf16_gemv(isa.rawValue, w, cols, 19, rows, xb.baseAddress, &expected)
            }
            #expect(actual[b * rows..<(b + 1) * rows].map(\.bitPattern) == expected.map(\.bitPattern))
        }
    }

    /// Random bf16 head rows and their int8 copy (`ob_int8_rows_from_bf16`): codes, row scales and row sums.
    private static func int8Head(rows: Int, cols: Int, using rng: inout SplitMix)
        -> (bf16: [UInt16], codes: [Int8], scales: [Float], sums: [Int32])
    {
        let w = (0..<rows * cols).map { _ in UInt16(Float.random(in: -0.2...0.2, using: &rng).bitPattern >> 16) }
        var codes = [Int8](repeating: 0, count: rows * cols)
        var scales = [Float](repeating: 0, count: rows)
        var sums = [Int32](repeating: 0, count: rows)
        ob_int8_rows_from_bf16(w, rows, cols, &codes, &scales, &sums)
        return (w, codes, scales, sums)
    }

    @Test(arguments: instructionSets, [4, 12, 100, 276, 2560])
    func int8HeadIsExactAcrossInstructionSets(_ isa: CPUInstructionSet, cols: Int) {
        var rng = SplitMix(state: 13)
        let rows = 21
        let (w, codes, scales, sums) = Self.int8Head(rows: rows, cols: cols, using: &rng)
        for i in 0..<rows * cols {
            let error = abs(Float(codes[i]) * scales[i / cols] - Float(bfloat16Bits: w[i]))
            #expect(error <= scales[i / cols] / 2 * 1.0001)
        }
        let xq = (0..<cols).map { _ in Int8.random(in: -128...127, using: &rng) }
        var expected = [Float](repeating: 0, count: rows)
        var actual = [Float](repeating: 0, count: rows)
        ob_int8_gemv(CPUInstructionSet.scalar.rawValue, codes, scales, sums, cols, 0, rows, xq, 42.5, &expected)
        ob_int8_gemv(isa.rawValue, codes, scales, sums, cols, 0, 5, xq, 42.5, &actual)
        ob_int8_gemv(isa.rawValue, codes, scales, sums, cols, 5, rows, xq, 42.5, &actual)
        #expect(actual.map(\.bitPattern) == expected.map(\.bitPattern))
    }

    @Test(arguments: instructionSets, [(4, 1), (12, 3), (100, 9), (276, 17), (2560, 4)])
    func batchedInt8HeadMatchesOneToken(_ isa: CPUInstructionSet, shape: (cols: Int, batch: Int)) {
        var rng = SplitMix(state: 17)
        let (cols, batch) = shape
        let rows = 37
        let (_, codes, scales, sums) = Self.int8Head(rows: rows, cols: cols, using: &rng)
        let xq = (0..<batch * cols).map { _ in Int8.random(in: -128...127, using: &rng) }
        let xScales = (0..<batch).map { _ in Float.random(in: 1...100, using: &rng) }
        var actual = [Float](repeating: 0, count: batch * rows)
        // Odd row ranges, an odd last pair and more tokens than a block of eight: each token's logits are the
        // one-token kernel's, bit for bit.
        ob_int8_gemm(isa.rawValue, codes, scales, sums, cols, 0, 19, xq, xScales, batch, rows, &actual)
        ob_int8_gemm(isa.rawValue, codes, scales, sums, cols, 19, rows, xq, xScales, batch, rows, &actual)
        for b in 0..<batch {
            var expected = [Float](repeating: 0, count: rows)
            Array(xq[b * cols..<(b + 1) * cols]).withUnsafeBufferPointer { xb in
                ob_int8_gemv(
                    CPUInstructionSet.scalar.rawValue, codes, scales, sums, cols, 0, rows, xb.baseAddress, xScales[b],
                    &expected)
            }
            #expect(actual[b * rows..<(b + 1) * rows].map(\.bitPattern) == expected.map(\.bitPattern))
        }
    }
}

/// Attention over a contiguous cache as the CPU backend runs it: `ob_attention_units` over all `tokens * kvHeads *
/// splits` units, cut in two ranges at `units / parts` as two threads would take them, then the merge of the splits.
func attentionInUnits(
    _ isa: CPUInstructionSet, q: [Float], k: [Float], v: [Float], rowStride: Int, headStride: Int, tokens: Int,
    heads: Int, kvHeads: Int, headDim: Int, positions: [Int32], scale: Float, splits: Int, parts: Int = 2
) -> [Float] {
    var out = [Float](repeating: 0, count: tokens * heads * headDim)
    var partial = [Float](repeating: 0, count: tokens * heads * splits * (headDim + 2))
    let units = tokens * kvHeads * splits
    for range in [0..<units / parts, units / parts..<units] {
        ob_attention_units(
            isa.rawValue, q, k, v, rowStride, headStride, tokens, heads, kvHeads, headDim, positions, scale, splits,
            range.lowerBound, range.upperBound, &partial, &out)
    }
    if splits > 1 { ob_attention_merge(tokens, heads, headDim, splits, partial, &out) }
    return out
}

@Suite struct AttentionKernelTests {
    @Test(arguments: instructionSets, [(8, 2, 16), (20, 5, 128), (4, 4, 12), (6, 1, 40)])
    func unitsMatchTheReference(_ isa: CPUInstructionSet, shape: (heads: Int, kvHeads: Int, headDim: Int)) {
        var rng = SplitMix(state: 17)
        let (heads, kvHeads, headDim) = shape
        let tokens = 5
        // Lengths of one position to several softmax blocks of 64, not multiples of it.
        let positions: [Int32] = [130, 0, 63, 199, 67]
        let capacity = 200
        let q = (0..<tokens * heads * headDim).map { _ in Float.random(in: -1...1, using: &rng) }
        let k = (0..<capacity * kvHeads * headDim).map { _ in Float.random(in: -1...1, using: &rng) }
        let v = (0..<capacity * kvHeads * headDim).map { _ in Float.random(in: -1...1, using: &rng) }
        let scale = 1 / Float(headDim).squareRoot()
        var scores = [Float](repeating: 0, count: capacity)
        var expected = [Float](repeating: 0, count: tokens * heads * headDim)
        ob_attention(q, k, v, tokens, heads, kvHeads, headDim, positions, scale, &scores, &expected)
        // The same cache head-major, [kv_heads][capacity][head_dim].
        let headMajor = { (cache: [Float]) in
            (0..<kvHeads * capacity * headDim).map { i in
                let (g, p, d) = (i / (capacity * headDim), i / headDim % capacity, i % headDim)
                return cache[(p * kvHeads + g) * headDim + d]
            }
        }
        let layouts = [(k, v, kvHeads * headDim, headDim), (headMajor(k), headMajor(v), headDim, capacity * headDim)]
        // Every split count, the units cut in two ranges as two threads would take them, in both layouts.
        for splits in [1, 2, 3, 7] {
            for (k, v, rowStride, headStride) in layouts {
                let actual = attentionInUnits(
                    isa, q: q, k: k, v: v, rowStride: rowStride, headStride: headStride, tokens: tokens, heads: heads,
                    kvHeads: kvHeads, headDim: headDim, positions: positions, scale: scale, splits: splits)
                let worst = zip(actual, expected).map { abs($0 - $1) }.max() ?? 0
                #expect(worst < 1e-5, "splits \(splits), row stride \(rowStride): largest difference \(worst)")
            }
        }
    }
}

@Suite struct PagedAttentionKernelTests {
    /// A paged copy of position-major rows: position p's row goes to block `table[p / blockPositions]`, whose
    /// blocks lie `blockStride` floats apart; unused blocks and the gaps between them hold garbage.
    static func paged(
        _ rows: [Float], width: Int, table: [Int32], blockPositions: Int, blockStride: Int, using rng: inout SplitMix
    ) -> [Float] {
        var out = (0..<(Int(table.max()!) + 1) * blockStride).map { _ in Float.random(in: 50...60, using: &rng) }
        for p in 0..<rows.count / width {
            let at = Int(table[p / blockPositions]) * blockStride + p % blockPositions * width
            for i in 0..<width { out[at + i] = rows[p * width + i] }
        }
        return out
    }

    @Test(arguments: instructionSets, [(8, 2, 16), (20, 5, 128), (4, 4, 12), (6, 1, 40), (9, 3, 20), (10, 2, 100)])
    func pagedUnitsMatchTheReferenceAndTheContiguousUnits(
        _ isa: CPUInstructionSet, shape: (heads: Int, kvHeads: Int, headDim: Int)
    ) {
        var rng = SplitMix(state: 29)
        let (heads, kvHeads, headDim) = shape
        let width = kvHeads * headDim
        let tokens = 6
        // One position, a partial first block, exact block ends, and many blocks with a partial last one.
        let positions: [Int32] = [0, 4, 15, 130, 199, 63]
        let capacity = 200
        let q = (0..<tokens * heads * headDim).map { _ in Float.random(in: -1...1, using: &rng) }
        let k = (0..<capacity * width).map { _ in Float.random(in: -1...1, using: &rng) }
        let v = (0..<capacity * width).map { _ in Float.random(in: -1...1, using: &rng) }
        let scale = 1 / Float(headDim).squareRoot()
        for blockPositions in [1, 5, 16, 33] {
            let blocks = (capacity + blockPositions - 1) / blockPositions
            // Blocks scattered over a larger pool, in no order, with a gap after each block's rows.
            let table = (0..<blocks).map { Int32($0 * 7 % (blocks * 2 + 1)) }
            let blockStride = blockPositions * width + 3
            let pagedK = Self.paged(
                k, width: width, table: table, blockPositions: blockPositions, blockStride: blockStride, using: &rng)
            let pagedV = Self.paged(
                v, width: width, table: table, blockPositions: blockPositions, blockStride: blockStride, using: &rng)
            var scores = [Float](repeating: 0, count: capacity)
            var expected = [Float](repeating: 0, count: tokens * heads * headDim)
            ob_attention_paged(
                q, pagedK, pagedV, table, blockPositions, blockStride, tokens, heads, kvHeads, headDim, positions,
                scale, &scores, &expected)
            var contiguousReference = [Float](repeating: 0, count: tokens * heads * headDim)
            ob_attention(q, k, v, tokens, heads, kvHeads, headDim, positions, scale, &scores, &contiguousReference)
            #expect(expected == contiguousReference, "the paged reference reads the same rows")
            for splits in [1, 2, 3, 7] {
                let contiguous = attentionInUnits(
                    isa, q: q, k: k, v: v, rowStride: width, headStride: headDim, tokens: tokens, heads: heads,
                    kvHeads: kvHeads, headDim: headDim, positions: positions, scale: scale, splits: splits, parts: 3)
                var actual = [Float](repeating: 0, count: tokens * heads * headDim)
                var partial = [Float](repeating: 0, count: tokens * heads * splits * (headDim + 2))
                let units = tokens * kvHeads * splits
                for range in [0..<units / 2, units / 2..<units] {
                    ob_attention_paged_units(
                        isa.rawValue, q, pagedK, pagedV, table, blockPositions, blockStride, width, headDim, tokens,
                        heads, kvHeads, headDim, positions, scale, splits, range.lowerBound, range.upperBound,
                        &partial, &actual)
                }
                if splits > 1 { ob_attention_merge(tokens, heads, headDim, splits, partial, &actual) }
                let worst = zip(actual, expected).map { abs($0 - $1) }.max() ?? 0
                #expect(worst < 1e-5, "block \(blockPositions), splits \(splits): largest difference \(worst)")
                #expect(
                    actual.map(\.bitPattern) == contiguous.map(\.bitPattern),
                    "block \(blockPositions), splits \(splits): paged and contiguous sum in the same order")
            }
        }
    }

    /// A decode step of the 2B-4T shape (20 query heads over 5 KV heads of 128) at a long context, in the backend's
    /// pool layout (blocks of 16 positions holding every layer), cut in ranges as two threads take them: the
    /// position ranges are whole softmax blocks but the last, and every thread's units run back to back.
    @Test(arguments: instructionSets, [1, 2, 8, 17])
    func decodeStepOverALongPagedContextMatchesTheReference(_ isa: CPUInstructionSet, splits: Int) {
        var rng = SplitMix(state: 37 + UInt64(splits))
        let (heads, kvHeads, headDim, blockPositions, layers) = (20, 5, 128, 16, 3)
        let width = kvHeads * headDim
        let length = 547
        let blocks = (length + blockPositions - 1) / blockPositions
        let table = (0..<blocks).map { Int32(blocks - 1 - $0) }
        let blockStride = layers * 2 * blockPositions * width
        let layer = 1
        let k = (0..<length * width).map { _ in Float.random(in: -1...1, using: &rng) }
        let v = (0..<length * width).map { _ in Float.random(in: -1...1, using: &rng) }
        // Keys then values of `layer` in each block, the other layers garbage.
        var pool = (0..<blocks * blockStride).map { _ in Float.random(in: 50...60, using: &rng) }
        for p in 0..<length {
            let at =
                Int(table[p / blockPositions]) * blockStride + layer * 2 * blockPositions * width
                + p % blockPositions * width
            for i in 0..<width {
                pool[at + i] = k[p * width + i]
                pool[at + blockPositions * width + i] = v[p * width + i]
            }
        }
        let q = (0..<heads * headDim).map { _ in Float.random(in: -1...1, using: &rng) }
        let positions: [Int32] = [Int32(length - 1)]
        let scale = 1 / Float(headDim).squareRoot()
        var scores = [Float](repeating: 0, count: length)
        var expected = [Float](repeating: 0, count: heads * headDim)
        ob_attention(q, k, v, 1, heads, kvHeads, headDim, positions, scale, &scores, &expected)
        var actual = [Float](repeating: 0, count: heads * headDim)
        var partial = [Float](repeating: 0, count: heads * splits * (headDim + 2))
        let units = kvHeads * splits
        pool.withUnsafeBufferPointer { pool in
            let keys = pool.baseAddress! + layer * 2 * blockPositions * width
            for range in [0..<units / 2, units / 2..<units] {
                ob_attention_paged_units(
                    isa.rawValue, q, keys, keys + blockPositions * width, table, blockPositions, blockStride, width,
                    headDim, 1, heads, kvHeads, headDim, positions, scale, splits, range.lowerBound, range.upperBound,
                    &partial, &actual)
            }
        }
        if splits > 1 { ob_attention_merge(1, heads, headDim, splits, partial, &actual) }
        let worst = zip(actual, expected).map { abs($0 - $1) }.max() ?? 0
        #expect(worst < 1e-5, "splits \(splits): largest difference \(worst)")
    }

    /// The AVX-512 variant sums in the AVX2 variant's order, so a seeded generation gives the same tokens on
    /// either: their results are the same bits for head sizes that are multiples of 8 (every real model's).
    @Test(arguments: [(8, 2, 16), (20, 5, 128), (6, 1, 40), (6, 2, 64), (12, 4, 256)])
    func avx512AttentionIsBitIdenticalToAVX2(shape: (heads: Int, kvHeads: Int, headDim: Int)) {
        guard CPUInstructionSet.avx512VNNI.isSupported else { return }
        var rng = SplitMix(state: 41)
        let (heads, kvHeads, headDim) = shape
        let width = kvHeads * headDim
        let tokens = 7
        // Lengths under a group of eight, between groups, and over several softmax blocks.
        let positions: [Int32] = [0, 5, 12, 31, 40, 130, 299]
        let capacity = 300
        let q = (0..<tokens * heads * headDim).map { _ in Float.random(in: -1...1, using: &rng) }
        let k = (0..<capacity * width).map { _ in Float.random(in: -1...1, using: &rng) }
        let v = (0..<capacity * width).map { _ in Float.random(in: -1...1, using: &rng) }
        let scale = 1 / Float(headDim).squareRoot()
        for splits in [1, 3] {
            var results: [[Float]] = []
            for isa in [CPUInstructionSet.avx2, .avx512VNNI] {
                results.append(
                    attentionInUnits(
                        isa, q: q, k: k, v: v, rowStride: width, headStride: headDim, tokens: tokens, heads: heads,
                        kvHeads: kvHeads, headDim: headDim, positions: positions, scale: scale, splits: splits))
            }
            #expect(results[0].map(\.bitPattern) == results[1].map(\.bitPattern), "splits \(splits)")
        }
    }

    @Test func storeWritesEachRowToItsBlock() {
        var rng = SplitMix(state: 31)
        let (width, blockPositions, blockStride) = (7, 3, 25)
        let table: [Int32] = [4, 0, 2, 1]
        let positions: [Int32] = [2, 3, 4, 5, 6, 10, 11]
        let keys = (0..<positions.count * width).map { _ in Float.random(in: -1...1, using: &rng) }
        let values = (0..<positions.count * width).map { _ in Float.random(in: -1...1, using: &rng) }
        var k = [Float](repeating: -9, count: 5 * blockStride)
        var v = [Float](repeating: -9, count: 5 * blockStride)
        ob_kv_store_paged(
            keys, values, positions.count, width, positions, table, blockPositions, blockStride, &k, &v)
        var expectedK = [Float](repeating: -9, count: 5 * blockStride)
        var expectedV = expectedK
        for (t, p) in positions.enumerated() {
            let at = Int(table[Int(p) / blockPositions]) * blockStride + Int(p) % blockPositions * width
            for i in 0..<width {
                expectedK[at + i] = keys[t * width + i]
                expectedV[at + i] = values[t * width + i]
            }
        }
        #expect(k == expectedK)
        #expect(v == expectedV)
    }
}

@Suite struct ActivationMemoryTests {
    /// A forward call that ran a prompt chunk gives back the scratch rows past the ones decoding uses.
    @Test func discardedRowsReadAsZerosAndKeptRowsKeepTheirValues() {
        let backend = CPUBackend(threadCount: 1)
        let (tokens, width) = (64, 2560)
        let x = backend.makeActivations(tokens: tokens, width: width)
        var rng = SplitMix(state: 43)
        let values = (0..<tokens * width).map { _ in Float.random(in: -1...1, using: &rng) }
        let table = backend.prepare(DenseMatrix(rows: tokens, columns: width, storage: .float32(values)))
        backend.embed(Array(0..<tokens), from: table, into: x)
        backend.discardRows(of: x, after: 3)
        for t in 0..<3 { #expect(x.row(t) == Array(values[t * width..<(t + 1) * width])) }
        // Only whole pages go: row 3 shares a page with row 2, row 4 starts on a page of its own.
        for t in 4..<tokens { #expect(x.row(t).allSatisfy { $0 == 0 }, "row \(t)") }
        // The buffer is usable again: rows written after the discard read back.
        backend.embed(Array(0..<tokens), from: table, into: x)
        #expect(x.row(tokens - 1) == Array(values[(tokens - 1) * width..<tokens * width]))
    }
}

@Suite struct ThreadPoolTests {
    @Test(arguments: [1, 2, 3, 8])
    func everyIndexRunsOnce(_ threads: Int) {
        let pool = ThreadPool(threadCount: threads)
        for (count, granularity) in [(0, 1), (1, 4), (7, 4), (100, 4), (1001, 16)] {
            let hits = UnsafeMutableBufferPointer<Int>.allocate(capacity: max(count, 1))
            hits.initialize(repeating: 0)
            defer { hits.deallocate() }
            for _ in 0..<50 {
                pool.parallelFor(count, granularity: granularity) { range in
                    #expect(range.lowerBound % granularity == 0)
                    for i in range { hits[i] += 1 }
                }
            }
            #expect(hits.prefix(count).allSatisfy { $0 == 50 })
        }
    }
}

@Suite struct NormKernelTests {
    @Test(arguments: instructionSets, [4, 12, 100, 276, 2560, 6912])
    func normQuantizeIsBitIdentical(_ isa: CPUInstructionSet, width: Int) {
        var rng = SplitMix(state: 19 + UInt64(width))
        let tokens = 7
        // Row 0 repeats a few values (equal magnitudes, so ties and the maximum recur); the rest are random with an
        // outlier, as real activations have.
        var x = (0..<tokens * width).map { _ in Float.random(in: -4...4, using: &rng) }
        for i in 0..<width { x[i] = Float(i % 5) - 2 }
        x[width + width / 2] = 90
        let weight = (0..<width).map { _ in Float.random(in: 0.5...1.5, using: &rng) }
        var expected = [Int8](repeating: 0, count: tokens * width)
        var expectedScales = [Float](repeating: 0, count: tokens)
        var actual = [Int8](repeating: 1, count: tokens * width)
        var actualScales = [Float](repeating: 0, count: tokens)
        ob_rms_norm_quantize_rows(x, weight, 1e-6, tokens, width, &expected, &expectedScales)
        ob_rms_norm_quantize(isa.rawValue, x, weight, 1e-6, tokens, width, &actual, &actualScales)
        #expect(actual == expected)
        #expect(actualScales.map(\.bitPattern) == expectedScales.map(\.bitPattern))
    }
}
