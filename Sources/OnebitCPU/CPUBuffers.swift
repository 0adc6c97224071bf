import CKernels
import OnebitModel
import Synchronization

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// 64-byte-aligned memory the kernels read and write through raw pointers, owned by the object that holds it.
///
/// Kernels running on several threads write disjoint parts of one buffer at once; Swift arrays would need an
/// exclusive access per call, so buffers are plain memory handed to C.
final class AlignedBuffer<Element>: @unchecked Sendable {
    let pointer: UnsafeMutablePointer<Element>
    let count: Int

    init(zeroed count: Int) {
        self.count = count
        let raw = UnsafeMutableRawPointer.allocate(
            byteCount: max(count, 1) * MemoryLayout<Element>.stride, alignment: 64)
        raw.initializeMemory(as: UInt8.self, repeating: 0, count: max(count, 1) * MemoryLayout<Element>.stride)
        pointer = raw.bindMemory(to: Element.self, capacity: max(count, 1))
    }

    deinit { UnsafeMutableRawPointer(pointer).deallocate() }
}

/// Zeroed memory the operating system commits page by page as it is first written, and takes back when a range is
/// discarded: a KV pool sized for the worst case costs only what is used, and scratch sized for a prompt chunk costs
/// one token's rows once the chunk is over. The address range is reserved without counting against the commit limit
/// (`MAP_NORESERVE`), so a large bound does not fail at start on a machine with less memory than the bound.
final class MappedBuffer<Element>: @unchecked Sendable {
    let pointer: UnsafeMutablePointer<Element>
    let count: Int
    private let byteCount: Int

    init(count: Int) {
        self.count = count
        byteCount = max(count, 1) * MemoryLayout<Element>.stride
        let raw = mmap(nil, byteCount, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0)
        guard let raw, raw != UnsafeMutableRawPointer(bitPattern: -1) else {
            preconditionFailure("could not reserve \(byteCount) bytes of address space")
        }
        pointer = raw.bindMemory(to: Element.self, capacity: max(count, 1))
    }

    /// Returns the pages that lie wholly past the first `count` elements to the operating system; they read as
    /// zeros when next used.
    func discard(after count: Int) {
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        let start = (count * MemoryLayout<Element>.stride + page - 1) / page * page
        guard start < byteCount else { return }
        madvise(UnsafeMutableRawPointer(pointer) + start, byteCount - start, Int32(MADV_DONTNEED))
    }

    deinit { munmap(pointer, byteCount) }
}

/// Float activations `[tokens][width]` in host memory.
public final class CPUActivations {
    let storage: MappedBuffer<Float>
    /// Elements per token.
    public let width: Int
    /// Most tokens the buffer holds.
    public let capacity: Int

    init(tokens: Int, width: Int) {
        self.width = width
        self.capacity = tokens
        storage = MappedBuffer(count: tokens * width)
    }

    var pointer: UnsafeMutablePointer<Float> { storage.pointer }

    /// Gives the memory of the rows past the first `rows` back to the operating system; they read as zeros.
    func discardRows(after rows: Int) { storage.discard(after: rows * width) }

    /// A copy of token `token`'s row.
    public func row(_ token: Int) -> [Float] {
        Array(UnsafeBufferPointer(start: pointer + token * width, count: width))
    }
}

/// Int8 activations `[tokens][width]` with one scale per token.
public final class CPUQuantizedActivations {
    let values: MappedBuffer<Int8>
    let scales: AlignedBuffer<Float>
    /// Elements per token.
    public let width: Int

    init(tokens: Int, width: Int) {
        self.width = width
        values = MappedBuffer(count: tokens * width)
        scales = AlignedBuffer(zeroed: tokens)
    }

    /// Gives the memory of the rows past the first `rows` back to the operating system; they read as zeros.
    func discardRows(after rows: Int) { values.discard(after: rows * width) }
}

/// Keys and values of every layer for many sequences, in blocks of `blockPositions` positions.
///
/// Block `b` holds, for each layer, `blockPositions` rows of keys then as many rows of values, `width` floats each:
/// one block is all a sequence needs for `blockPositions` more positions, and it lies in one run of memory, so the
/// pages the operating system commits follow the blocks in use (``MappedBuffer``).
public final class CPUKeyValuePool {
    let storage: MappedBuffer<Float>
    /// Layers each block holds.
    public let layers: Int
    /// Positions per block.
    public let blockPositions: Int
    /// Blocks in the pool.
    public let blocks: Int
    /// `kv_heads * head_dim`.
    public let width: Int

    init(layers: Int, width: Int, blockPositions: Int, blocks: Int) {
        self.layers = layers
        self.width = width
        self.blockPositions = blockPositions
        self.blocks = blocks
        storage = MappedBuffer(count: blocks * layers * 2 * blockPositions * width)
    }

    /// Floats from one block to the next.
    var blockStride: Int { layers * 2 * blockPositions * width }

    /// Layer `layer`'s keys in block 0; block `b` is `b * blockStride` further.
    func keys(_ layer: Int) -> UnsafeMutablePointer<Float> { storage.pointer + layer * 2 * blockPositions * width }

    /// Layer `layer`'s values in block 0.
    func values(_ layer: Int) -> UnsafeMutablePointer<Float> { keys(layer) + blockPositions * width }
}

/// One sequence's keys and values: the blocks of a pool that hold its positions, in order.
public struct CPUKeyValueCache {
    /// The pool the blocks belong to.
    public let pool: CPUKeyValuePool
    /// Block ids; position `p` lives in `table[p / pool.blockPositions]`.
    public let table: [Int32]

    /// Positions the blocks hold.
    public var capacity: Int { table.count * pool.blockPositions }
}

/// A ternary matrix as the CPU kernels read it: the packed layout of `ternary.c` (four 64-column runs per 64-byte
/// block), repacked once at load. The packed bytes are mapped pages of their own: the real shapes' matrices are
/// whole pages (a 2560-column row is 640 bytes), which a heap block's header would push one page over.
public struct CPUTernaryWeights: Sendable {
    let packed: MappedBuffer<UInt8>
    let rows: Int
    let columns: Int
    let scales: [Float]
    /// 0 for one scale per tensor, else columns per scale (a multiple of 256).
    let blockSize: Int
    /// The canonical matrix, kept only when its scale blocks do not fit the packed kernels.
    let canonical: TernaryMatrix?

    init(_ matrix: TernaryMatrix) {
        rows = matrix.rows
        columns = matrix.columns
        switch matrix.scale {
        case .perTensor(let s):
            scales = [s]
            blockSize = 0
        case .perBlock(let size, let values):
            scales = values
            blockSize = size
        }
        let packable = blockSize % 256 == 0
        canonical = packable ? nil : matrix
        packed = MappedBuffer(count: packable ? rows * ob_packed_row_bytes(columns) : 0)
        if packable { ob_ternary_pack(matrix.codes, rows, columns, packed.pointer) }
    }

    /// Bytes the kernels stream per use.
    public var byteCount: Int { canonical?.codes.count ?? packed.count }
}

/// An embedding table or output head, with the int8 copy of it the opt-in int8 head reads.
public final class CPUDenseWeights: Sendable {
    /// The matrix as the file stores it.
    public let matrix: DenseMatrix
    private let int8 = Mutex<Int8Rows?>(nil)

    init(matrix: DenseMatrix) { self.matrix = matrix }

    /// The int8 copy of a bf16 matrix, quantized on first use (an embedding table that is never a head never pays
    /// for it); `nil` for other precisions, which keep their stored head.
    func int8Rows(pool: ThreadPool) -> Int8Rows? {
        guard case .bfloat16(let bits) = matrix.storage else { return nil }
        return int8.withLock { rows in
            if rows == nil { rows = Int8Rows(bits, rows: matrix.rows, columns: matrix.columns, pool: pool) }
            return rows
        }
    }

    /// Rows quantized to int8 with one scale per row (`ob_int8_rows_from_bf16`).
    final class Int8Rows: Sendable {
        let codes: AlignedBuffer<Int8>
        let scales: AlignedBuffer<Float>
        let sums: AlignedBuffer<Int32>

        init(_ bits: [UInt16], rows: Int, columns: Int, pool: ThreadPool) {
            codes = AlignedBuffer(zeroed: rows * columns)
            scales = AlignedBuffer(zeroed: rows)
            sums = AlignedBuffer(zeroed: rows)
            let (codes, scales, sums) = (codes.pointer, scales.pointer, sums.pointer)
            bits.withUnsafeBufferPointer { bits in
                pool.parallelFor(rows, granularity: 64) { range in
                    let first = range.lowerBound
                    ob_int8_rows_from_bf16(
                        bits.baseAddress! + first * columns, range.count, columns, codes + first * columns,
                        scales + first, sums + first)
                }
            }
        }
    }
}
