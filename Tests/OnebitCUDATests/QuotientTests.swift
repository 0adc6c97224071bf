import Testing

/// The kernels' `divide_by`, in Swift: `x * r` corrected once by its fused remainder, `r` the rounded reciprocal.
private func quotient(_ x: Float, _ y: Float, reciprocal r: Float) -> Float {
    let q = x * r
    return q.addingProduct(x.addingProduct(-y, q), r)
}

/// A float of a random exponent in `exponents` (unbiased), mantissa and sign.
private func randomFloat(exponents: ClosedRange<Int>, using generator: inout some RandomNumberGenerator) -> Float {
    let exponent = UInt32(Int.random(in: exponents, using: &generator) + 127)
    let sign: UInt32 = Bool.random(using: &generator) ? 1 << 31 : 0
    return Float(bitPattern: sign | exponent << 23 | UInt32.random(in: 0..<(1 << 23), using: &generator))
}

@Test func theCorrectedReciprocalRoundsAsTheDivision() {
    var generator = SystemRandomNumberGenerator()
    var differing: [(Float, Float)] = []
    for _ in 0..<1_000_000 {
        // What the norms rescale: a product's integer sums (zero, or at least 1) over a token's scale, 127 over its
        // largest value.
        let sum = Float(Int.random(in: -5_000_000...5_000_000, using: &generator))
        let scale = abs(randomFloat(exponents: -100...100, using: &generator))
        if quotient(sum, scale, reciprocal: 1 / scale) != sum / scale { differing.append((sum, scale)) }
        // Any operands of the domain the kernels' comment states.
        let x = randomFloat(exponents: -100...127, using: &generator)
        let y = randomFloat(exponents: -126...126, using: &generator)
        let r = 1 / y
        guard r.isNormal, (x / y).isNormal else { continue }
        if quotient(x, y, reciprocal: r) != x / y { differing.append((x, y)) }
    }
    #expect(differing.isEmpty, "x / y differs for \(differing.prefix(3))")
}
