import OnebitModel

/// Float activations `[tokens][width]` in host memory.
public final class CPUActivations {
    /// Row-major storage for up to `capacity` tokens.
    var values: [Float]
    /// Elements per token.
    public let width: Int
    /// Most tokens the buffer holds.
    public let capacity: Int

    init(tokens: Int, width: Int) {
        self.width = width
        self.capacity = tokens
        values = [Float](repeating: 0, count: tokens * width)
    }

    /// A copy of token `token`'s row.
    public func row(_ token: Int) -> [Float] { Array(values[token * width..<(token + 1) * width]) }
}

/// Int8 activations `[tokens][width]` with one scale per token.
public final class CPUQuantizedActivations {
    var values: [Int8]
    var scales: [Float]
    /// Elements per token.
    public let width: Int

    init(tokens: Int, width: Int) {
        self.width = width
        values = [Int8](repeating: 0, count: tokens * width)
        scales = [Float](repeating: 0, count: tokens)
    }
}

/// Keys and values of every layer, `[capacity][width]` per layer, positions in order.
public final class CPUKeyValueCache {
    var keys: [[Float]]
    var values: [[Float]]
    /// Positions each layer holds.
    public let capacity: Int
    /// `kv_heads * head_dim`.
    public let width: Int

    init(layers: Int, capacity: Int, width: Int) {
        self.capacity = capacity
        self.width = width
        keys = Array(repeating: [Float](repeating: 0, count: capacity * width), count: layers)
        values = keys
    }
}

/// A ternary matrix as the CPU kernels read it.
public struct CPUTernaryWeights: Sendable {
    let matrix: TernaryMatrix
    let scales: [Float]
    let blockSize: Int

    init(_ matrix: TernaryMatrix) {
        self.matrix = matrix
        switch matrix.scale {
        case .perTensor(let s):
            scales = [s]
            blockSize = 0
        case .perBlock(let size, let values):
            scales = values
            blockSize = size
        }
    }
}
