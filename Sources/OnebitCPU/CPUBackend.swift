import CKernels
import OnebitModel
import Synchronization

/// The instruction sets the CPU kernels have variants for.
public enum CPUInstructionSet: Int32, Sendable, CaseIterable, CustomStringConvertible {
    /// Portable C (the scalar reference loops over the packed layout).
    case scalar = 0
    /// AVX2 with FMA: `vpmaddubsw` for ternary products.
    case avx2 = 1
    /// AVX-512 F/BW with VNNI: `vpdpbusd` for ternary products.
    case avx512VNNI = 2

    /// The best set this CPU supports.
    public static var best: CPUInstructionSet { CPUInstructionSet(rawValue: ob_isa_best()) ?? .scalar }

    /// Whether this CPU can run the set.
    public var isSupported: Bool { ob_isa_supported(rawValue) != 0 }

    /// A short name for reports.
    public var description: String {
        switch self {
        case .scalar: "scalar"
        case .avx2: "avx2"
        case .avx512VNNI: "avx512-vnni"
        }
    }
}

/// The CPU backend: runs every operation of the forward pass with the C kernels of `CKernels`, spread over a
/// persistent thread pool.
///
/// Matrix products split their output rows across the threads in equal contiguous ranges, so all threads stream
/// the same number of weight bytes and finish together.
public final class CPUBackend {
    /// The threads that share each operation.
    public let pool: ThreadPool
    /// The kernel variant every operation runs.
    public let instructionSet: CPUInstructionSet
    /// Whether logits come from an int8 copy of the output head (half the bytes of bf16; opt-in, it moves the
    /// logits slightly).
    public let usesInt8Head: Bool

    private var isa: Int32 { instructionSet.rawValue }
    // Partial attention results of a step whose positions are split across threads, grown to the largest step.
    private var partial = AlignedBuffer<Float>(zeroed: 0)

    /// Creates a backend on `threadCount` threads (default: the physical cores), running `instructionSet`
    /// (default: the best this CPU supports).
    public init(threadCount: Int? = nil, instructionSet: CPUInstructionSet = .best, int8Head: Bool = false) {
        precondition(instructionSet.isSupported, "this CPU cannot run \(instructionSet)")
        pool = ThreadPool(threadCount: threadCount ?? ThreadPool.physicalCoreCount)
        self.instructionSet = instructionSet
        usesInt8Head = int8Head
    }

    /// Bytes a `rows` x `columns` ternary matrix occupies in the packed layout the kernels stream.
    public static func packedByteCount(rows: Int, columns: Int) -> Int { rows * ob_packed_row_bytes(columns) }

    /// Repacks into the layout the kernels stream (`ternary.c`).
    public func prepare(_ matrix: TernaryMatrix) -> CPUTernaryWeights { CPUTernaryWeights(matrix) }

    /// Norm weights need no preparation.
    public func prepare(_ vector: [Float]) -> [Float] { vector }

    /// Dense matrices are read in their stored precision; the int8 copy of a head is made on its first use.
    public func prepare(_ matrix: DenseMatrix) -> CPUDenseWeights { CPUDenseWeights(matrix: matrix) }

    /// A zeroed float buffer.
    public func makeActivations(tokens: Int, width: Int) -> CPUActivations {
        CPUActivations(tokens: tokens, width: width)
    }

    /// A zeroed int8 buffer.
    public func makeQuantizedActivations(tokens: Int, width: Int) -> CPUQuantizedActivations {
        CPUQuantizedActivations(tokens: tokens, width: width)
    }

    /// Gives back the memory of `x`'s rows past the first `rows`.
    public func discardRows(of x: CPUActivations, after rows: Int) { x.discardRows(after: rows) }

    /// Gives back the memory of `q`'s rows past the first `rows`.
    public func discardRows(of q: CPUQuantizedActivations, after rows: Int) { q.discardRows(after: rows) }

    /// Positions per KV block: small enough that a sequence wastes little of its last block and a shared prefix
    /// is found at a fine grain, large enough that the per-block bookkeeping stays negligible.
    public func keyValueBlockPositions(contextLength: Int) -> Int { min(16, max(1, contextLength)) }

    /// A pool of `blocks` KV blocks; its memory is committed as blocks are first written.
    public func makeKeyValuePool(layers: Int, width: Int, blockPositions: Int, blocks: Int) -> CPUKeyValuePool {
        CPUKeyValuePool(layers: layers, width: width, blockPositions: blockPositions, blocks: blocks)
    }

    /// The sequence whose positions lie in `blocks` of `pool`.
    public func keyValueCache(in pool: CPUKeyValuePool, blocks: [Int32]) -> CPUKeyValueCache {
        CPUKeyValueCache(pool: pool, table: blocks)
    }

    /// Copies the embedding rows of `tokens` into `x`.
    public func embed(_ tokens: [Int], from table: CPUDenseWeights, into x: CPUActivations) {
        for (t, token) in tokens.enumerated() {
            let row = table.matrix.row(token)
            row.withUnsafeBufferPointer { (x.pointer + t * x.width).update(from: $0.baseAddress!, count: x.width) }
        }
    }

    /// `y = rmsnorm(x) * weight` for the first `tokens` rows.
    public func rmsNorm(_ x: CPUActivations, weight: [Float], epsilon: Float, tokens: Int, into y: CPUActivations) {
        let (input, output, width) = (x.pointer, y.pointer, x.width)
        pool.parallelFor(tokens) { range in
            ob_rms_norm_rows(
                input + range.lowerBound * width, weight, epsilon, range.count, width,
                output + range.lowerBound * width)
        }
    }

    /// RMSNorm fused with per-token int8 quantization, tokens split across threads.
    public func rmsNormQuantize(
        _ x: CPUActivations, weight: [Float], epsilon: Float, tokens: Int, into q: CPUQuantizedActivations
    ) {
        let (input, values, scales, width, isa) = (x.pointer, q.values.pointer, q.scales.pointer, x.width, isa)
        pool.parallelFor(tokens) { range in
            ob_rms_norm_quantize(
                isa, input + range.lowerBound * width, weight, epsilon, range.count, width,
                values + range.lowerBound * width, scales + range.lowerBound)
        }
    }

    /// `y = W q` with the numerics contract's rescale, for the first `tokens` rows; output rows split across
    /// threads.
    public func multiply(
        _ w: CPUTernaryWeights, _ q: CPUQuantizedActivations, tokens: Int, into y: CPUActivations
    ) {
        precondition(q.width == w.columns && y.width == w.rows, "matrix and buffers disagree")
        let (values, actScales, out, isa) = (q.values.pointer, q.scales.pointer, y.pointer, isa)
        w.scales.withUnsafeBufferPointer { scales in
            if let canonical = w.canonical {
                pool.parallelFor(w.rows, granularity: 4) { range in
                    ob_ternary_matmul_reference(
                        canonical.codes, w.columns, range.lowerBound, range.upperBound, w.rows, scales.baseAddress,
                        w.blockSize, values, actScales, tokens, out)
                }
                return
            }
            let packed = w.packed.pointer
            pool.parallelFor(w.rows, granularity: 4) { range in
                ob_ternary_matmul_packed(
                    isa, packed, w.columns, range.lowerBound, range.upperBound, w.rows, scales.baseAddress,
                    w.blockSize, values, actScales, tokens, out)
            }
        }
    }

    /// Several products of the same activations in one parallel loop over all their rows, so a decode step hands
    /// work to the threads once for query/key/value and once for gate/up, and no thread waits at a barrier between
    /// the small key and value matrices.
    public func multiply(
        _ ws: [CPUTernaryWeights], _ q: CPUQuantizedActivations, tokens: Int, into ys: [CPUActivations]
    ) {
        precondition(ws.count == ys.count, "one output per matrix")
        guard ws.allSatisfy({ $0.canonical == nil && $0.columns == q.width }) else {
            for (w, y) in zip(ws, ys) { multiply(w, q, tokens: tokens, into: y) }
            return
        }
        for (w, y) in zip(ws, ys) { precondition(y.width == w.rows, "matrix and buffer disagree") }
        let firstRows = ws.reduce(into: [0]) { $0.append($0.last! + $1.rows) }
        let (values, actScales, isa) = (q.values.pointer, q.scales.pointer, isa)
        let outputs = ys.map(\.pointer)
        pool.parallelFor(firstRows.last!, granularity: 4) { range in
            for (i, w) in ws.enumerated() {
                let begin = max(range.lowerBound, firstRows[i]) - firstRows[i]
                let end = min(range.upperBound, firstRows[i + 1]) - firstRows[i]
                guard begin < end else { continue }
                w.scales.withUnsafeBufferPointer { scales in
                    ob_ternary_matmul_packed(
                        isa, w.packed.pointer, w.columns, begin, end, w.rows, scales.baseAddress, w.blockSize, values,
                        actScales, tokens, outputs[i])
                }
            }
        }
    }

    /// Rotates the heads of the first `tokens` rows of `x` in place.
    public func applyRoPE(
        _ x: CPUActivations, tokens: Int, heads: Int, headDim: Int, positions: [Int32], theta: Float
    ) {
        ob_rope_neox(x.pointer, tokens, heads, headDim, positions, theta)
    }

    /// Writes the keys and values of `tokens` rows at their positions in layer `layer` of the cache.
    public func store(
        keys: CPUActivations, values: CPUActivations, tokens: Int, positions: [Int32], layer: Int,
        in cache: CPUKeyValueCache
    ) {
        store(keys: keys, values: values, rows: 0..<tokens, positions: positions, layer: layer, in: cache)
    }

    /// Writes rows `rows` of `keys` and `values` (`positions` holds one position per row) into `cache`.
    private func store(
        keys: CPUActivations, values: CPUActivations, rows: Range<Int>, positions: [Int32], layer: Int,
        in cache: CPUKeyValueCache
    ) {
        let pool = cache.pool
        precondition(keys.width == pool.width && values.width == pool.width, "cache and buffers disagree")
        ob_kv_store_paged(
            keys.pointer + rows.lowerBound * pool.width, values.pointer + rows.lowerBound * pool.width, rows.count,
            pool.width, positions, cache.table, pool.blockPositions, pool.blockStride, pool.keys(layer),
            pool.values(layer))
    }

    /// Causal attention of the first `tokens` query rows over the cached positions `0 ... positions[t]`.
    public func attention(
        queries: CPUActivations, tokens: Int, positions: [Int32], layer: Int, cache: CPUKeyValueCache,
        heads: Int, kvHeads: Int, headDim: Int, into out: CPUActivations
    ) {
        attendStored(
            queries: queries, positions: positions, segments: [(0..<tokens, cache)], layer: layer, heads: heads,
            kvHeads: kvHeads, headDim: headDim, into: out)
    }

    /// Stores the keys and values of every segment's rows in its sequence's cache, then attends every row against
    /// its own sequence, all sequences in one parallel loop: a decode step of many sequences hands work to the
    /// threads once per layer, and no row is copied.
    public func attend(
        keys: CPUActivations, values: CPUActivations, queries: CPUActivations, positions: [Int32],
        segments: [(rows: Range<Int>, cache: CPUKeyValueCache)], layer: Int, heads: Int, kvHeads: Int, headDim: Int,
        into out: CPUActivations
    ) {
        for (rows, cache) in segments where !rows.isEmpty {
            store(
                keys: keys, values: values, rows: rows, positions: Array(positions[rows]), layer: layer, in: cache)
        }
        attendStored(
            queries: queries, positions: positions, segments: segments, layer: layer, heads: heads, kvHeads: kvHeads,
            headDim: headDim, into: out)
    }

    /// The work of one sequence's rows in one attention call.
    private struct AttentionSegment {
        var rows: Range<Int>
        var cache: CPUKeyValueCache
        var positions: [Int32]
        var splits: Int
        /// Where the segment's units start in the step's unit numbering, and its partial results in the scratch.
        var firstUnit: Int
        var firstPartial: Int
    }

    /// Attention of every segment's rows against its cache. Work is cut in (token, KV head, position range) units:
    /// a unit reads its KV head's rows once for all the query heads that share them, and a sequence with few
    /// tokens, whose KV heads are fewer than threads need to balance, splits its positions so every thread streams
    /// an equal share of the cache. How a sequence is cut depends on its own rows alone, so its result is the same
    /// whatever else runs in the step.
    private func attendStored(
        queries: CPUActivations, positions: [Int32], segments: [(rows: Range<Int>, cache: CPUKeyValueCache)],
        layer: Int, heads: Int, kvHeads: Int, headDim: Int, into out: CPUActivations
    ) {
        let scale = 1 / Float(headDim).squareRoot()
        let wanted = pool.threadCount * ThreadPool.chunksPerThread
        var work: [AttentionSegment] = []
        var units = 0
        var partials = 0
        for (rows, cache) in segments where !rows.isEmpty {
            let segmentPositions = Array(positions[rows])
            let shortest = Int(segmentPositions.min() ?? 0) + 1
            let base = rows.count * kvHeads
            // Enough ranges that the units fill every thread's chunks, and no more: each range's first rows wait for
            // memory, and each adds a partial result to merge. Ranges of at least 32 positions (a softmax block).
            let splits =
                base >= wanted || pool.threadCount == 1 ? 1 : max(1, min((wanted + base - 1) / base, shortest / 32))
            work.append(
                AttentionSegment(
                    rows: rows, cache: cache, positions: segmentPositions, splits: splits, firstUnit: units,
                    firstPartial: partials))
            units += base * splits
            partials += splits > 1 ? rows.count * heads * splits * (headDim + 2) : 0
        }
        if partial.count < partials { partial = AlignedBuffer(zeroed: partials) }
        let (q, o, scratch, isa, qWidth) = (queries.pointer, out.pointer, partial.pointer, isa, heads * headDim)
        pool.parallelFor(units) { range in
            for segment in work {
                let count = segment.rows.count * kvHeads * segment.splits
                let begin = max(range.lowerBound, segment.firstUnit) - segment.firstUnit
                let end = min(range.upperBound, segment.firstUnit + count) - segment.firstUnit
                guard begin < end else { continue }
                let cache = segment.cache
                let row = segment.rows.lowerBound
                ob_attention_paged_units(
                    isa, q + row * qWidth, cache.pool.keys(layer), cache.pool.values(layer), cache.table,
                    cache.pool.blockPositions, cache.pool.blockStride, kvHeads * headDim, headDim, segment.rows.count,
                    heads, kvHeads, headDim, segment.positions, scale, segment.splits, begin, end,
                    scratch + segment.firstPartial, o + row * qWidth)
            }
        }
        // Splits happen only for a few tokens: merging their heads is a few microseconds on one thread.
        for segment in work where segment.splits > 1 {
            ob_attention_merge(
                segment.rows.count, heads, headDim, segment.splits, scratch + segment.firstPartial,
                o + segment.rows.lowerBound * qWidth)
        }
    }

    /// `gate = act(gate) * up` for the first `tokens` rows.
    public func gatedActivation(
        _ activation: ModelConfig.Activation, gate: CPUActivations, up: CPUActivations, tokens: Int
    ) {
        let count = tokens * gate.width
        switch activation {
        case .relu2: ob_relu2_mul(gate.pointer, up.pointer, count)
        case .silu: ob_silu_mul(gate.pointer, up.pointer, count)
        }
    }

    /// `x += delta` for the first `tokens` rows.
    public func add(_ delta: CPUActivations, to x: CPUActivations, tokens: Int) {
        let (d, y) = (delta.pointer, x.pointer)
        for i in 0..<tokens * x.width { y[i] += d[i] }
    }

    /// The logits of several rows of `x`: a bf16 head (`ob_bf16_gemm`) or the int8 copy of one (`ob_int8_gemm`) is
    /// read once for all of them, which is what lets a batch of sequences share one pass over the largest matrix;
    /// other heads go one row at a time. Each row's logits are bit for bit those it gets alone.
    public func logits(_ x: CPUActivations, rows: [Int], head: CPUDenseWeights) -> [[Float]] {
        let matrix = head.matrix
        let int8 = usesInt8Head ? head.int8Rows(pool: pool) : nil
        var bfloat16: [UInt16]?
        if case .bfloat16(let w) = matrix.storage { bfloat16 = w }
        guard rows.count > 1, int8 != nil || bfloat16 != nil else {
            return rows.map { logits(x, row: $0, head: head) }
        }
        let (columns, vocabulary, isa, batch) = (matrix.columns, matrix.rows, isa, rows.count)
        var inputs = [Float](repeating: 0, count: batch * columns)
        for (b, row) in rows.enumerated() {
            inputs.withUnsafeMutableBufferPointer {
                ($0.baseAddress! + b * columns).update(from: x.pointer + row * x.width, count: columns)
            }
        }
        var out = [Float](repeating: 0, count: batch * vocabulary)
        out.withUnsafeMutableBufferPointer { y in
            let y = y.baseAddress!
            if let int8 {
                var quantized = [Int8](repeating: 0, count: batch * columns)
                var scales = [Float](repeating: 0, count: batch)
                ob_quantize_rows(inputs, batch, columns, &quantized, &scales)
                quantized.withUnsafeBufferPointer { xq in
                    scales.withUnsafeBufferPointer { scales in
                        pool.parallelFor(vocabulary, granularity: 16) { range in
                            ob_int8_gemm(
                                isa, int8.codes.pointer, int8.scales.pointer, int8.sums.pointer, columns,
                                range.lowerBound, range.upperBound, xq.baseAddress, scales.baseAddress, batch,
                                vocabulary, y)
                        }
                    }
                }
            } else if let bfloat16 {
                inputs.withUnsafeBufferPointer { inputs in
                    bfloat16.withUnsafeBufferPointer { w in
                        pool.parallelFor(vocabulary, granularity: 16) { range in
                            ob_bf16_gemm(
                                isa, w.baseAddress, columns, range.lowerBound, range.upperBound, inputs.baseAddress,
                                batch, vocabulary, y)
                        }
                    }
                }
            }
        }
        return (0..<batch).map { Array(out[$0 * vocabulary..<($0 + 1) * vocabulary]) }
    }

    /// The logits of row `row` of `x` against the output head, head rows split across threads.
    public func logits(_ x: CPUActivations, row: Int, head: CPUDenseWeights) -> [Float] {
        let matrix = head.matrix
        var out = [Float](repeating: 0, count: matrix.rows)
        let input = x.pointer + row * x.width
        let (columns, isa) = (matrix.columns, isa)
        out.withUnsafeMutableBufferPointer { buffer in
            let y = buffer.baseAddress!
            if usesInt8Head, let int8 = head.int8Rows(pool: pool) {
                var quantized = [Int8](repeating: 0, count: columns)
                var scale: Float = 0
                ob_quantize_rows(input, 1, columns, &quantized, &scale)
                quantized.withUnsafeBufferPointer { xq in
                    pool.parallelFor(matrix.rows, granularity: 16) { range in
                        ob_int8_gemv(
                            isa, int8.codes.pointer, int8.scales.pointer, int8.sums.pointer, columns,
                            range.lowerBound, range.upperBound, xq.baseAddress, scale, y)
                    }
                }
                return
            }
            switch matrix.storage {
            case .bfloat16(let w):
                w.withUnsafeBufferPointer { w in
                    pool.parallelFor(matrix.rows, granularity: 16) { range in
                        ob_bf16_gemv(isa, w.baseAddress, columns, range.lowerBound, range.upperBound, input, y)
                    }
                }
            case .float16(let w):
                w.withUnsafeBufferPointer { w in
                    pool.parallelFor(matrix.rows, granularity: 16) { range in
                        ob_dense_gemv_f16(w.baseAddress, columns, range.lowerBound, range.upperBound, input, y)
                    }
                }
            case .float32(let w):
                w.withUnsafeBufferPointer { w in
                    pool.parallelFor(matrix.rows, granularity: 16) { range in
                        ob_dense_gemv_f32(w.baseAddress, columns, range.lowerBound, range.upperBound, input, y)
                    }
                }
            }
        }
        return out
    }
}
