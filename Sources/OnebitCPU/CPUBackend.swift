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
    // Softmax scratch for attention, grown to the longest sequence seen.
    private var scores = AlignedBuffer<Float>(zeroed: 0)

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

    /// A cache for `capacity` positions of every layer.
    public func makeKeyValueCache(layers: Int, capacity: Int, width: Int) -> CPUKeyValueCache {
        CPUKeyValueCache(layers: layers, capacity: capacity, width: width)
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
        let width = cache.width
        for t in 0..<tokens {
            let p = Int(positions[t])
            (cache.keys[layer].pointer + p * width).update(from: keys.pointer + t * width, count: width)
            (cache.values[layer].pointer + p * width).update(from: values.pointer + t * width, count: width)
        }
    }

    /// Causal attention of the first `tokens` query rows over the cached positions `0 ... positions[t]`, query
    /// heads split across threads.
    public func attention(
        queries: CPUActivations, tokens: Int, positions: [Int32], layer: Int, cache: CPUKeyValueCache,
        heads: Int, kvHeads: Int, headDim: Int, into out: CPUActivations
    ) {
        let longest = Int(positions[0..<tokens].max() ?? 0) + 1
        // Softmax scratch for each head, so chunks of heads on different threads never share it.
        if scores.count < longest * heads { scores = AlignedBuffer(zeroed: longest * heads * 2) }
        let scale = 1 / Float(headDim).squareRoot()
        let (q, k, v, o, scratch, isa) = (
            queries.pointer, cache.keys[layer].pointer, cache.values[layer].pointer, out.pointer, scores.pointer, isa
        )
        positions.withUnsafeBufferPointer { positions in
            pool.parallelFor(heads) { range in
                ob_attention_heads(
                    isa, q, k, v, tokens, heads, kvHeads, headDim, positions.baseAddress, scale, range.lowerBound,
                    range.upperBound, scratch + range.lowerBound * longest, o)
            }
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
