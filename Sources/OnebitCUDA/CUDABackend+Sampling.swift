// Tokens chosen on the GPU: argmax, draws at a temperature with top-k, top-p and min-p, and kept tokens.
extension CUDABackend {
    /// Blocks of the first argmax pass of one row alone (at most 1024, a multiple of 32: the second pass is one
    /// block of as many threads).
    static let argmaxBlocks = 256

    /// Blocks of the first argmax pass per row when several rows are reduced at once (same limits).
    static let argmaxBlocksPerRow = 64

    /// The index of the largest logit of row `row` of `x` (the lowest on ties): the head's GEMV and the argmax on
    /// the GPU, and only the index comes back.
    public func argmax(_ x: CUDAActivations, row: Int, head: CUDADenseWeights) -> Int {
        context.makeCurrent()
        let index: [Int32] = download(from: queueArgmax(x, rows: [row], head: head), count: 1)
        return Int(index[0])
    }

    /// The index of the largest logit of each of `rows` of `x` (the lowest on ties): the head's products as
    /// ``logits(_:rows:head:)`` computes them, then one argmax per row on the GPU, and only the indices come back.
    public func argmax(_ x: CUDAActivations, rows: [Int], head: CUDADenseWeights) -> [Int] {
        guard rows.count > 1 else { return rows.map { argmax(x, row: $0, head: head) } }
        context.makeCurrent()
        let indices: [Int32] = download(from: queueArgmax(x, rows: rows, head: head), count: rows.count)
        return indices.map { Int($0) }
    }

    /// Queues the head's products of `rows` of `x` (one row alone, or several at once) and the index of each row's
    /// largest logit (the lowest on ties): a first pass of blocks per row (the `wgmma` head's own blocks, where it
    /// runs), a second of one block per row. The indices go to `result` (by default the start of the argmax scratch
    /// buffer), and also to `feed` where not 0; returns where they go.
    private func queueArgmax(
        _ x: CUDAActivations, rows: [Int], head: CUDADenseWeights, into result: UInt64? = nil,
        feeding feed: UInt64 = 0
    ) -> UInt64 {
        let fused = rows.count > 1 && usesWarpgroupHead(head)
        let blocks =
            fused ? Self.warpgroupHeadBlocks(head) : rows.count == 1 ? Self.argmaxBlocks : Self.argmaxBlocksPerRow
        let partials = scratch(&argmaxBuffer, bytes: rows.count * (4 + 8 * blocks))
        let values = partials.address + UInt64(4 * rows.count)
        let indices = values + UInt64(4 * blocks * rows.count)
        if fused {
            // The head's blocks leave each one's largest logit of each row, so no logits are stored and no first
            // argmax pass reads them (on an H200 that pass took 17 us of a 64-sequence step, after 33 MB of logits).
            launchHead(x, rows: rows, head: head, into: 0, argmax: (values, indices))
        } else {
            let output = scratch(&logitBuffer, bytes: rows.count * head.rows * 4)
            if rows.count == 1 {
                launchHead(x, row: rows[0], head: head, into: output.address)
            } else {
                launchHead(x, rows: rows, head: head, into: output.address)
            }
            launch(
                .argmaxPartial, grid: (blocks, rows.count), block: 256, .address(output.address), .int(head.rows),
                .address(values), .address(indices))
        }
        let target = result ?? partials.address
        // At most 256 threads a row: the second pass loops over the first's blocks.
        launch(
            .argmaxFinal, grid: (rows.count, 1), block: min(blocks, 256), .address(values), .address(indices),
            .int(blocks), .address(target), .address(feed))
        return target
    }

    /// ``argmax(_:rows:head:)`` whose indices stay on the GPU: they become the tokens of the next step, which
    /// reads them from the token buffer (``step(tokens:positions:segments:tokensKept:_:)``), and step `index` of
    /// `count` kept for ``keptTokens()``. Returns the indices now where it cannot keep them: before a step has made
    /// the token buffer.
    public func argmaxKept(
        _ x: CUDAActivations, rows: [Int], head: CUDADenseWeights, step index: Int, of count: Int
    ) -> [Int]? {
        guard let (kept, feed) = keptTarget(rows: rows, step: index, of: count) else {
            return argmax(x, rows: rows, head: head)
        }
        _ = queueArgmax(x, rows: rows, head: head, into: kept, feeding: feed)
        return nil
    }

    /// ``drawTokens(_:rows:head:draws:)`` whose tokens stay on the GPU as
    /// ``argmaxKept(_:rows:head:step:of:)``'s do; a row of temperature 0 takes its argmax. Returns the tokens now
    /// before a step has made the token buffer.
    public func drawKept(
        _ x: CUDAActivations, rows: [Int], head: CUDADenseWeights, draws: Draws, step index: Int, of count: Int
    ) -> [Int]? {
        guard let (kept, feed) = keptTarget(rows: rows, step: index, of: count) else {
            return drawTokens(x, rows: rows, head: head, draws: draws)
        }
        _ = queueDraws(x, rows: rows, head: head, draws: draws, into: kept, feeding: feed)
        return nil
    }

    /// Where step `index` of a run of `count` keeps the tokens of `rows` (a slot of the kept buffer, made at the
    /// run's first step), and the token buffer the next step reads them from; nil before a step has made that.
    private func keptTarget(rows: [Int], step index: Int, of count: Int) -> (kept: UInt64, feed: UInt64)? {
        guard let tokens = tokenBuffer, tokens.byteCount >= rows.count * 4 else { return nil }
        context.makeCurrent()
        if index == 0 {
            keptShape = (steps: count, rows: rows.count)
            _ = scratch(&keptBuffer, bytes: count * rows.count * 4)
        }
        precondition(keptShape.rows == rows.count && index < keptShape.steps, "step \(index) outside the kept steps")
        return (keptBuffer!.address + UInt64(index * rows.count * 4), tokens.address)
    }

    /// Queues the copy of the indices the last run of ``argmaxKept(_:rows:head:step:of:)`` kept into page-locked
    /// memory, and marks where it ends: ``keptTokens()`` then waits for the copy alone, not for work queued after
    /// this call.
    public func queueKeptTokens() {
        guard let kept = keptBuffer, keptShape.steps > 0 else { return }
        context.makeCurrent()
        // A copy still on its way lands in the buffer the one below may replace.
        if keptCopy != nil { keptArrival.wait() }
        flush()
        let bytes = keptShape.steps * keptShape.rows * 4
        if (keptHost?.byteCount ?? 0) < bytes { keptHost = HostBuffer(context, byteCount: bytes) }
        keptHost!.queueCopy(from: kept.address, bytes: bytes)
        keptArrival.record()
        keptCopy = (keptShape, kept)
    }

    /// The indices the last run of ``argmaxKept(_:rows:head:step:of:)`` kept, one array a step: one wait for all
    /// of them (for their copy alone, where ``queueKeptTokens()`` queued it).
    public func keptTokens() -> [[Int]] {
        if keptCopy == nil { queueKeptTokens() }
        guard let (shape, _) = keptCopy, let host = keptHost else { return [] }
        context.makeCurrent()
        keptArrival.wait()
        keptCopy = nil
        let all: [Int32] = host.values(count: shape.steps * shape.rows)
        return (0..<shape.steps).map { step in
            all[step * shape.rows..<(step + 1) * shape.rows].map { Int($0) }
        }
    }

    /// Queues the ranking of `rows` rows of `columns` logits at `logits` (`rank_group_minima`, `rank_thresholds`,
    /// `rank_candidates`, `rank_largest`); returns where the `count` smallest ranking keys of each row, most likely
    /// first, end up.
    func queueRanking(_ logits: UInt64, columns: Int, rows: Int, count: Int) -> UInt64 {
        let group = KernelSource.rankGroup
        let groups = (columns + group - 1) / group
        // The keys that pass a row's threshold lie in at most `count` groups.
        let capacity = group * count
        let (minimaBytes, candidateBytes, rankedBytes) = (rows * groups * 8, rows * capacity * 8, rows * count * 8)
        let buffer = scratch(&rankingBuffer, bytes: minimaBytes + candidateBytes + rankedBytes + rows * 12)
        let minima = buffer.address
        let candidates = minima + UInt64(minimaBytes)
        let ranked = candidates + UInt64(candidateBytes)
        let thresholds = ranked + UInt64(rankedBytes)
        let counters = thresholds + UInt64(rows * 8)
        let spans = (columns + KernelSource.rankSpan - 1) / KernelSource.rankSpan
        launch(
            .rankGroupMinima, grid: (spans, rows), block: KernelSource.rankThreads, .address(logits), .int(columns),
            .address(minima))
        launch(
            .rankThresholds, grid: (rows, 1), block: KernelSource.rankSortThreads, .address(minima), .int(groups),
            .int(count), .address(thresholds), .address(counters))
        launch(
            .rankCandidates, grid: (spans, rows), block: KernelSource.rankThreads, .address(logits), .int(columns),
            .address(thresholds), .address(counters), .int(capacity), .address(candidates))
        launch(
            .rankLargest, grid: (rows, 1), block: KernelSource.rankSortThreads, .address(candidates), .int(capacity),
            .address(counters), .int(count), .address(ranked))
        return ranked
    }

    /// What each row of a draw samples with, one entry a row.
    public struct Draws {
        /// Softmax temperatures; 0 takes the row's argmax.
        public var temperatures: [Float]
        /// Min-p (0 for none).
        public var minPs: [Float]
        /// Top-k (0 draws from the whole row), at most ``CUDABackend/candidateLimit``.
        public var topKs: [Int]
        /// Top-p: among the top-k, or over the whole row where top-k is 0 (1 for none).
        public var topPs: [Float]
        /// The random numbers in [0, 1).
        public var units: [Double]

        /// The draws of `units.count` rows.
        public init(temperatures: [Float], minPs: [Float], topKs: [Int], topPs: [Float], units: [Double]) {
            precondition(
                [temperatures.count, minPs.count, topKs.count, topPs.count].allSatisfy { $0 == units.count },
                "one entry a row")
            precondition(topKs.allSatisfy { (0...CUDABackend.candidateLimit).contains($0) }, "top-k within the limit")
            self.temperatures = temperatures
            self.minPs = minPs
            self.topKs = topKs
            self.topPs = topPs
            self.units = units
        }

        /// Whether each row draws from a top-p nucleus of its whole row.
        var drawsNucleus: [Bool] {
            (0..<units.count).map { temperatures[$0] > 0 && topKs[$0] == 0 && topPs[$0] < 1 }
        }
    }

    /// The most top-k a draw samples from where the logits are (`draw_candidates` takes a candidate a thread).
    public static let candidateLimit = KernelSource.candidateThreads

    /// The token drawn from each of `rows` of `x` as the host's sampler draws with the same parameters and random
    /// number: the head's products as ``logits(_:rows:head:)`` computes them, then the draw over the whole row, or
    /// among its top-k, on the GPU, and only the token ids come back.
    public func drawTokens(_ x: CUDAActivations, rows: [Int], head: CUDADenseWeights, draws: Draws) -> [Int] {
        context.makeCurrent()
        let tokens = queueDraws(x, rows: rows, head: head, draws: draws)
        let drawn: [Int32] = download(from: tokens, count: rows.count)
        return drawn.map { Int($0) }
    }

    /// Queues the head's products of `rows` of `x` and the launches of a draw: over the whole row, three
    /// (`draw_chunk_tops`, `draw_chunk_masses`, `draw_pick`), with the rounds that find each top-p nucleus between
    /// the first two where a row has one; among the top-k, the ranking passes and
    /// `draw_candidates`, which overwrites the whole-row draw's tokens of its rows where a step has both. The
    /// tokens go to `result` (by default after the draws' inputs in their scratch buffer), and also to `feed` where
    /// not 0. Returns where they go.
    private func queueDraws(
        _ x: CUDAActivations, rows: [Int], head: CUDADenseWeights, draws: Draws, into result: UInt64? = nil,
        feeding feed: UInt64 = 0
    ) -> UInt64 {
        precondition(draws.units.count == rows.count, "one draw a row")
        let output = queueLogits(x, rows: rows, head: head)
        // The random numbers (8 bytes a row), then the temperatures, the min-p, the tokens, the top-k and the top-p
        // (4 bytes a row each).
        let inputs = scratch(&drawBuffer, bytes: rows.count * 28)
        // A queued kernel may still read the inputs this upload replaces.
        flush()
        let words = draws.units.flatMap { [UInt32(truncatingIfNeeded: $0.bitPattern), UInt32($0.bitPattern >> 32)] }
        let tokenSlots = [UInt32](repeating: 0, count: rows.count)
        inputs.upload(
            words + draws.temperatures.map(\.bitPattern) + draws.minPs.map(\.bitPattern) + tokenSlots
                + draws.topKs.map { UInt32($0) } + draws.topPs.map(\.bitPattern))
        let base = inputs.address
        let row = UInt64(rows.count * 4)
        let tokens = result ?? base + 4 * row
        let (temperatureInput, minPInput) = (base + 2 * row, base + 3 * row)
        let (topKInput, topPInput) = (base + 5 * row, base + 6 * row)
        // Rows of temperature 0 take the whole-row draw's argmax, whatever their top-k.
        let candidates = zip(draws.topKs, draws.temperatures).map { $0 > 0 && $1 > 0 }
        if candidates.contains(false) {
            let (chunk, count) = Self.drawChunks(columns: head.rows)
            let chunks = scratch(&drawChunkBuffer, bytes: rows.count * count * KernelSource.drawChunkBytes).address
            launch(
                .drawChunkTops, grid: (count, rows.count), block: KernelSource.drawThreads, .address(output.address),
                .int(head.rows), .int(chunk), .address(chunks))
            let nuclei =
                draws.drawsNucleus.contains(true)
                ? queueNuclei(
                    output.address, columns: head.rows, chunk: chunk, chunks: (chunks, count), rows: rows.count,
                    temperatures: temperatureInput, topKs: topKInput, topPs: topPInput) : 0
            launch(
                .drawChunkMasses, grid: (count, rows.count), block: KernelSource.drawThreads,
                .address(output.address), .int(head.rows), .int(chunk), .address(temperatureInput),
                .address(minPInput), .address(nuclei), .address(chunks))
            launch(
                .drawPick, grid: (rows.count, 1), block: KernelSource.drawThreads, .address(output.address),
                .int(head.rows), .int(chunk), .int(count), .address(temperatureInput), .address(minPInput),
                .address(base), .address(nuclei), .address(chunks), .address(tokens), .address(feed))
        }
        if candidates.contains(true), let largest = draws.topKs.max() {
            let keys = queueRanking(output.address, columns: head.rows, rows: rows.count, count: largest)
            launch(
                .drawCandidates, grid: (rows.count, 1), block: KernelSource.candidateThreads, .address(keys),
                .int(largest), .address(temperatureInput), .address(topKInput), .address(topPInput),
                .address(minPInput), .address(base), .address(tokens), .address(feed))
        }
        return tokens
    }

    /// Queues the rounds that find the limit of each top-p nucleus (`nucleus_round`, after `draw_chunk_tops` has
    /// filled `chunks`); returns where the rows' `Nucleus` records are.
    func queueNuclei(
        _ logits: UInt64, columns: Int, chunk: Int, chunks: (address: UInt64, count: Int), rows: Int,
        temperatures: UInt64, topKs: UInt64, topPs: UInt64
    ) -> UInt64 {
        // ModelConfig.validate() refuses vocabularies over 2^22 tokens, so every model's rows fit.
        precondition(columns < 1 << 24, "the nucleus's rounds count token ids of 24 bits")
        // Row r's sums and record sit at the same place whatever the number of rows, and each round leaves them zero
        // where the next one needs it.
        let sums = scratch(&nucleusSums, bytes: rows * KernelSource.nucleusBuckets * 8).address
        let nuclei = scratch(&nucleusRecords, bytes: rows * KernelSource.nucleusBytes).address
        for round in 0..<KernelSource.nucleusRounds {
            launch(
                .nucleusRound, grid: (chunks.count, rows), block: KernelSource.drawThreads, .address(logits),
                .int(columns), .int(chunk), .address(chunks.address), .address(temperatures), .address(topKs),
                .address(topPs), .address(nuclei), .address(sums), .int(round))
        }
        return nuclei
    }

    /// The tokens a block of a draw's first two launches takes from a row of `columns` logits, and the number of such
    /// chunks a row: 2,048 (63 chunks for 2B-4T's 128,256-token vocabulary), longer where a row would have more than
    /// `draw_pick` holds.
    static func drawChunks(columns: Int) -> (chunk: Int, count: Int) {
        let longest = KernelSource.drawMaximumChunks
        let chunk = max(2048, ((columns + longest - 1) / longest + 255) / 256 * 256)
        return (chunk, (columns + chunk - 1) / chunk)
    }
}
