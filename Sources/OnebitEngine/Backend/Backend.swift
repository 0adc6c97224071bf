import OnebitCPU
import OnebitModel

/// The fused operations the forward pass is written over. A backend owns its buffers and its weight layout; the
/// forward pass only sequences the operations, so it is written once for every device.
///
/// Buffer arguments hold `tokens` rows; every operation reads and writes only those rows.
public protocol Backend: AnyObject {
    /// Float activations `[tokens][width]`.
    associatedtype Activations
    /// Int8 activations with one scale per token.
    associatedtype QuantizedActivations
    /// A ternary projection in the backend's layout.
    associatedtype TernaryWeights
    /// A norm weight vector.
    associatedtype VectorWeights
    /// An embedding table or output head.
    associatedtype DenseWeights
    /// Keys and values of every layer for many sequences, in blocks of a fixed number of positions.
    associatedtype KeyValuePool
    /// One sequence's keys and values: a view of the pool blocks that hold its positions, in order.
    associatedtype KeyValueCache

    /// Repacks a canonical ternary matrix into the backend's layout.
    func prepare(_ matrix: TernaryMatrix) -> TernaryWeights
    /// Uploads a norm weight.
    func prepare(_ vector: [Float]) -> VectorWeights
    /// Uploads an embedding table or output head.
    func prepare(_ matrix: DenseMatrix) -> DenseWeights

    /// A buffer for `tokens` rows of `width` floats.
    func makeActivations(tokens: Int, width: Int) -> Activations
    /// A buffer for `tokens` rows of `width` int8 values.
    func makeQuantizedActivations(tokens: Int, width: Int) -> QuantizedActivations
    /// Gives back the memory of `x`'s rows past the first `rows`: a step of many tokens is over and the steps that
    /// follow use fewer. The rows read as zeros when next used.
    func discardRows(of x: Activations, after rows: Int)
    /// Gives back the memory of `q`'s rows past the first `rows`, as for float activations.
    func discardRows(of q: QuantizedActivations, after rows: Int)
    /// Positions per block of the pools of a model whose sequences hold up to `contextLength` positions. A backend
    /// whose attention reads one contiguous cache per sequence answers `contextLength`: every sequence then holds
    /// one block, and the block bookkeeping above it is the same.
    func keyValueBlockPositions(contextLength: Int) -> Int
    /// The most blocks of a pool the device has memory for, where that bounds it: a pool sized for every sequence's
    /// whole context may ask for more than a GPU holds. The default, nil, leaves the pool as asked (the CPU's maps
    /// pages the system commits as they are touched).
    func keyValueBlockLimit(layers: Int, width: Int, blockPositions: Int) -> Int?
    /// A pool of `blocks` blocks of `blockPositions` positions for `layers` layers of `width` (`kv_heads *
    /// head_dim`) elements.
    func makeKeyValuePool(layers: Int, width: Int, blockPositions: Int, blocks: Int) -> KeyValuePool
    /// The sequence whose positions `p` lie in block `blocks[p / blockPositions]` of `pool`.
    func keyValueCache(in pool: KeyValuePool, blocks: [Int32]) -> KeyValueCache

    /// Copies the embeddings of `tokens` into `x`.
    func embed(_ tokens: [Int], from table: DenseWeights, into x: Activations)
    /// `y = rmsnorm(x) * weight`.
    func rmsNorm(_ x: Activations, weight: VectorWeights, epsilon: Float, tokens: Int, into y: Activations)
    /// RMSNorm, then per-token int8 quantization into `q`.
    func rmsNormQuantize(
        _ x: Activations, weight: VectorWeights, epsilon: Float, tokens: Int, into q: QuantizedActivations)
    /// `y = W q`, exact integer products rescaled by the activation and weight scales.
    func multiply(_ w: TernaryWeights, _ q: QuantizedActivations, tokens: Int, into y: Activations)
    /// `ys[i] = ws[i] q` for matrices that read the same activations (query/key/value, gate/up), so a backend can
    /// run them as one operation; the default runs them one after another.
    func multiply(_ ws: [TernaryWeights], _ q: QuantizedActivations, tokens: Int, into ys: [Activations])
    /// NeoX rotary embedding in place.
    func applyRoPE(_ x: Activations, tokens: Int, heads: Int, headDim: Int, positions: [Int32], theta: Float)
    /// Writes keys and values of `tokens` rows into layer `layer` of `cache` at `positions`.
    func store(
        keys: Activations, values: Activations, tokens: Int, positions: [Int32], layer: Int, in cache: KeyValueCache)
    /// Causal grouped-query attention of `tokens` queries over the cached positions `0 ... positions[t]`.
    func attention(
        queries: Activations, tokens: Int, positions: [Int32], layer: Int, cache: KeyValueCache, heads: Int,
        kvHeads: Int, headDim: Int, into out: Activations)
    /// ``store(keys:values:tokens:positions:layer:in:)`` then ``attention(queries:tokens:positions:layer:cache:heads:kvHeads:headDim:into:)``
    /// for a step of several sequences: `segments` say which rows (`positions` has one entry per row) belong to
    /// which sequence's cache. The default runs the sequences one after another, moving each one's rows to the
    /// front of the buffers.
    func attend(
        keys: Activations, values: Activations, queries: Activations, positions: [Int32],
        segments: [(rows: Range<Int>, cache: KeyValueCache)], layer: Int, heads: Int, kvHeads: Int, headDim: Int,
        into out: Activations)
    /// `gate = act(gate) * up`.
    func gatedActivation(_ activation: ModelConfig.Activation, gate: Activations, up: Activations, tokens: Int)
    /// `x += delta`.
    func add(_ delta: Activations, to x: Activations, tokens: Int)
    /// The logits of row `row` of `x`.
    func logits(_ x: Activations, row: Int, head: DenseWeights) -> [Float]
    /// The logits of each of `rows` of `x`, so a backend can read the head once for all of them; the default
    /// computes them one row at a time.
    func logits(_ x: Activations, rows: [Int], head: DenseWeights) -> [[Float]]
    /// Rows `rows` of `x`, row-major, for moving one sequence's rows of a batched step in and out of attention.
    func readRows(_ x: Activations, _ rows: Range<Int>) -> [Float]
    /// Writes `count` rows (row-major in `rows`) into the first rows of `x`.
    func writeRows(_ rows: [Float], count: Int, into x: Activations)
    /// The index of the largest logit of row `row` of `x` (the lowest index on ties), as `Sampler.argmax` of
    /// ``logits(_:row:head:)`` would give.
    func argmax(_ x: Activations, row: Int, head: DenseWeights) -> Int
    /// ``argmax(_:row:head:)`` of each of `rows`, so a backend can read the head once for all of them and return
    /// only the indices; the default takes the argmax of ``logits(_:rows:head:)`` on the host.
    func argmax(_ x: Activations, rows: [Int], head: DenseWeights) -> [Int]
    /// The token each of `draws` picks from the logits of its row of `rows` (``Sampler/token(drawing:from:)``), so
    /// that temperature sampling brings back only token ids; the default draws from ``logits(_:rows:head:)`` on the
    /// host.
    func draw(_ x: Activations, rows: [Int], head: DenseWeights, draws: [RowDraw]) -> [Int]
    /// Runs `body`, which queues the operations of one forward step of `tokens` at `positions`, the rows of each
    /// segment cached in its cache; the operations take the tokens, positions and segments as arguments too. A
    /// backend may record the operations of a step once and replay them for later steps of the same shape, taking
    /// only the tokens, positions and caches given here. The forward pass calls it for decoding steps: one token
    /// of one sequence, or one token of each of several. With `tokensKept`, the step's tokens are the ones the last
    /// ``argmaxKept(_:rows:head:step:of:)`` kept, and `tokens` only says how many.
    func step(
        tokens: [Int], positions: [Int32], segments: [(rows: Range<Int>, cache: KeyValueCache)], tokensKept: Bool,
        _ body: () -> Void)
    /// ``argmax(_:rows:head:)`` for greedy steps that feed their tokens to the next step where the backend runs:
    /// the indices stay there as the tokens of the next ``step(tokens:positions:segments:tokensKept:_:)`` and as
    /// step `index` of `count`, which ``keptTokens()`` brings back together, and nil comes back now. A backend that
    /// cannot keep them returns the indices (the default).
    func argmaxKept(_ x: Activations, rows: [Int], head: DenseWeights, step index: Int, of count: Int) -> [Int]?
    /// ``argmaxKept(_:rows:head:step:of:)`` with the token each of `draws` picks from its row
    /// (``draw(_:rows:head:draws:)``) instead of the argmax: the tokens of drawing steps stay where the backend runs
    /// as greedy ones do. A backend that cannot keep them returns the tokens (the default).
    func drawKept(
        _ x: Activations, rows: [Int], head: DenseWeights, draws: [RowDraw], step index: Int, of count: Int
    ) -> [Int]?
    /// Starts bringing back the indices the ``argmaxKept(_:rows:head:step:of:)`` calls of the last run of steps
    /// kept, so that ``keptTokens()`` waits for them alone and not for work queued in between (the first step of the
    /// next run). The default does nothing.
    func queueKeptTokens()
    /// The indices the ``argmaxKept(_:rows:head:step:of:)`` calls of the last run of steps kept, one array a step.
    func keptTokens() -> [[Int]]
}

extension Backend {
    /// The argmax of the logits on the host.
    public func argmax(_ x: Activations, row: Int, head: DenseWeights) -> Int {
        Sampler.argmax(logits(x, row: row, head: head))
    }

    /// The argmax of each row's logits on the host.
    public func argmax(_ x: Activations, rows: [Int], head: DenseWeights) -> [Int] {
        logits(x, rows: rows, head: head).map(Sampler.argmax)
    }

    /// Keeps every row: the default for buffers that are not the host's memory.
    public func discardRows(of x: Activations, after rows: Int) {}

    /// Keeps every row.
    public func discardRows(of q: QuantizedActivations, after rows: Int) {}

    /// Runs `body`.
    public func step(
        tokens: [Int], positions: [Int32], segments: [(rows: Range<Int>, cache: KeyValueCache)], tokensKept: Bool,
        _ body: () -> Void
    ) {
        body()
    }

    /// The indices, now: nothing is kept.
    public func argmaxKept(_ x: Activations, rows: [Int], head: DenseWeights, step index: Int, of count: Int) -> [Int]?
    {
        argmax(x, rows: rows, head: head)
    }

    /// The tokens, now: nothing is kept.
    public func drawKept(
        _ x: Activations, rows: [Int], head: DenseWeights, draws: [RowDraw], step index: Int, of count: Int
    ) -> [Int]? {
        draw(x, rows: rows, head: head, draws: draws)
    }

    /// Nothing to bring back: ``argmaxKept(_:rows:head:step:of:)`` keeps nothing by default.
    public func queueKeptTokens() {}

    /// Nothing: ``argmaxKept(_:rows:head:step:of:)`` keeps nothing by default.
    public func keptTokens() -> [[Int]] { [] }
}

extension Backend {
    /// One sequence in place; several through copies of their rows to the front of the buffers (the operations
    /// work on leading rows). The copies are a few rows of activations, small next to the weights every projection
    /// streams.
    public func attend(
        keys: Activations, values: Activations, queries: Activations, positions: [Int32],
        segments: [(rows: Range<Int>, cache: KeyValueCache)], layer: Int, heads: Int, kvHeads: Int, headDim: Int,
        into out: Activations
    ) {
        if let cache = Self.onlySequence(segments) {
            attendAlone(
                keys: keys, values: values, queries: queries, positions: positions, cache: cache, layer: layer,
                heads: heads, kvHeads: kvHeads, headDim: headDim, into: out)
            return
        }
        let allQueries = readRows(queries, 0..<positions.count)
        let allKeys = readRows(keys, 0..<positions.count)
        let allValues = readRows(values, 0..<positions.count)
        let qWidth = heads * headDim
        let kvWidth = kvHeads * headDim
        var outputs: [Float] = []
        outputs.reserveCapacity(positions.count * qWidth)
        for (rows, cache) in segments where !rows.isEmpty {
            writeRows(
                Array(allQueries[rows.lowerBound * qWidth..<rows.upperBound * qWidth]), count: rows.count,
                into: queries)
            writeRows(
                Array(allKeys[rows.lowerBound * kvWidth..<rows.upperBound * kvWidth]), count: rows.count, into: keys)
            writeRows(
                Array(allValues[rows.lowerBound * kvWidth..<rows.upperBound * kvWidth]), count: rows.count, into: values
            )
            let segmentPositions = Array(positions[rows])
            store(keys: keys, values: values, tokens: rows.count, positions: segmentPositions, layer: layer, in: cache)
            attention(
                queries: queries, tokens: rows.count, positions: segmentPositions, layer: layer, cache: cache,
                heads: heads, kvHeads: kvHeads, headDim: headDim, into: out)
            outputs += readRows(out, 0..<rows.count)
        }
        writeRows(outputs, count: positions.count, into: out)
    }

    /// The cache of a step's one sequence when its rows are the leading ones, the case the operations handle in
    /// place; `nil` for several sequences.
    static func onlySequence(_ segments: [(rows: Range<Int>, cache: KeyValueCache)]) -> KeyValueCache? {
        segments.count == 1 && segments[0].rows.lowerBound == 0 ? segments[0].cache : nil
    }

    /// ``store(keys:values:tokens:positions:layer:in:)`` then attention for the leading `positions.count` rows, all
    /// of one sequence.
    func attendAlone(
        keys: Activations, values: Activations, queries: Activations, positions: [Int32], cache: KeyValueCache,
        layer: Int, heads: Int, kvHeads: Int, headDim: Int, into out: Activations
    ) {
        store(keys: keys, values: values, tokens: positions.count, positions: positions, layer: layer, in: cache)
        attention(
            queries: queries, tokens: positions.count, positions: positions, layer: layer, cache: cache, heads: heads,
            kvHeads: kvHeads, headDim: headDim, into: out)
    }

    /// Runs the products one after another.
    public func multiply(_ ws: [TernaryWeights], _ q: QuantizedActivations, tokens: Int, into ys: [Activations]) {
        for (w, y) in zip(ws, ys) { multiply(w, q, tokens: tokens, into: y) }
    }

    /// One row at a time.
    public func logits(_ x: Activations, rows: [Int], head: DenseWeights) -> [[Float]] {
        rows.map { logits(x, row: $0, head: head) }
    }

    /// No bound.
    public func keyValueBlockLimit(layers: Int, width: Int, blockPositions: Int) -> Int? { nil }

    /// The draws made on the host.
    public func draw(_ x: Activations, rows: [Int], head: DenseWeights, draws: [RowDraw]) -> [Int] {
        zip(logits(x, rows: rows, head: head), draws).map { Sampler.token(drawing: $1, from: $0) }
    }
}

extension CPUBackend: Backend {
    /// Copies rows out through the buffer's public row accessor.
    public func readRows(_ x: CPUActivations, _ rows: Range<Int>) -> [Float] {
        var out: [Float] = []
        out.reserveCapacity(rows.count * x.width)
        for row in rows { out += x.row(row) }
        return out
    }

    /// Writes rows by embedding them as a small float32 table: the backend's own copy kernel, no new C code.
    public func writeRows(_ rows: [Float], count: Int, into x: CPUActivations) {
        let table = DenseMatrix(rows: count, columns: x.width, storage: .float32(rows))
        embed(Array(0..<count), from: prepare(table), into: x)
    }
}
