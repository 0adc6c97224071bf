/// Ternarization of full-precision weights, the rule BitNet b1.58 trains with.
public enum TernaryQuantizer {
    /// Per-tensor absmean: `s = 1 / max(mean|W|, 1e-5)`, `q = clamp(round_half_even(W * s), -1, 1)`; the real
    /// weight is `q / s`.
    public static func absmean(_ weights: [Float], rows: Int, columns: Int) -> TernaryMatrix {
        // Summed in Double: the mean decides rounding of every weight, so it should not depend on summation order.
        var sum = 0.0
        for w in weights { sum += Double(abs(w)) }
        let mean = max(Float(sum / Double(max(weights.count, 1))), 1e-5)
        let inverse = 1 / mean
        let values = weights.map { w -> Int8 in Int8(max(-1, min(1, (w * inverse).rounded(.toNearestOrEven)))) }
        return TernaryMatrix(rows: rows, columns: columns, values: values, scale: .perTensor(1 / inverse))
    }
}
