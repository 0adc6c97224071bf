import OnebitCUDA

/// The CUDA backend pages the key/value cache as the CPU does: the kernels find each position's block through the
/// sequence's block table.
extension CUDABackend: Backend {
    /// The kernels' block size, whatever the context.
    public func keyValueBlockPositions(contextLength: Int) -> Int { CUDABackend.keyValueBlockPositions }

    /// What the GPU's free memory holds.
    public func keyValueBlockLimit(layers: Int, width: Int, blockPositions: Int) -> Int? {
        keyValueBlockLimit(layers: layers, width: width)
    }

    /// A pool whose device memory is allocated as its blocks are first used.
    public func makeKeyValuePool(layers: Int, width: Int, blockPositions: Int, blocks: Int) -> CUDAKeyValuePool {
        precondition(
            blockPositions == CUDABackend.keyValueBlockPositions, "CUDA blocks hold a fixed number of positions")
        return makeKeyValuePool(layers: layers, width: width, blocks: blocks)
    }

    /// The draws made on the GPU.
    public func draw(_ x: CUDAActivations, rows: [Int], head: CUDADenseWeights, draws: [RowDraw]) -> [Int] {
        drawTokens(x, rows: rows, head: head, draws: Self.deviceDraws(draws))
    }

    /// The draws made on the GPU, their tokens kept there.
    public func drawKept(
        _ x: CUDAActivations, rows: [Int], head: CUDADenseWeights, draws: [RowDraw], step index: Int, of count: Int
    ) -> [Int]? {
        drawKept(x, rows: rows, head: head, draws: Self.deviceDraws(draws), step: index, of: count)
    }

    /// The draws as the kernels take them, one array a parameter.
    private static func deviceDraws(_ draws: [RowDraw]) -> Draws {
        Draws(
            temperatures: draws.map(\.temperature), minPs: draws.map(\.minP), topKs: draws.map(\.topK),
            topPs: draws.map(\.topP), units: draws.map(\.unit))
    }

    /// The sequence held in `blocks` of `pool`.
    public func keyValueCache(in pool: CUDAKeyValuePool, blocks: [Int32]) -> CUDAKeyValueCache {
        CUDAKeyValueCache(pool, blocks: blocks)
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
