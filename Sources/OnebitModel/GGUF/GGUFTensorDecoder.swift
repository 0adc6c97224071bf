/// Converts the tensors of a ``GGUFFile`` into onebit's canonical types: ternary projections into
/// ``TernaryMatrix``, embeddings and heads into ``DenseMatrix``, norms into `[Float]`.
public struct GGUFTensorDecoder: Sendable {
    /// The file whose tensors are decoded.
    public let gguf: GGUFFile

    /// A decoder for the tensors of `gguf`.
    public init(gguf: GGUFFile) {
        self.gguf = gguf
    }

    /// The description of tensor `name`; throws ``ModelLoadError/missingTensor(_:)`` when the file lacks it.
    public func info(_ name: String) throws(ModelLoadError) -> GGUFTensorInfo {
        guard let info = gguf.tensor(named: name) else { throw .missingTensor(name) }
        return info
    }

    /// Decodes a ternary weight matrix stored as `I2_S`, `TQ1_0`, `TQ2_0`, or as real numbers (F32, F16, BF16)
    /// that take exactly the values `{-s, 0, +s}` for one `s`.
    public func ternary(_ info: GGUFTensorInfo) throws(ModelLoadError) -> TernaryMatrix {
        let (rows, columns) = try matrixShape(info)
        guard columns % 4 == 0 else {
            throw .unsupported("tensor \(info.name) has rows of \(columns) weights; onebit needs a multiple of 4")
        }
        switch info.type {
        case .i2S:
            return try bytes(of: info) { (bytes) throws(ModelLoadError) in
                try TernaryCodes.fromI2S(bytes, rows: rows, columns: columns, tensor: info.name)
            }
        case .tq2Zero:
            return try bytes(of: info) { (bytes) throws(ModelLoadError) in
                try TernaryCodes.fromTQ2(bytes, rows: rows, columns: columns, tensor: info.name)
            }
        case .tq1Zero:
            return try bytes(of: info) { TernaryCodes.fromTQ1($0, rows: rows, columns: columns) }
        case .f32, .f16, .bf16:
            return try TernaryCodes.fromReal(try reals(info), rows: rows, columns: columns, tensor: info.name)
        default:
            throw .unsupportedTensorType(tensor: info.name, type: info.type.name)
        }
    }

    /// Decodes an embedding table or output head, `[rows = dimensions[1], columns = dimensions[0]]`. F32, F16
    /// and BF16 keep their precision; Q8_0 and Q6_K are dequantized to `float32`.
    public func dense(_ info: GGUFTensorInfo) throws(ModelLoadError) -> DenseMatrix {
        let (rows, columns) = try matrixShape(info)
        let storage: DenseMatrix.Storage
        switch info.type {
        case .f32, .q8Zero, .q6K: storage = .float32(try reals(info))
        case .f16: storage = .float16(try bytes(of: info) { RealDecoding.halves($0) })
        case .bf16: storage = .bfloat16(try bytes(of: info) { RealDecoding.halves($0) })
        default: throw .unsupportedTensorType(tensor: info.name, type: info.type.name)
        }
        return DenseMatrix(rows: rows, columns: columns, storage: storage)
    }

    /// Decodes a vector (a norm weight, a scale) stored as F32, F16 or BF16.
    public func vector(_ info: GGUFTensorInfo) throws(ModelLoadError) -> [Float] {
        guard info.dimensions.dropFirst().allSatisfy({ $0 == 1 }) else {
            throw .shapeMismatch(tensor: info.name, expected: [info.elementCount], found: info.dimensions)
        }
        switch info.type {
        case .f32, .f16, .bf16: return try reals(info)
        default: throw .unsupportedTensorType(tensor: info.name, type: info.type.name)
        }
    }

    /// The elements of a real-valued or Q8_0/Q6_K tensor as `Float`, in file order.
    private func reals(_ info: GGUFTensorInfo) throws(ModelLoadError) -> [Float] {
        try bytes(of: info) { (bytes) throws(ModelLoadError) in
            switch info.type {
            case .f32: return RealDecoding.floats(bytes)
            case .f16: return RealDecoding.halves(bytes).map { Float(Float16(bitPattern: $0)) }
            case .bf16: return RealDecoding.halves(bytes).map { Float(bfloat16Bits: $0) }
            case .q8Zero: return RealDecoding.fromQ8Zero(bytes)
            case .q6K: return RealDecoding.fromQ6K(bytes)
            default: throw .unsupportedTensorType(tensor: info.name, type: info.type.name)
            }
        }
    }

    /// `(rows, columns)` of a two-dimensional tensor; ggml lists the row length first.
    private func matrixShape(_ info: GGUFTensorInfo) throws(ModelLoadError) -> (rows: Int, columns: Int) {
        let dimensions = info.dimensions
        guard dimensions.count >= 2, dimensions.dropFirst(2).allSatisfy({ $0 == 1 }) else {
            throw .malformed(path: gguf.file.path, detail: "tensor \(info.name) of shape \(dimensions) is not a matrix")
        }
        return (dimensions[1], dimensions[0])
    }

    private func bytes<R>(
        of info: GGUFTensorInfo, _ body: (Span<UInt8>) throws(ModelLoadError) -> R
    ) throws(ModelLoadError) -> R {
        try gguf.file.withSpan(offset: info.offset, count: info.byteCount, what: "tensor \(info.name)", body)
    }
}

/// Builds canonical ternary codes from the ternary encodings GGUF files use.
enum TernaryCodes {
    /// Weights per `TQ1_0` / `TQ2_0` block, each with its own fp16 scale.
    static let blockSize = 256

    /// `I2_S` (bitnet.cpp): the whole tensor as one row-major run of 2-bit codes (0 → -1, 1 → 0, 2 → +1) in
    /// blocks of 128 weights; byte `g` of a block holds weights `g`, `32 + g`, `64 + g`, `96 + g` in bits 7-6,
    /// 5-4, 3-2, 1-0. A float32 scale for the whole tensor follows the codes.
    ///
    /// bitnet.cpp never writes a partial block (its rows are multiples of 128). When the weight count is not a
    /// multiple of 128, onebit reads the `r` trailing weights as a short block of `r / 4` bytes with the same
    /// interleave at a stride of `r / 4`, the only reading that fits them into the bytes the size formula gives.
    static func fromI2S(
        _ bytes: Span<UInt8>, rows: Int, columns: Int, tensor: String
    ) throws(ModelLoadError) -> TernaryMatrix {
        let count = rows * columns
        guard !containsCodeThree(bytes, in: 0..<count / 4) else { throw .notTernary(tensor: tensor) }
        var codes = [UInt8](repeating: 0, count: count / 4)
        let fullBlocks = count / 128
        for block in 0..<fullBlocks {
            for group in 0..<4 {
                gather(bytes, from: 32 * block, shift: 6 - 2 * group, into: &codes, at: 32 * block + 8 * group)
            }
        }
        // The short trailing block, one weight at a time: it only occurs in small test tensors.
        let tailStart = fullBlocks * 128
        let stride = (count - tailStart) / 4
        for weight in 0..<stride * 4 {
            let code = (bytes[tailStart / 4 + weight % stride] >> (6 - 2 * (weight / stride))) & 3
            let position = tailStart + weight
            codes[position >> 2] |= code << (2 * (position & 3))
        }
        let scale = Float(bitPattern: bytes.littleEndian(at: count / 4, as: UInt32.self))
        return TernaryMatrix(rows: rows, columns: columns, codes: codes, scale: .perTensor(scale))
    }

    /// `TQ2_0` (llama.cpp): per 256 weights, 64 bytes of codes `w + 1` and an fp16 scale. Weight `128c + 32l + m`
    /// of a block sits in bits `2l ..< 2l + 2` of byte `32c + m`.
    static func fromTQ2(
        _ bytes: Span<UInt8>, rows: Int, columns: Int, tensor: String
    ) throws(ModelLoadError) -> TernaryMatrix {
        let blockBytes = 66
        let blockCount = rows * columns / blockSize
        var codes = [UInt8](repeating: 0, count: rows * columns / 4)
        var scales = [Float](repeating: 0, count: blockCount)
        for block in 0..<blockCount {
            let base = block * blockBytes
            guard !containsCodeThree(bytes, in: base..<base + 64) else { throw .notTernary(tensor: tensor) }
            for half in 0..<2 {
                for lane in 0..<4 {
                    gather(
                        bytes, from: base + 32 * half, shift: 2 * lane, into: &codes,
                        at: (block * blockSize + 128 * half + 32 * lane) / 4)
                }
            }
            scales[block] = RealDecoding.half(bytes, at: base + 64)
        }
        return TernaryMatrix(
            rows: rows, columns: columns, codes: codes, scale: .perBlock(blockSize: blockSize, scales))
    }

    /// Packs 32 consecutive weights, whose codes sit at bit `shift` of the 32 bytes from `input`, into the 8
    /// canonical bytes from `output`. Working a byte at a time keeps loading a 2-billion-weight model to seconds.
    private static func gather(
        _ bytes: Span<UInt8>, from input: Int, shift: Int, into codes: inout [UInt8], at output: Int
    ) {
        for quad in 0..<8 {
            let first = input + 4 * quad
            var packed: UInt8 = 0
            for lane in 0..<4 {
                packed |= ((bytes[first + lane] >> shift) & 3) << (2 * lane)
            }
            codes[output + quad] = packed
        }
    }

    /// Whether a byte of `range` holds the code 3, which no ternary encoding uses: some bit pair has both bits set.
    private static func containsCodeThree(_ bytes: Span<UInt8>, in range: Range<Int>) -> Bool {
        var pairs: UInt8 = 0
        for index in range {
            pairs |= bytes[index] & (bytes[index] >> 1)
        }
        return pairs & 0x55 != 0
    }

    /// `TQ1_0` (llama.cpp): per 256 weights, 48 + 4 bytes of base-3 digits and an fp16 scale. Bytes 0-31 hold five
    /// digits each (weights `m + 32n`), bytes 32-47 five each (weights `160 + m + 16n`), bytes 48-51 four each
    /// (weights `240 + m + 4n`), digit `n` counted from the most significant. A byte stores its digits' value
    /// `v` scaled to `ceil(v * 256 / 243)`, so digit `n` is the top of `(byte * 3^n mod 256) * 3 / 256`.
    static func fromTQ1(_ bytes: Span<UInt8>, rows: Int, columns: Int) -> TernaryMatrix {
        let blockBytes = 54
        let powersOfThree: [Int] = [1, 3, 9, 27, 81]
        let blockCount = rows * columns / blockSize
        var codes = [UInt8](repeating: 0, count: rows * columns / 4)
        var scales = [Float](repeating: 0, count: blockCount)
        for block in 0..<blockCount {
            let base = block * blockBytes
            for weight in 0..<blockSize {
                let (byteIndex, digit) =
                    switch weight {
                    case ..<160: (weight % 32, weight / 32)
                    case ..<240: (32 + (weight - 160) % 16, (weight - 160) / 16)
                    default: (48 + (weight - 240) % 4, (weight - 240) / 4)
                    }
                let shifted = (Int(bytes[base + byteIndex]) * powersOfThree[digit]) & 0xFF
                let code = UInt8((shifted * 3) >> 8)
                let position = block * blockSize + weight
                codes[position >> 2] |= code << (2 * (position & 3))
            }
            scales[block] = RealDecoding.half(bytes, at: base + 52)
        }
        return TernaryMatrix(
            rows: rows, columns: columns, codes: codes, scale: .perBlock(blockSize: blockSize, scales))
    }

    /// Real values that a converter wrote after ternarizing: every value must be `0`, `+s` or `-s` for one `s`
    /// across the tensor, which becomes the per-tensor scale.
    static func fromReal(
        _ values: [Float], rows: Int, columns: Int, tensor: String
    ) throws(ModelLoadError) -> TernaryMatrix {
        // An all-zero matrix is ternary with any scale; 1 keeps later arithmetic finite.
        let magnitude = values.first(where: { $0 != 0 })?.magnitude ?? 1
        var codes = [UInt8](repeating: 0, count: values.count / 4)
        for (position, value) in values.enumerated() {
            let code: UInt8
            switch value {
            case 0: code = 1
            case magnitude: code = 2
            case -magnitude: code = 0
            default: throw .notTernary(tensor: tensor)
            }
            codes[position >> 2] |= code << (2 * (position & 3))
        }
        return TernaryMatrix(rows: rows, columns: columns, codes: codes, scale: .perTensor(magnitude))
    }
}

/// Reads real-valued tensor encodings into `Float` (or raw half-precision bits).
enum RealDecoding {
    /// Little-endian float32 values.
    static func floats(_ bytes: Span<UInt8>) -> [Float] {
        (0..<bytes.count / 4).map { Float(bitPattern: bytes.littleEndian(at: 4 * $0, as: UInt32.self)) }
    }

    /// Little-endian 16-bit patterns (f16 or bf16).
    static func halves(_ bytes: Span<UInt8>) -> [UInt16] {
        (0..<bytes.count / 2).map { bytes.littleEndian(at: 2 * $0, as: UInt16.self) }
    }

    /// The fp16 value at byte `index`.
    static func half(_ bytes: Span<UInt8>, at index: Int) -> Float {
        Float(Float16(bitPattern: bytes.littleEndian(at: index, as: UInt16.self)))
    }

    /// `Q8_0`: blocks of an fp16 scale `d` and 32 int8 `q`; `x = d * q`.
    static func fromQ8Zero(_ bytes: Span<UInt8>) -> [Float] {
        let blockBytes = 34
        var values: [Float] = []
        values.reserveCapacity(bytes.count / blockBytes * 32)
        for base in stride(from: 0, to: bytes.count, by: blockBytes) {
            let scale = half(bytes, at: base)
            for index in 0..<32 {
                values.append(scale * Float(Int8(bitPattern: bytes[base + 2 + index])))
            }
        }
        return values
    }

    /// `Q6_K`: 256-element blocks of `ql[128]` (low 4 bits), `qh[64]` (high 2 bits), 16 int8 sub-scales and an
    /// fp16 `d`; `x = d * scale * (q - 32)`. Each 128-element half `h` uses `ql[64h...]`, `qh[32h...]` and
    /// scales `8h...`: element `32k + l` of the half takes nibble `k / 2` of `ql[l + 32 (k % 2)]`, bits `2k` of
    /// `qh[l]`, and scale `l / 16 + 2k`.
    static func fromQ6K(_ bytes: Span<UInt8>) -> [Float] {
        let blockBytes = 210
        var values: [Float] = []
        values.reserveCapacity(bytes.count / blockBytes * 256)
        for base in stride(from: 0, to: bytes.count, by: blockBytes) {
            let d = half(bytes, at: base + 208)
            for element in 0..<256 {
                let (h, k, l) = (element / 128, (element % 128) / 32, element % 32)
                let low = (bytes[base + 64 * h + l + 32 * (k % 2)] >> (4 * (k / 2))) & 0xF
                let high = (bytes[base + 128 + 32 * h + l] >> (2 * k)) & 3
                let q = Int(low | high << 4) - 32
                let scale = Int8(bitPattern: bytes[base + 192 + 8 * h + l / 16 + 2 * k])
                values.append(d * Float(scale) * Float(q))
            }
        }
        return values
    }
}
