/// A row-major matrix of real numbers that is not ternary: embeddings and the output head.
public struct DenseMatrix: Sendable, Equatable {
    /// Number of rows (vocabulary entries for an embedding table).
    public let rows: Int
    /// Elements per row.
    public let columns: Int
    /// The elements, in the precision the file stores them (Q8_0 and Q6_K are dequantized to `float32` at load).
    public let storage: Storage

    /// Element storage; the half-precision cases hold raw bit patterns.
    public enum Storage: Sendable, Equatable {
        case float32([Float])
        case float16([UInt16])
        case bfloat16([UInt16])
    }

    /// Wraps storage whose element count must equal `rows * columns`.
    public init(rows: Int, columns: Int, storage: Storage) {
        precondition(storage.count == rows * columns, "storage does not match the shape")
        self.rows = rows
        self.columns = columns
        self.storage = storage
    }

    /// A short name of the element type, as `onebit info` prints it.
    public var elementTypeName: String {
        switch storage {
        case .float32: "f32"
        case .float16: "f16"
        case .bfloat16: "bf16"
        }
    }

    /// Bytes the elements occupy.
    public var byteCount: Int {
        switch storage {
        case .float32(let v): v.count * 4
        case .float16(let v), .bfloat16(let v): v.count * 2
        }
    }

    /// Row `row` converted to `Float`.
    public func row(_ row: Int) -> [Float] {
        let range = row * columns..<(row + 1) * columns
        switch storage {
        case .float32(let v): return Array(v[range])
        case .float16(let v): return v[range].map { Float(Float16(bitPattern: $0)) }
        case .bfloat16(let v): return v[range].map { Float(bfloat16Bits: $0) }
        }
    }
}

extension DenseMatrix.Storage {
    /// Number of elements.
    public var count: Int {
        switch self {
        case .float32(let v): v.count
        case .float16(let v), .bfloat16(let v): v.count
        }
    }
}

extension Float {
    /// The value of a bfloat16 bit pattern (exact: bfloat16 is the top half of a float32).
    @inlinable
    public init(bfloat16Bits bits: UInt16) {
        self.init(bitPattern: UInt32(bits) << 16)
    }
}
