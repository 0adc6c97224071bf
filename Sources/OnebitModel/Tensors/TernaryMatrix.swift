/// A ternary weight matrix in the canonical layout every loader produces and every backend repacks from.
///
/// Layout: row-major over output rows; each row holds `columns` 2-bit codes `w + 1` (0 → -1, 1 → 0, 2 → +1),
/// four to a byte, column `4b + k` of a row in bits `2k ..< 2k + 2` of the row's byte `b`. `columns` is a multiple
/// of 4, so rows start on byte boundaries and no row shares a byte with the next.
public struct TernaryMatrix: Sendable, Equatable {
    /// Output features.
    public let rows: Int
    /// Input features (a multiple of 4).
    public let columns: Int
    /// `rows * columns / 4` bytes of packed codes.
    public let codes: [UInt8]
    /// The factor that turns the integer dot product of a row into real units.
    public let scale: TernaryScale

    /// Bytes per row of ``codes``.
    public var bytesPerRow: Int { columns / 4 }

    /// Wraps already packed codes; the caller guarantees the layout described on the type.
    public init(rows: Int, columns: Int, codes: [UInt8], scale: TernaryScale) {
        precondition(columns % 4 == 0 && codes.count == rows * columns / 4, "packed codes do not match the shape")
        self.rows = rows
        self.columns = columns
        self.codes = codes
        self.scale = scale.collapsed()
    }

    /// Packs ternary values given row-major as -1, 0 or +1.
    public init(rows: Int, columns: Int, values: [Int8], scale: TernaryScale) {
        precondition(values.count == rows * columns && columns % 4 == 0, "values do not match the shape")
        var codes = [UInt8](repeating: 0, count: rows * columns / 4)
        for index in 0..<values.count {
            let code = UInt8(Int(values[index]) + 1)
            codes[index >> 2] |= code << UInt8((index & 3) * 2)
        }
        self.init(rows: rows, columns: columns, codes: codes, scale: scale)
    }

    /// The ternary weight (-1, 0 or +1) at `row`, `column`.
    public func value(row: Int, column: Int) -> Int8 {
        let byte = codes[row * bytesPerRow + column >> 2]
        return Int8((byte >> UInt8((column & 3) * 2)) & 3) - 1
    }

    /// The real-valued scale of the weight at `row`, `column`.
    public func scale(row: Int, column: Int) -> Float {
        switch scale {
        case .perTensor(let s): return s
        case .perBlock(let blockSize, let scales):
            return scales[row * (columns / blockSize) + column / blockSize]
        }
    }
}

/// How a ternary matrix maps its integer values back to real weights.
public enum TernaryScale: Sendable, Equatable {
    /// One multiplier for the whole tensor (HF `weight_scale`, I2_S tail scale, absmean of the masters).
    case perTensor(Float)
    /// One multiplier per `blockSize` consecutive columns of each row, `rows * columns / blockSize` values in row
    /// order (llama.cpp TQ1_0 / TQ2_0 carry an fp16 scale per 256 weights).
    case perBlock(blockSize: Int, [Float])

    /// A per-block scale whose blocks all agree is the per-tensor scale it really is; backends then need one
    /// multiply per row instead of one per block.
    func collapsed() -> TernaryScale {
        if case .perBlock(_, let scales) = self, let first = scales.first, scales.allSatisfy({ $0 == first }) {
            return .perTensor(first)
        }
        return self
    }
}
