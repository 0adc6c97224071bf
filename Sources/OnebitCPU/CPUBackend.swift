import CKernels
import OnebitModel

/// The CPU backend: runs every operation of the forward pass with the C kernels of `CKernels`.
///
/// Buffers are Swift arrays; the C kernels receive their base pointers, never copies.
public final class CPUBackend {
    /// Creates a backend.
    public init() {}

    /// Keeps the canonical matrix; the scalar kernels read that layout directly.
    public func prepare(_ matrix: TernaryMatrix) -> CPUTernaryWeights { CPUTernaryWeights(matrix) }

    /// Norm weights need no preparation.
    public func prepare(_ vector: [Float]) -> [Float] { vector }

    /// Dense matrices are read in their stored precision.
    public func prepare(_ matrix: DenseMatrix) -> DenseMatrix { matrix }

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
    public func embed(_ tokens: [Int], from table: DenseMatrix, into x: CPUActivations) {
        for (t, token) in tokens.enumerated() {
            let row = table.row(token)
            x.values.replaceSubrange(t * x.width..<(t + 1) * x.width, with: row)
        }
    }

    /// `y = rmsnorm(x) * weight` for the first `tokens` rows.
    public func rmsNorm(_ x: CPUActivations, weight: [Float], epsilon: Float, tokens: Int, into y: CPUActivations) {
        y.values.withUnsafeMutableBufferPointer { out in
            ob_rms_norm_rows(x.values, weight, epsilon, tokens, x.width, out.baseAddress)
        }
    }

    /// RMSNorm fused with per-token int8 quantization.
    public func rmsNormQuantize(
        _ x: CPUActivations, weight: [Float], epsilon: Float, tokens: Int, into q: CPUQuantizedActivations
    ) {
        q.values.withUnsafeMutableBufferPointer { values in
            q.scales.withUnsafeMutableBufferPointer { scales in
                ob_rms_norm_quantize_rows(
                    x.values, weight, epsilon, tokens, x.width, values.baseAddress, scales.baseAddress)
            }
        }
    }

    /// `y = W q` with the numerics contract's rescale, for the first `tokens` rows.
    public func multiply(
        _ w: CPUTernaryWeights, _ q: CPUQuantizedActivations, tokens: Int, into y: CPUActivations
    ) {
        precondition(q.width == w.matrix.columns && y.width == w.matrix.rows, "matrix and buffers disagree")
        y.values.withUnsafeMutableBufferPointer { out in
            ob_ternary_matmul_reference(
                w.matrix.codes, w.matrix.columns, 0, w.matrix.rows, w.matrix.rows, w.scales, w.blockSize,
                q.values, q.scales, tokens, out.baseAddress)
        }
    }

    /// Rotates the heads of the first `tokens` rows of `x` in place.
    public func applyRoPE(
        _ x: CPUActivations, tokens: Int, heads: Int, headDim: Int, positions: [Int32], theta: Float
    ) {
        x.values.withUnsafeMutableBufferPointer { values in
            ob_rope_neox(values.baseAddress, tokens, heads, headDim, positions, theta)
        }
    }

    /// Writes the keys and values of `tokens` rows at their positions in layer `layer` of the cache.
    public func store(
        keys: CPUActivations, values: CPUActivations, tokens: Int, positions: [Int32], layer: Int,
        in cache: CPUKeyValueCache
    ) {
        let width = cache.width
        for t in 0..<tokens {
            let p = Int(positions[t])
            cache.keys[layer].replaceSubrange(
                p * width..<(p + 1) * width, with: keys.values[t * width..<(t + 1) * width])
            cache.values[layer].replaceSubrange(
                p * width..<(p + 1) * width, with: values.values[t * width..<(t + 1) * width])
        }
    }

    /// Causal attention of the first `tokens` query rows over the cached positions `0 ... positions[t]`.
    public func attention(
        queries: CPUActivations, tokens: Int, positions: [Int32], layer: Int, cache: CPUKeyValueCache,
        heads: Int, kvHeads: Int, headDim: Int, into out: CPUActivations
    ) {
        let longest = Int(positions[0..<tokens].max() ?? 0) + 1
        var scores = [Float](repeating: 0, count: longest)
        let scale = 1 / Float(headDim).squareRoot()
        out.values.withUnsafeMutableBufferPointer { output in
            ob_attention(
                queries.values, cache.keys[layer], cache.values[layer], tokens, heads, kvHeads, headDim, positions,
                scale, &scores, output.baseAddress)
        }
    }

    /// `gate = act(gate) * up` for the first `tokens` rows.
    public func gatedActivation(
        _ activation: ModelConfig.Activation, gate: CPUActivations, up: CPUActivations, tokens: Int
    ) {
        let count = tokens * gate.width
        gate.values.withUnsafeMutableBufferPointer { g in
            switch activation {
            case .relu2: ob_relu2_mul(g.baseAddress, up.values, count)
            case .silu: ob_silu_mul(g.baseAddress, up.values, count)
            }
        }
    }

    /// `x += delta` for the first `tokens` rows.
    public func add(_ delta: CPUActivations, to x: CPUActivations, tokens: Int) {
        for i in 0..<tokens * x.width { x.values[i] += delta.values[i] }
    }

    /// The logits of row `row` of `x` against the output head.
    public func logits(_ x: CPUActivations, row: Int, head: DenseMatrix) -> [Float] {
        var out = [Float](repeating: 0, count: head.rows)
        let input = Array(x.values[row * x.width..<(row + 1) * x.width])
        out.withUnsafeMutableBufferPointer { y in
            switch head.storage {
            case .bfloat16(let w): ob_dense_gemv_bf16(w, head.columns, 0, head.rows, input, y.baseAddress)
            case .float16(let w): ob_dense_gemv_f16(w, head.columns, 0, head.rows, input, y.baseAddress)
            case .float32(let w): ob_dense_gemv_f32(w, head.columns, 0, head.rows, input, y.baseAddress)
            }
        }
        return out
    }
}
