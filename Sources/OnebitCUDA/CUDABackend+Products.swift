import OnebitModel

// Ternary products: queued single-token tiles, the tensor-core kernels of many tokens, and their geometry.
extension CUDABackend {
    /// One queued product of ``pending``: `weights` times the first `tokens` rows of `input` into `output`, and added
    /// into `residual` where one is folded in.
    struct PendingProduct {
        let weights: CUDATernaryWeights
        let input: CUDAQuantizedActivations
        let tokens: Int
        let output: CUDAActivations
        var residual: CUDAActivations?
    }

    /// `y = W q`. One token, and up to ``KernelSource/tileTokens`` where ``takesFewTokenTiles(_:tokens:)``, wait
    /// for the products after them that read the same activations, and for a residual add or gated activation
    /// they can fold in (``flushProducts(activation:)``). Otherwise the tensor cores for two or more tokens with one
    /// weight scale per tensor (on an H200, a step of 8 sequences decoded 3,190 tokens/s against 1,578 with the
    /// kernel below; 4 sequences 1,561 against 1,205), else a warp per output row, up to 8 tokens per pass over the
    /// weights.
    public func multiply(
        _ w: CUDATernaryWeights, _ q: CUDAQuantizedActivations, tokens: Int, into y: CUDAActivations
    ) {
        precondition(q.width == w.columns && y.width == w.rows, "matrix and buffers disagree")
        if useFusion
            && (tokens == 1 && w.chunks <= KernelSource.singleTokenMaximumChunks
                || takesFewTokenTiles(w, tokens: tokens))
        {
            flushRotations()
            if let first = pending.first, first.input !== q || first.tokens != tokens || pending.count == 3 { flush() }
            pending.append(PendingProduct(weights: w, input: q, tokens: tokens, output: y, residual: nil))
            return
        }
        multiplyUnqueued(w, q, tokens: tokens, into: y)
    }

    /// Whether products of `tokens` tokens (2 or more) with `w` wait in the queue for `ternary_tiles_n`: matrices of
    /// one scale a tensor, at most ``KernelSource/tileTokens`` tokens, and a tile with their activations within its
    /// shared memory. On an H200 steps of the 2B-4T shape decoded 1,743 tokens/s for 2 sequences instead of 1,350 on
    /// the tensor-core kernels of many tokens, 3,425 for 4 instead of 2,786, and 5,851 for 8 instead of 5,438.
    private func takesFewTokenTiles(_ w: CUDATernaryWeights, tokens: Int) -> Bool {
        useTiles && (2...KernelSource.tileTokens).contains(tokens) && w.blockChunks == 0
            && KernelSource.tileSharedBytes(matrices: 1, chunks: w.chunks, tokens: tokens)
                <= KernelSource.tileSharedLimit
    }

    /// `y = W q` launched now, on the tensor cores or a warp per output row (``multiply(_:_:tokens:into:)``).
    private func multiplyUnqueued(
        _ w: CUDATernaryWeights, _ q: CUDAQuantizedActivations, tokens: Int, into y: CUDAActivations
    ) {
        if tokens > 1 && w.blockChunks == 0 && useTensorCores {
            multiplyOnTensorCores([w], q, tokens: tokens, into: [y])
            return
        }
        launch(
            tokens == 1 ? .ternaryMatmulSingle : .ternaryMatmul, grid: ((w.rows + 7) / 8, (tokens + 7) / 8), block: 256,
            .address(w.codes.address),
            .int(w.rows), .int(w.chunks), .address(q.values.address), .address(q.scales.address), .int(tokens),
            .address(w.scales.address), .int(w.blockChunks), .address(y.buffer.address))
    }

    /// `ys[i] = ws[i] q` for matrices of the same width: two or more tokens with one weight scale per tensor go to
    /// the tensor cores in one launch for all of them (query, key and value; gate and up), anything else one product
    /// at a time.
    public func multiply(
        _ ws: [CUDATernaryWeights], _ q: CUDAQuantizedActivations, tokens: Int, into ys: [CUDAActivations]
    ) {
        guard tokens > 1, useTensorCores, (1...3).contains(ws.count),
            ws.allSatisfy({ $0.blockChunks == 0 && $0.chunks == ws[0].chunks }),
            !(useFusion && ws.allSatisfy { takesFewTokenTiles($0, tokens: tokens) })
        else {
            for (w, y) in zip(ws, ys) { multiply(w, q, tokens: tokens, into: y) }
            return
        }
        multiplyOnTensorCores(ws, q, tokens: tokens, into: ys)
    }

    /// The products of up to three matrices with per-tensor scales and the same width on the int8 tensor cores,
    /// one launch. Too few tiles (64 or 128 rows by 64 tokens) to fill the GPU (a prompt chunk, or a step of up to
    /// 64 sequences) split the columns too, into shares of at least 8 chunks, and rescale the summed integers in a
    /// second launch (on an H200 the split took a 64-sequence step of the 2B-4T shape from 7,822 to 10,557
    /// tokens/s); so do products of one to one and a half waves of tiles (on an H200, 512-token prompts of the
    /// 2B-4T shape, whose output and down products have 160 tiles, ran at 61,321-61,361 tokens/s against
    /// 60,601-60,663, and of Falcon3-10B's at 20,302-20,343 against 19,544-19,610).
    private func multiplyOnTensorCores(
        _ ws: [CUDATernaryWeights], _ q: CUDAQuantizedActivations, tokens: Int, into ys: [CUDAActivations]
    ) {
        for (w, y) in zip(ws, ys) {
            precondition(q.width == w.columns && y.width == w.rows, "matrix and buffers disagree")
        }
        let chunks = ws[0].chunks
        let tileRows = useWarpgroups ? KernelSource.warpgroupRows : 64
        let rowTiles = ws.reduce(0) { $0 + ($1.rows + tileRows - 1) / tileRows }
        let totalRows = ws.reduce(0) { $0 + $1.rows }
        let tiles = rowTiles * ((tokens + 63) / 64)
        let splits = Self.columnSplits(tiles: tiles, chunks: chunks, multiprocessors: context.multiprocessors)
        let share = (chunks + splits - 1) / splits
        let parts = (chunks + share - 1) / share
        // A pending rescale reads the sums buffer, which may be replaced (grown) below.
        flush()
        let partial = parts > 1 ? scratch(&partialSums, bytes: tokens * totalRows * 4).address : 0
        var matrices: [Argument] = []
        var scales: [Argument] = []
        for index in 0..<3 {
            if index < ws.count {
                let (w, y) = (ws[index], ys[index])
                matrices += [
                    .address(w.codes.address), .address(w.scales.address), .address(y.buffer.address), .int(w.rows),
                ]
                scales += [.address(w.scales.address), .address(y.buffer.address), .int(w.rows)]
            } else {
                matrices += [.address(0), .address(0), .address(0), .int(0)]
                scales += [.address(0), .address(0), .int(0)]
            }
        }
        emit(
            useWarpgroups ? .ternaryMatmulWarpgroup : .ternaryMatmulTensorCores,
            grid: (rowTiles, (tokens + 63) / 64 * parts), block: 256,
            [
                .int(chunks), .address(q.values.address), .address(q.scales.address), .int(tokens), .int(share),
                .address(partial),
            ] + matrices)
        guard parts > 1 else { return }
        // A residual add or gated activation and the norm after it, or the rotary embedding and cache store, may
        // follow and do the rescale on the way.
        pendingFinish = (
            PendingFinish(
                partial: partial, tokens: tokens, inputScales: q.scales.address, arguments: scales, rows: totalRows),
            ys
        )
    }

    /// Shares of its `chunks` columns a tensor-core product of `tiles` tiles splits into on a GPU of
    /// `multiprocessors`: enough for two blocks a multiprocessor where the tiles are fewer, two where they are one to
    /// one and a half waves (halves of the columns take the last wave from most multiprocessors idle to about as busy
    /// as the others: 1.5 block lengths instead of 2), and shares of at least 8 chunks.
    static func columnSplits(tiles: Int, chunks: Int, multiprocessors: Int) -> Int {
        let splits = max(1, min(2 * multiprocessors / tiles, chunks / 8))
        let lastWaveMostlyIdle = tiles > multiprocessors && 2 * tiles <= 3 * multiprocessors
        return splits == 1 && lastWaveMostlyIdle && chunks >= 16 ? 2 : splits
    }

    /// Launches the queued products: as one list, or (`activation` 1 for relu², 2 for SiLU) as a gate and up pair
    /// with the activation applied; on the tensor cores where ``launchTiles(_:activation:)`` takes them, else a group
    /// of lanes a row.
    func flushProducts(activation: Int = 0) {
        guard !pending.isEmpty else { return }
        let products = pending
        pending = []
        if launchTiles(products, activation: activation) { return }
        if products[0].tokens > 1 {
            launchUntiled(products, activation: activation)
            return
        }
        let input = products[0].input
        let chunks = products[0].weights.chunks
        let rows = activation == 0 ? products.reduce(0) { $0 + $1.weights.rows } : products[0].weights.rows
        let (lanes, blocks) = Self.singleTokenGeometry(
            rows: rows, chunks: chunks, blockScaled: products.contains { $0.weights.blockChunks != 0 },
            multiprocessors: context.multiprocessors)
        var arguments: [Argument] = [
            .address(input.values.address), .address(input.scales.address), .int(chunks), .int(activation),
            .int(lanes),
        ]
        for index in 0..<3 {
            if index < products.count {
                let p = products[index]
                arguments += [
                    .address(p.weights.codes.address), .address(p.weights.scales.address), .int(p.weights.blockChunks),
                    .int(p.weights.rows), .address(p.output.buffer.address), .address(p.residual?.buffer.address ?? 0),
                ]
            } else {
                arguments += [.address(0), .address(0), .int(0), .int(0), .address(0), .address(0)]
            }
        }
        emit(
            .ternaryFusedSingle, grid: (blocks, 1), block: 256,
            sharedBytes: KernelSource.singleTokenSharedBytes(chunks: chunks), arguments)
    }

    /// Launches `products` (``flushProducts(activation:)``'s) as `ternary_tiles_1`, or `ternary_tiles_n` for several
    /// tokens, a block for each 16 rows, and returns true; false, launching nothing, where the kernel does not take
    /// them: matrices of per-block scales, rows too wide for its shared memory, a GPU before Ampere, or more tiles
    /// than the GPU holds at once. One token's tiles go to ``launchStreamedTiles(_:activation:blocks:)`` instead
    /// wherever that kernel runs and they are more than its blocks, more than one wave of `ternary_tiles_1`, or a
    /// gate and up pair to which `ternary_tiles_1` would give no more warps a block than it has. On an H200
    /// one sequence of the 2B-4T shape decoded 1,000-1,004 tokens/s with `ternary_tiles_1` against 988-993 with
    /// `ternary_fused_1`, the bitnet-3b shape 603 against 592 (BENCHMARKS.md).
    func launchTiles(_ products: [PendingProduct], activation: Int) -> Bool {
        let chunks = products[0].weights.chunks
        let tokens = products[0].tokens
        let tiles =
            activation == 0
            ? products.reduce(0) { $0 + ($1.weights.rows + 15) / 16 } : (products[0].weights.rows + 15) / 16
        let warps = Self.tileWarps(tiles: tiles, chunks: chunks, multiprocessors: context.multiprocessors)
        // ternary_tiles_n stages one matrix's tile a block (both for an activation); ternary_tiles_1's launches
        // were measured with room for every matrix.
        let bytes =
            tokens == 1
            ? KernelSource.tileSharedBytes(matrices: activation == 0 ? products.count : 2, chunks: chunks)
            : KernelSource.tileSharedBytes(matrices: activation == 0 ? 1 : 2, chunks: chunks, tokens: tokens)
        let staticBytes = tokens == 1 ? KernelSource.tileStaticBytes : KernelSource.fewTokenTileStaticBytes
        guard useTiles, products.allSatisfy({ $0.weights.blockChunks == 0 }), bytes <= KernelSource.tileSharedLimit
        else { return false }
        let fitsOneWave =
            tiles
            <= Self.residentTiles(warps: warps, sharedBytes: bytes, staticBytes: staticBytes) * context.multiprocessors
        let streamed =
            tokens == 1 && streamsTiles
            ? Self.streamedTileBlocks(
                matrices: activation == 0 ? 1 : 2, chunks: chunks, multiprocessors: context.multiprocessors) : 0
        if Self.takesStreamedTiles(
            tiles: tiles, pair: activation != 0, warps: warps, streamedBlocks: streamed, fitsOneWave: fitsOneWave)
        {
            launchStreamedTiles(products, activation: activation, blocks: min(tiles, streamed))
            return true
        }
        guard fitsOneWave else { return false }
        let input = products[0].input
        var arguments: [Argument] = [.address(input.values.address)]
        if tokens > 1 { arguments.append(.int(input.stride)) }
        arguments += [.address(input.scales.address)]
        if tokens > 1 { arguments.append(.int(tokens)) }
        arguments += [.int(chunks), .int(activation)]
        arguments += Self.tileMatrixArguments(products)
        emit(
            tokens == 1 ? .ternaryTilesSingle : .ternaryTilesFew, grid: (tiles, 1), block: 32 * warps,
            sharedBytes: bytes, arguments)
        return true
    }

    /// Launches `products` (``launchTiles(_:activation:)``'s, one token) as `blocks` blocks of
    /// `ternary_tiles_stream_1`. On an H200 the Falcon3-10B shape, whose gate and up product is 1,440 tiles, more
    /// than one wave of `ternary_tiles_1`, decoded 474.4-475.1 tokens/s against 441.1 with `ternary_fused_1`. Within
    /// one wave the kernel also beats `ternary_tiles_1` on products of more tiles than its blocks, and on gate and
    /// up pairs of as few warps a block, whose two sums it takes in one pass: the bitnet-3b shape (600 query, key
    /// and value tiles, 540 gate and up tiles of 4 warps) decoded 953.6-965.9 tokens/s against 916.4-925.8, 2B-4T's
    /// (432 gate and up tiles of 4 warps) 1,005.9-1,010.3 against 1,001.8-1,007.1. bitnet-large's 256 gate and up
    /// tiles of 6 warps streamed at 1,646.7 against 1,661.3, so they keep `ternary_tiles_1` (BENCHMARKS.md).
    private func launchStreamedTiles(_ products: [PendingProduct], activation: Int, blocks: Int) {
        let chunks = products[0].weights.chunks
        let bytes = KernelSource.streamSharedBytes(matrices: activation == 0 ? 1 : 2, chunks: chunks)
        let input = products[0].input
        var arguments: [Argument] = [
            .address(input.values.address), .address(input.scales.address), .int(chunks), .int(activation),
        ]
        arguments += Self.tileMatrixArguments(products)
        emit(
            .ternaryTilesStreamSingle, grid: (blocks, 1), block: 32 * KernelSource.streamWarps, sharedBytes: bytes,
            arguments)
    }

    /// Whether one token's `tiles` tiles (of a gate and up `pair`, or not) take `ternary_tiles_stream_1`, which holds
    /// `streamedBlocks` blocks at once (0 where it does not run), rather than `ternary_tiles_1` in blocks of `warps`
    /// warps, which `fitsOneWave` or not: where there are more tiles than either holds at once, or a pair to which
    /// `ternary_tiles_1` gives no more warps than the streamed kernel, which sums gate and up in one pass.
    static func takesStreamedTiles(tiles: Int, pair: Bool, warps: Int, streamedBlocks: Int, fitsOneWave: Bool) -> Bool {
        streamedBlocks > 0 && (tiles > streamedBlocks || !fitsOneWave || (pair && warps <= KernelSource.streamWarps))
    }

    /// Blocks of `ternary_tiles_stream_1` a GPU of `multiprocessors` holds at once over tiles of `matrices` matrices
    /// (2 for a gate and up pair) of rows of `chunks` chunks; 0 where two stages of them are more shared memory than
    /// a block may have.
    static func streamedTileBlocks(matrices: Int, chunks: Int, multiprocessors: Int) -> Int {
        let bytes = KernelSource.streamSharedBytes(matrices: matrices, chunks: chunks)
        guard bytes <= KernelSource.tileSharedLimit else { return 0 }
        return Self.residentTiles(
            warps: KernelSource.streamWarps, sharedBytes: bytes, staticBytes: KernelSource.streamStaticBytes,
            registers: KernelSource.streamRegisters) * multiprocessors
    }

    /// The tile products' arguments for matrices 0, 1 and 2: each one's weights, scales, rows, output and residual,
    /// zeros past the last of `products`.
    private static func tileMatrixArguments(_ products: [PendingProduct]) -> [Argument] {
        (0..<3).flatMap { index -> [Argument] in
            guard index < products.count else { return [.address(0), .address(0), .int(0), .address(0), .address(0)] }
            let p = products[index]
            return [
                .address(p.weights.codes.address), .address(p.weights.scales.address), .int(p.weights.rows),
                .address(p.output.buffer.address), .address(p.residual?.buffer.address ?? 0),
            ]
        }
    }

    /// Launches queued products of several tokens that ``launchTiles(_:activation:)`` turned down (more tiles than
    /// one wave of blocks, or a gate and up pair whose two tiles and the tokens' activations are more than a block's
    /// shared memory) as ``multiply(_:_:tokens:into:)`` would have without the queue, then the residual add or gated
    /// activation that they were to fold in.
    func launchUntiled(_ products: [PendingProduct], activation: Int) {
        let tokens = products[0].tokens
        let input = products[0].input
        let weights = products.map(\.weights)
        let outputs = products.map(\.output)
        if useTensorCores && weights.allSatisfy({ $0.blockChunks == 0 && $0.chunks == weights[0].chunks }) {
            multiplyOnTensorCores(weights, input, tokens: tokens, into: outputs)
        } else {
            for (w, y) in zip(weights, outputs) { multiplyUnqueued(w, input, tokens: tokens, into: y) }
        }
        if activation != 0 {
            gatedActivation(activation == 1 ? .relu2 : .silu, gate: outputs[0], up: outputs[1], tokens: tokens)
        }
        for product in products {
            if let residual = product.residual { add(product.output, to: residual, tokens: tokens) }
        }
    }

    /// Warps a block of a `ternary_tiles_1` launch of `tiles` blocks over rows of `chunks` chunks: about a dozen
    /// warps a multiprocessor, in blocks of 2, 4 or 8 warps, and no more warps than quads of chunks.
    static func tileWarps(tiles: Int, chunks: Int, multiprocessors: Int) -> Int {
        let wanted = (12 * multiprocessors + tiles - 1) / max(1, tiles)
        let warps = wanted <= 2 ? 2 : wanted <= 4 ? 4 : KernelSource.tileWarps
        return max(1, min(warps, (chunks + 3) / 4))
    }

    /// Blocks of `warps` warps and `sharedBytes` of dynamic shared memory of a tile product (`staticBytes` of static
    /// memory with the driver's share a block) a multiprocessor holds at once, counting `registers` a thread (a test
    /// holds the kernels to that) and 227 KB of shared memory. A launch of more tiles than one wave of
    /// `ternary_tiles_1` takes `ternary_tiles_stream_1` (one token, sm_90 and later), `ternary_fused_1` (one token,
    /// before) or the kernels for many tokens (``launchUntiled(_:activation:)``): blocks that wait for a free slot
    /// copy none of their weights before the wait. With every product on `ternary_tiles_1`, the Falcon3-10B shape,
    /// whose 1,440 gate and up tiles are more than one wave, decoded 203 tokens/s against 216 on an H200; with this
    /// rule, 218 against 216.
    static func residentTiles(warps: Int, sharedBytes: Int, staticBytes: Int, registers: Int = 64) -> Int {
        let threads = 32 * warps
        return max(
            0, min(32, 2048 / threads, 65_536 / (registers * threads), 227 * 1024 / (sharedBytes + staticBytes)))
    }

    /// Lanes a row and blocks of 256 threads of a `ternary_fused_1` launch over `rows` rows of `chunks` chunks.
    ///
    /// Rows of up to 64 chunks take 16 lanes each, longer rows and rows of per-block scales (`blockScaled`) a warp:
    /// on an H200 a 2B-4T step (rows of 40 chunks but the down product's 108) decoded 809-833 tokens/s against
    /// 791-796 with 32 lanes a row and 801-811 with 8. A launch has at most four blocks a multiprocessor, all
    /// resident at once (48 registers a thread allow five), so every lane's first weights are requested while the
    /// kernel before still runs; on an H200 809-825 tokens/s with four, 808-809 with five and 798-800 with three.
    static func singleTokenGeometry(
        rows: Int, chunks: Int, blockScaled: Bool, multiprocessors: Int
    ) -> (lanes: Int, blocks: Int) {
        let lanes = blockScaled || chunks > 64 ? 32 : 16
        let warps = (rows * lanes + 31) / 32
        return (lanes, max(1, min((warps + 7) / 8, 4 * multiprocessors)))
    }
}
