import OnebitCUDA

/// The CUDA backend keeps one contiguous cache per sequence (its attention kernels read one run of positions): a
/// pool's block is a whole sequence's cache of `contextLength` positions, made on first use, so the block
/// bookkeeping of the engine is the same for every backend.
extension CUDABackend: Backend {
    /// A whole context: every sequence holds one block.
    public func keyValueBlockPositions(contextLength: Int) -> Int { contextLength }

    /// A pool whose blocks are allocated in device memory when first used.
    public func makeKeyValuePool(layers: Int, width: Int, blockPositions: Int, blocks: Int) -> CUDAKeyValuePool {
        CUDAKeyValuePool(backend: self, layers: layers, width: width, blockPositions: blockPositions, blocks: blocks)
    }

    /// The cache of the sequence's one block.
    public func keyValueCache(in pool: CUDAKeyValuePool, blocks: [Int32]) -> CUDAKeyValueCache {
        precondition(blocks.count == 1, "a CUDA sequence holds one block of a whole context")
        return pool.block(Int(blocks[0]))
    }

    /// One sequence through the single-sequence kernels; several in one launch each for store and attention
    /// (``CUDABackend/attendSequences(keys:values:queries:positions:segments:layer:heads:kvHeads:headDim:into:)``).
    public func attend(
        keys: CUDAActivations, values: CUDAActivations, queries: CUDAActivations, positions: [Int32],
        segments: [(rows: Range<Int>, cache: CUDAKeyValueCache)], layer: Int, heads: Int, kvHeads: Int,
        headDim: Int, into out: CUDAActivations
    ) {
        if let cache = Self.onlySequence(segments) {
            attendAlone(
                keys: keys, values: values, queries: queries, positions: positions, cache: cache, layer: layer,
                heads: heads, kvHeads: kvHeads, headDim: headDim, into: out)
            return
        }
        attendSequences(
            keys: keys, values: values, queries: queries, positions: positions, segments: segments, layer: layer,
            heads: heads, kvHeads: kvHeads, headDim: headDim, into: out)
    }
}

/// Whole-sequence caches of the CUDA backend, made when a block is first used and kept for reuse.
public final class CUDAKeyValuePool {
    private let backend: CUDABackend
    private let layers: Int
    private let width: Int
    private let blockPositions: Int
    private var blocks: [CUDAKeyValueCache?]

    init(backend: CUDABackend, layers: Int, width: Int, blockPositions: Int, blocks: Int) {
        self.backend = backend
        self.layers = layers
        self.width = width
        self.blockPositions = blockPositions
        self.blocks = Array(repeating: nil, count: blocks)
    }

    /// Block `index`, allocated on first use.
    func block(_ index: Int) -> CUDAKeyValueCache {
        if let cache = blocks[index] { return cache }
        let cache = backend.makeKeyValueCache(layers: layers, capacity: blockPositions, width: width)
        blocks[index] = cache
        return cache
    }
}
