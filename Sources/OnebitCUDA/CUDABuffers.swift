import OnebitModel

/// Float activations `[tokens][width]` in GPU memory.
public final class CUDAActivations {
    let buffer: DeviceBuffer
    /// Elements per token.
    public let width: Int
    /// Most tokens the buffer holds.
    public let capacity: Int

    init(_ context: CUDAContext, tokens: Int, width: Int) {
        buffer = DeviceBuffer(context, byteCount: tokens * width * 4)
        self.width = width
        capacity = tokens
    }
}

/// Int8 activations with one scale per token; rows are padded with zeros to whole 64-column chunks, the unit the
/// ternary kernel reads.
public final class CUDAQuantizedActivations {
    let values: DeviceBuffer
    let scales: DeviceBuffer
    /// Elements per token.
    public let width: Int
    /// Bytes from one token's row to the next.
    let stride: Int

    init(_ context: CUDAContext, tokens: Int, width: Int) {
        self.width = width
        stride = CUDATernaryWeights.chunks(columns: width) * 64
        values = DeviceBuffer(context, byteCount: tokens * stride)
        scales = DeviceBuffer(context, byteCount: tokens * 4)
    }
}

/// Keys and values of every layer for many sequences, in blocks of ``CUDABackend/keyValueBlockPositions`` positions:
/// a block is `[layer][keys, values][position][width]` floats, as the CPU's pool lays it out. Device memory is taken
/// in slabs of blocks when a block is first used, so a pool sized for every sequence's whole context costs only what
/// the sequences have held so far.
public final class CUDAKeyValuePool {
    private let context: CUDAContext
    /// Blocks in the pool.
    public let blocks: Int
    /// Bytes of one block.
    let blockBytes: Int
    /// Blocks per slab: enough for about 128 MB, at least one.
    private let slabBlocks: Int
    private var slabs: [DeviceBuffer?]

    init(_ context: CUDAContext, layers: Int, width: Int, blocks: Int) {
        self.context = context
        self.blocks = blocks
        blockBytes = Self.blockBytes(layers: layers, width: width)
        slabBlocks = max(1, (128 << 20) / blockBytes)
        slabs = Array(repeating: nil, count: (blocks + slabBlocks - 1) / slabBlocks)
    }

    /// Bytes of a block of `layers` layers of `width` floats, keys and values.
    static func blockBytes(layers: Int, width: Int) -> Int {
        layers * 2 * CUDABackend.keyValueBlockPositions * width * 4
    }

    /// The device address of block `index`, whose slab is allocated now if none of its blocks was used before.
    func address(of index: Int) -> UInt64 {
        precondition(index >= 0 && index < blocks, "block \(index) outside a pool of \(blocks)")
        let slab = index / slabBlocks
        if slabs[slab] == nil {
            // The scheduler's thread may be the first to touch the pool.
            context.makeCurrent()
            let count = min(slabBlocks, blocks - slab * slabBlocks)
            slabs[slab] = DeviceBuffer(context, byteCount: count * blockBytes)
        }
        return slabs[slab]!.address + UInt64((index % slabBlocks) * blockBytes)
    }
}

/// One sequence's keys and values: the device addresses of the pool blocks that hold its positions, in order
/// (position `p` in block `blockAddresses[p / CUDABackend.keyValueBlockPositions]`).
public struct CUDAKeyValueCache {
    /// The pool, kept alive as long as a view of its memory is.
    let pool: CUDAKeyValuePool
    /// Where each block is.
    let blockAddresses: [UInt64]

    /// The view of `pool`'s blocks `blocks`, in position order.
    public init(_ pool: CUDAKeyValuePool, blocks: [Int32]) {
        self.pool = pool
        blockAddresses = blocks.map { pool.address(of: Int($0)) }
    }

    /// Positions the blocks hold.
    public var capacity: Int { blockAddresses.count * CUDABackend.keyValueBlockPositions }
}

/// A norm weight vector in GPU memory.
public final class CUDAVectorWeights {
    let buffer: DeviceBuffer

    init(_ context: CUDAContext, _ values: [Float]) {
        buffer = DeviceBuffer(context, copying: values)
    }
}

/// An embedding table or output head in GPU memory, in the precision the file stores.
public final class CUDADenseWeights {
    let buffer: DeviceBuffer
    let rows: Int
    let columns: Int
    let storage: Precision

    enum Precision { case float32, float16, bfloat16 }

    init(_ context: CUDAContext, _ matrix: DenseMatrix) {
        rows = matrix.rows
        columns = matrix.columns
        switch matrix.storage {
        case .float32(let values):
            buffer = DeviceBuffer(context, copying: values)
            storage = .float32
        case .float16(let values):
            buffer = DeviceBuffer(context, copying: values)
            storage = .float16
        case .bfloat16(let values):
            buffer = DeviceBuffer(context, copying: values)
            storage = .bfloat16
        }
    }
}

/// A ternary matrix repacked for ``Kernel/ternaryMatmul`` (the layout is described in ``KernelSource``).
public final class CUDATernaryWeights {
    let codes: DeviceBuffer
    let scales: DeviceBuffer
    let rows: Int
    let columns: Int
    /// 64-column chunks per row (the last one padded with zero weights).
    let chunks: Int
    /// Chunks per scale block, or 0 for one scale per tensor.
    let blockChunks: Int

    init(_ context: CUDAContext, _ matrix: TernaryMatrix) {
        rows = matrix.rows
        columns = matrix.columns
        chunks = Self.chunks(columns: matrix.columns)
        switch matrix.scale {
        case .perTensor(let s):
            blockChunks = 0
            scales = DeviceBuffer(context, copying: [s])
        case .perBlock(let size, let values):
            precondition(Self.supports(blockSize: size, columns: matrix.columns), "see CUDABackend.validate")
            blockChunks = size / 64
            scales = DeviceBuffer(context, copying: values)
        }
        codes = DeviceBuffer(context, copying: Self.repack(matrix))
    }

    /// Whether the kernel handles scale blocks of `blockSize` columns: whole chunks that tile every row.
    static func supports(blockSize: Int, columns: Int) -> Bool {
        blockSize % 64 == 0 && columns % blockSize == 0
    }

    /// 64-column chunks that hold `columns` columns.
    static func chunks(columns: Int) -> Int { (columns + 63) / 64 }

    /// The kernel's layout: per row, `chunks * 4` words; in word `4c + m` (word `m` of chunk `c`), byte `i` holds in
    /// bits `2j ..< 2j + 2` the code of column `64c + 16j + 4m + i`. Columns past the matrix get code 1 (weight 0).
    static func repack(_ matrix: TernaryMatrix) -> [UInt32] {
        let wordsPerRow = chunks(columns: matrix.columns) * 4
        let bytesPerRow = matrix.bytesPerRow
        var words = [UInt32](repeating: 0, count: matrix.rows * wordsPerRow)
        matrix.codes.withUnsafeBufferPointer { source in
            words.withUnsafeMutableBufferPointer { destination in
                for row in 0..<matrix.rows {
                    let input = row * bytesPerRow
                    for word in 0..<wordsPerRow {
                        // Source byte 16c + 4j + m holds columns 64c + 16j + 4m + i in bits 2i: a 4 x 4 transpose of
                        // bit pairs.
                        var value: UInt32 = 0
                        for j in 0..<4 {
                            let index = 16 * (word / 4) + 4 * j + word % 4
                            let byte = index < bytesPerRow ? UInt32(source[input + index]) : 0x55
                            for i in 0..<4 { value |= ((byte >> UInt32(2 * i)) & 3) << UInt32(8 * i + 2 * j) }
                        }
                        destination[row * wordsPerRow + word] = value
                    }
                }
            }
        }
        return words
    }
}
