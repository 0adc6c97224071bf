// Rotary embeddings, the key/value cache store and attention, for prompts and for decoding steps.
extension CUDABackend {
    /// What ``pendingRopeStore`` launches: the step's query, key and value rows and where the keys and values go.
    struct PendingRopeStore {
        let query: CUDAActivations
        let keys: CUDAActivations
        let values: CUDAActivations
        let heads: Int
        let kvHeads: Int
        let headDim: Int
        let positions: UInt64
        let theta: Float
        /// The device block table of the sequence's cache.
        let blocks: UInt64
        let layer: Int
    }

    /// Splits of single-token attention over the cached positions.
    static let attentionSplits = 32

    /// One queued rotary embedding of ``rotations``: the first `tokens` rows of `x`, `heads` heads a row.
    struct PendingRotation {
        let x: CUDAActivations
        let tokens: Int
        let heads: Int
        let headDim: Int
        let positions: UInt64
        let theta: Float
    }

    /// Rotates the heads of the first `tokens` rows of `x` in place.
    public func applyRoPE(
        _ x: CUDAActivations, tokens: Int, heads: Int, headDim: Int, positions: [Int32], theta: Float
    ) {
        let positions = devicePositions(positions)
        if useFusion {
            flushProducts()
            rotations.append(
                PendingRotation(
                    x: x, tokens: tokens, heads: heads, headDim: headDim, positions: positions, theta: theta))
            return
        }
        launch(
            .rope, grid: (tokens, 1), block: 256, .address(x.buffer.address), .int(heads), .int(headDim),
            .address(positions), .float(theta))
    }

    /// Writes keys and values of `tokens` rows into layer `layer` of the cache.
    public func store(
        keys: CUDAActivations, values: CUDAActivations, tokens: Int, positions: [Int32], layer: Int,
        in cache: CUDAKeyValueCache
    ) {
        let positions = devicePositions(positions)
        let tables = deviceBlockTables([(0..<tokens, cache)], rows: tokens)
        let width = keys.width
        if let (query, key) = queuedRotations(keys: keys, tokens: tokens, positions: positions, width: width) {
            if tokens == 1 {
                flushProducts()
                releaseRopeStore()
                pendingRopeStore = PendingRopeStore(
                    query: query.x, keys: keys, values: values, heads: query.heads, kvHeads: key.heads,
                    headDim: key.headDim, positions: positions, theta: key.theta, blocks: tables.blocks, layer: layer)
                return
            }
            launchRopeStore(query: query, key: key, values: values, tables: tables, layer: layer)
            return
        }
        launch(
            .storeKeyValue, grid: ((width + 255) / 256, tokens), block: 256, .address(keys.buffer.address),
            .address(values.buffer.address), .int(width), .address(positions), .address(tables.blocks),
            .address(tables.rows), .int(layer))
    }

    /// Causal attention of `tokens` queries. One token takes the split single-token kernel; prompt chunks of 16 or
    /// more tokens whose last sees ``prefillTensorCoreKeys`` keys or more the tensor-core kernel where the heads
    /// allow (sm_80 and later, head sizes a multiple of 8 up to 128, up to 256 on sm_90 and sm_100 from
    /// ``prefillWideTensorCoreKeys`` keys), other chunks the CUDA-core prefill kernel for heads up to 128; anything
    /// else one block per head and token.
    public func attention(
        queries: CUDAActivations, tokens: Int, positions: [Int32], layer: Int, cache: CUDAKeyValueCache,
        heads: Int, kvHeads: Int, headDim: Int, into out: CUDAActivations
    ) {
        let lastPosition = positions.max()
        let positions = devicePositions(positions)
        let blocks = deviceBlockTables([(0..<tokens, cache)], rows: tokens).blocks
        let shape = HeadShape(heads: heads, kvHeads: kvHeads, headDim: headDim)
        if tokens == 1 && useFusion && headDim % 4 == 0 {
            var rope: [Argument] = [.address(0), .address(0), .float(0)]
            if let r = pendingRopeStore, r.query === queries, r.blocks == blocks, r.layer == layer,
                r.positions == positions, r.heads == heads, r.kvHeads == kvHeads, r.headDim == headDim
            {
                pendingRopeStore = nil
                rope = [.address(r.keys.buffer.address), .address(r.values.buffer.address), .float(r.theta)]
            }
            let splits = Self.attentionSplits
            let partials = scratch(&attentionPartials, bytes: heads * splits * (headDim + 2) * 4)
            let counters = scratch(&blockCounters, bytes: heads * 4).address
            flush()
            emit(
                headDim <= KernelSource.attentionSplitHeadDim ? .attentionSplit : .attentionSplitWide,
                grid: (heads, splits),
                block: KernelSource.attentionSplitWarps * 32,
                [
                    .address(queries.buffer.address), .address(blocks), .int(layer), .int(heads), .int(kvHeads),
                    .int(headDim), .address(positions), .float(shape.scale), .address(partials.address),
                    .address(out.buffer.address), .address(counters),
                ] + rope)
            return
        }
        let rows = RowAddresses(
            queries: queries.buffer.address, out: out.buffer.address, positions: positions, tables: blocks, rows: 0)
        if launchPrefill(rows, tokens: tokens, lastPosition: Int(lastPosition ?? 0), shape: shape, layer: layer) {
            return
        }
        launchPlainAttention(rows, tokens: tokens, shape: shape, layer: layer)
    }

    /// Where a run of rows' queries, outputs, positions and block tables start on the device (`rows`: each row's
    /// table offset, or 0 where all read the one table at `tables`).
    private struct RowAddresses {
        var queries, out, positions, tables, rows: UInt64

        /// The same run from its `offset`th row on, `width` floats a row of queries and outputs.
        func dropping(_ offset: Int, width: Int) -> RowAddresses {
            RowAddresses(
                queries: queries + UInt64(4 * offset * width), out: out + UInt64(4 * offset * width),
                positions: positions + UInt64(4 * offset), tables: tables,
                rows: rows == 0 ? 0 : rows + UInt64(4 * offset))
        }
    }

    /// A model's attention heads.
    private struct HeadShape {
        var heads, kvHeads, headDim: Int

        /// What scores are scaled by: 1 / sqrt(headDim).
        var scale: Float { 1 / Float(headDim).squareRoot() }
    }

    /// Queues the attention of a prompt chunk of `tokens` rows of one sequence (one table at `rows.tables`) on a
    /// prefill kernel, and says whether one takes it: chunks of 16 or more tokens whose last sees
    /// ``prefillTensorCoreKeys`` keys or more the tensor-core kernel where the heads allow (sm_80 and later, head
    /// sizes a multiple of 8 up to 128; up to 256 on sm_90 and sm_100 from ``prefillWideTensorCoreKeys`` keys; in four
    /// parts on those for chunks of up to ``prefillFourPartTokens``), other chunks the CUDA-core kernel, for head
    /// sizes a multiple of 4 up to 128.
    private func launchPrefill(_ rows: RowAddresses, tokens: Int, lastPosition: Int, shape: HeadShape, layer: Int)
        -> Bool
    {
        let group = shape.heads / shape.kvHeads
        let limit = KernelSource.prefillHeadDimension
        let wide = shape.headDim > limit
        let tensorCores =
            lastPosition >= Self.prefillTensorCoreKeys - 1 && shape.headDim % 8 == 0 && useTensorCores
            && (!wide
                || attendsWideHeadsOnTensorCores && shape.headDim <= 2 * limit
                    && lastPosition >= Self.prefillWideTensorCoreKeys - 1)
        guard tokens >= 16 && shape.headDim % 4 == 0 && group <= 16 && (tensorCores || !wide) else { return false }
        let short = tensorCores && !wide && attendsShortChunksInFourParts && tokens <= Self.prefillFourPartTokens
        let tile = (tensorCores ? KernelSource.prefillTensorCoreRows(parts: short ? 4 : 2) : 16) / group
        let kernel: Kernel =
            if !tensorCores {
                .attentionPrefill
            } else if wide {
                .attentionPrefillTensorCoresWide
            } else {
                short ? .attentionPrefillTensorCoresShort : .attentionPrefillTensorCores
            }
        launch(
            kernel,
            grid: (shape.kvHeads, (tokens + tile - 1) / tile),
            block: tensorCores ? KernelSource.prefillTensorCoreWarps * 32 : 256,
            .address(rows.queries), .address(rows.tables), .int(layer), .int(shape.heads), .int(shape.kvHeads),
            .int(shape.headDim), .address(rows.positions), .int(tokens), .int(tile),
            .float(shape.scale), .address(rows.out))
        return true
    }

    /// Queues attention of `tokens` rows, one block per head and row.
    private func launchPlainAttention(_ rows: RowAddresses, tokens: Int, shape: HeadShape, layer: Int) {
        launch(
            .attention, grid: (shape.heads, tokens), block: 256, .address(rows.queries), .int(shape.heads),
            .int(shape.kvHeads), .int(shape.headDim), .address(rows.positions),
            .float(shape.scale), .address(rows.out), .address(rows.tables),
            .address(rows.rows), .int(layer))
    }

    /// Keys the last token of a prompt chunk sees from which its attention runs on the tensor cores. On an H200, in
    /// 2B-4T's shape, with the two-part kernel: 96-token prompts at 29,802-30,107 tokens/s against 29,385-29,391 on
    /// the CUDA cores, 64-token ones at 24,015-24,413 against 24,642-24,724, 32-token ones at 13,731-14,074 against
    /// 14,231-14,466.
    static let prefillTensorCoreKeys = 96

    /// The most tokens of a chunk whose attention on the tensor cores runs in four parts a block instead of two:
    /// twice the blocks, each warp's chain of instructions half as long. On an H200, in 2B-4T's shape, prompts of 128
    /// tokens ran at 39,223 tokens/s against 36,543, of 192 at 48,003 against 44,509, of 256 at 55,569 against
    /// 51,116, of 384 at 61,009 against 57,718, of 512 at 60,811 against 61,312; 64 prompts of 128 in the server's
    /// steps at 39,299 against 36,706.
    static let prefillFourPartTokens = 384

    /// The same for heads wider than ``KernelSource/prefillHeadDimension``, whose kernel has fewer, larger blocks
    /// (Falcon3-10B's 512-token prompt: 4 kv heads by 25 tiles of 21 tokens). Below it they go to the plain kernel, a
    /// block per head and token. On an H200, in Falcon3-10B's shape, prompts of 384 tokens ran at 17,678 tokens/s
    /// against 15,546, of 256 at 17,737 against 17,675, of 192 at 16,374 against 17,491, of 128 at 14,950 against
    /// 16,987.
    static let prefillWideTensorCoreKeys = 256

    /// Stores and attends the rows of a step of several sequences, each against its own cache: kernels that take per
    /// row the address of its sequence's cache, so no row leaves the GPU. A decoding step (one row per sequence) is
    /// one launch that also rotates the rows and stores them (on an H200 it took `bench -p 128 -n 32 --batch 64` from
    /// 16,018 to 19,075 tokens/s, and `-p 1000 -n 16 --batch 64` from 9,352 to 10,631). Few sequences spread each
    /// one's positions over a cluster of blocks (``attentionRowsSplits(clusters:)``): on an H200, 8 sequences at
    /// 5,311 instead of 4,909 tokens/s, and with 1,000-token prompts 4,197 instead of 2,485. A step that also reads
    /// prompts (the server's, which mixes prompt chunks with generating sequences) stores every row, then gives each
    /// prompt chunk the prefill kernel it would take alone and the other rows the plain kernel.
    public func attendSequences(
        keys: CUDAActivations, values: CUDAActivations, queries: CUDAActivations, positions: [Int32],
        segments: [(rows: Range<Int>, cache: CUDAKeyValueCache)], layer: Int, heads: Int, kvHeads: Int,
        headDim: Int, into out: CUDAActivations
    ) {
        let tokens = positions.count
        let attendsInRows =
            stagesAttentionRows && segments.allSatisfy({ $0.rows.count == 1 }) && headDim == 128 && heads / kvHeads <= 4
        let splits = attendsInRows ? attentionRowsSplits(clusters: kvHeads * tokens) : 1
        let positionAddress = devicePositions(positions)
        let tables = deviceBlockTables(segments, rows: tokens)
        let width = kvHeads * headDim
        let rotations = queuedRotations(keys: keys, tokens: tokens, positions: positionAddress, width: width)
        let shape = HeadShape(heads: heads, kvHeads: kvHeads, headDim: headDim)
        if attendsInRows {
            // One token per sequence: a block (or a cluster of `splits`) per kv head and token rotates and stores its
            // heads, then reads each key and value once for the whole group of query heads.
            var product = Self.noFinish
            if let (query, key) = rotations {
                product = takeFinish(query: query.x, key: key.x, values: values, tokens: tokens)
            }
            let arguments: [Argument] = [
                .address(queries.buffer.address), .int(heads), .address(keys.buffer.address),
                .address(values.buffer.address), .int(kvHeads), .address(positionAddress),
                .float(rotations?.key.theta ?? 0), .int(rotations == nil ? 0 : 1), .float(shape.scale),
                .address(out.buffer.address), .address(tables.blocks), .address(tables.rows), .int(layer),
            ]
            flush()
            if splits > 1 {
                emit(
                    .attentionRowsClustered, grid: (kvHeads * splits, tokens), block: 128, cluster: splits,
                    arguments + product + [.int(splits)])
            } else {
                emit(.attentionRows, grid: (kvHeads, tokens), block: 128, arguments + product)
            }
            return
        }
        if let (query, key) = rotations {
            launchRopeStore(query: query, key: key, values: values, tables: tables, layer: layer)
        } else {
            launch(
                .storeKeyValue, grid: ((width + 255) / 256, tokens), block: 256, .address(keys.buffer.address),
                .address(values.buffer.address), .int(width), .address(positionAddress), .address(tables.blocks),
                .address(tables.rows), .int(layer))
        }
        // Each prompt chunk takes a prefill kernel, as it would alone; the other rows the plain kernel, a launch for
        // each run of consecutive rows.
        let all = RowAddresses(
            queries: queries.buffer.address, out: out.buffer.address, positions: positionAddress,
            tables: tables.blocks, rows: tables.rows)
        var plainRows: [Range<Int>] = []
        for ((rows, _), tableStart) in zip(segments, Self.tableStarts(segments)) where !rows.isEmpty {
            var chunk = all.dropping(rows.lowerBound, width: heads * headDim)
            chunk.tables += UInt64(8 * tableStart)
            chunk.rows = 0
            let last = Int(positions[rows].max() ?? 0)
            if !launchPrefill(chunk, tokens: rows.count, lastPosition: last, shape: shape, layer: layer) {
                plainRows.append(rows)
            }
        }
        for run in Self.consecutiveRuns(plainRows) {
            launchPlainAttention(
                all.dropping(run.lowerBound, width: heads * headDim), tokens: run.count, shape: shape, layer: layer)
        }
    }

    /// Where each segment's block table starts among the tables ``deviceBlockTables(_:rows:)`` lays end to end, in
    /// entries.
    private static func tableStarts(_ segments: [(rows: Range<Int>, cache: CUDAKeyValueCache)]) -> [Int] {
        offsets(ofLengths: segments.map(\.cache.blockAddresses.count))
    }

    /// Where each of runs of `lengths` laid end to end starts.
    static func offsets(ofLengths lengths: [Int]) -> [Int] {
        var start = 0
        return lengths.map { length in
            defer { start += length }
            return start
        }
    }

    /// `ranges` sorted and joined where one ends where the next begins.
    static func consecutiveRuns(_ ranges: [Range<Int>]) -> [Range<Int>] {
        var runs: [Range<Int>] = []
        for range in ranges.sorted(by: { $0.lowerBound < $1.lowerBound }) {
            if let last = runs.last, last.upperBound == range.lowerBound {
                runs[runs.count - 1] = last.lowerBound..<range.upperBound
            } else {
                runs.append(range)
            }
        }
        return runs
    }

    /// Blocks a cluster of ``Kernel/attentionRowsClustered`` for a step of `clusters` kv heads and tokens.
    private func attentionRowsSplits(clusters: Int) -> Int {
        Self.attentionRowsSplits(
            clusters: clusters, multiprocessors: context.multiprocessors, largest: largestAttentionCluster)
    }

    /// Blocks a cluster for `clusters` kv heads and tokens on a GPU of `multiprocessors` whose clusters hold at most
    /// `largest` blocks: doubled while the blocks are no more than the multiprocessors (so they end up at most twice
    /// as many), so one or a few sequences fill the GPU; 1 (no clusters) from more kv heads and tokens than
    /// multiprocessors. On an H200 (2B-4T's 5 kv heads) 8 sequences decoded 5,311 tokens/s in clusters of 4 and 5,213
    /// in clusters of 8.
    static func attentionRowsSplits(clusters: Int, multiprocessors: Int, largest: Int) -> Int {
        var splits = 1
        while splits * 2 <= largest && clusters * splits <= multiprocessors {
            splits *= 2
        }
        return splits
    }

    /// The block tables of the caches of a step's `rows` rows on the device, uploaded when they differ from the last
    /// ones (every layer of a step passes the same), as the kernels read them (`row_blocks`): for one sequence its
    /// table, and `rows` 0; for several, the row offsets (one `Int32` per row, in table entries from `blocks`) and
    /// then every sequence's table, laid end to end from `blocks`. The offsets come first so that `blocks` stays put
    /// for a step of the same rows as tables grow, which a recorded step needs.
    func deviceBlockTables(
        _ segments: [(rows: Range<Int>, cache: CUDAKeyValueCache)], rows: Int
    ) -> (blocks: UInt64, rows: UInt64) {
        var words: [UInt64] = []
        var offsetWords = 0
        if segments.count == 1 {
            words = segments[0].cache.blockAddresses
        } else {
            var offsets = [Int32](repeating: 0, count: rows + rows % 2)
            for ((range, _), start) in zip(segments, Self.tableStarts(segments)) {
                for row in range { offsets[row] = Int32(start) }
            }
            let tables = segments.flatMap(\.cache.blockAddresses)
            offsetWords = offsets.count / 2
            words = stride(from: 0, to: offsets.count, by: 2).map {
                UInt64(UInt32(bitPattern: offsets[$0])) | UInt64(UInt32(bitPattern: offsets[$0 + 1])) << 32
            }
            words += tables
        }
        let tables: DeviceBuffer
        if let held = blockTableCopy.buffer(holding: words) {
            tables = held
        } else {
            // A queued kernel may still read the tables this upload replaces.
            flush()
            tables = upload(words, into: &blockTableCopy, roundingUp: true)
        }
        let base = tables.address
        return offsetWords == 0 ? (base, 0) : (base + UInt64(8 * offsetWords), base)
    }

    /// Launches the pending rotary embedding and cache store as a kernel of its own.
    func releaseRopeStore() {
        guard let r = pendingRopeStore else { return }
        pendingRopeStore = nil
        emit(
            .ropeStoreRows, grid: (1, 1), block: 256,
            [
                .address(r.query.buffer.address), .int(r.heads), .address(r.keys.buffer.address),
                .address(r.values.buffer.address), .int(r.kvHeads), .int(r.headDim), .address(r.positions),
                .float(r.theta), .address(r.blocks), .address(0), .int(r.layer),
            ] + Self.noFinish)
    }

    /// The queued rotations of a step's queries and of `keys`, taken off the queue, when they are the two queued
    /// and the keys of `tokens` rows at `positions` are `width` wide: the cache store of those keys can then do
    /// them (``Kernel/ropeStoreRows``, ``Kernel/attentionSplit``).
    private func queuedRotations(
        keys: CUDAActivations, tokens: Int, positions: UInt64, width: Int
    ) -> (query: PendingRotation, key: PendingRotation)? {
        guard rotations.count == 2 else { return nil }
        let (query, key) = (rotations[0], rotations[1])
        guard key.x === keys, query.x !== keys, query.tokens == tokens, key.tokens == tokens,
            query.headDim == key.headDim, query.theta == key.theta, query.positions == positions,
            key.positions == positions, key.heads * key.headDim == width, keys.width == width
        else { return nil }
        rotations = []
        return (query, key)
    }

    /// The arguments `sums`, `sum_scales`, `sum_rows`, `s_q`, `s_k` and `s_v` of a kernel with no rescale to do.
    private static let noFinish: [Argument] = [
        .address(0), .address(0), .int(0), .address(0), .address(0), .address(0),
    ]

    /// The pending rescale of a split query, key and value product of `tokens` tokens into `query`, `key` and
    /// `values`, taken off the queue for the kernel that rotates and stores them to do: that kernel's arguments
    /// `sums` ... `s_v` (``noFinish`` where no such rescale is pending).
    private func takeFinish(
        query: CUDAActivations, key: CUDAActivations, values: CUDAActivations, tokens: Int
    ) -> [Argument] {
        guard let (finish, outputs) = pendingFinish, outputs.count == 3, outputs[0] === query, outputs[1] === key,
            outputs[2] === values, finish.tokens == tokens
        else { return Self.noFinish }
        pendingFinish = nil
        // finish_products' arguments: scale, output and rows of each matrix.
        return [
            .address(finish.partial), .address(finish.inputScales), .int(finish.rows), finish.arguments[0],
            finish.arguments[3], finish.arguments[6],
        ]
    }

    /// Rotates the queries and keys of `query` and `key` and stores keys and values in layer `layer` of the caches
    /// whose block tables are `tables`.
    private func launchRopeStore(
        query: PendingRotation, key: PendingRotation, values: CUDAActivations, tables: (blocks: UInt64, rows: UInt64),
        layer: Int
    ) {
        let product = takeFinish(query: query.x, key: key.x, values: values, tokens: key.tokens)
        launch(
            .ropeStoreRows, grid: (key.tokens, 1), block: 256, .address(query.x.buffer.address), .int(query.heads),
            .address(key.x.buffer.address), .address(values.buffer.address), .int(key.heads), .int(key.headDim),
            .address(key.positions), .float(key.theta), .address(tables.blocks), .address(tables.rows), .int(layer),
            product[0], product[1], product[2], product[3], product[4], product[5])
    }

    /// Launches the queued rotations one by one.
    func flushRotations() {
        let queued = rotations
        rotations = []
        for r in queued {
            emit(
                .rope, grid: (r.tokens, 1), block: 256,
                [.address(r.x.buffer.address), .int(r.heads), .int(r.headDim), .address(r.positions), .float(r.theta)])
        }
    }
}
