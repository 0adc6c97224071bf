import OnebitModel

/// What a step gives back for one slice's last token.
public enum StepOutput: Equatable {
    /// The logits.
    case logits([Float])
    /// The token chosen where the backend runs: the index of the largest logit (the lowest on ties), or a draw's.
    case token(Int)
}

/// The BitNet b1.58 forward pass, written once over ``Backend``.
///
/// Per block: `h = x + o(attn_sub_norm(attention(rope(q(n1)), rope(k(n1)), v(n1))))` with `n1 = attn_norm(x)`,
/// then `x = h + down(ffn_sub_norm(act(gate(n2)) * up(n2)))` with `n2 = ffn_norm(h)`; every projection reads
/// per-token int8 activations. Prompts run in chunks of at most ``chunkSize`` tokens.
public final class Transformer<B: Backend> {
    /// The backend every operation runs on.
    public let backend: B
    /// Shapes and hyper-parameters.
    public let config: ModelConfig
    /// Most tokens one call of the layer stack processes.
    public let chunkSize: Int

    private struct Layer {
        var attentionNorm, attentionSubNorm, feedForwardNorm, feedForwardSubNorm: B.VectorWeights
        var query, key, value, output, gate, up, down: B.TernaryWeights
    }

    private let layers: [Layer]
    private let embeddings: B.DenseWeights
    private let head: B.DenseWeights
    private let finalNorm: B.VectorWeights

    // Scratch buffers, sized for one chunk.
    private let x, normed, q, k, v, attention, projected, gate, up: B.Activations
    /// The first step of the next run of decoding steps, queued by the last
    /// ``decodeSteps(batch:count:draws:queueingNext:drawing:)`` before it read its own run's tokens back.
    private var queuedStep: QueuedStep?
    private let quantizedHidden, quantizedAttention, quantizedFeedForward: B.QuantizedActivations

    /// Prepares `weights` for `backend`.
    public init(backend: B, config: ModelConfig, weights: ModelWeights, chunkSize: Int = 64) {
        self.backend = backend
        self.config = config
        self.chunkSize = chunkSize
        layers = weights.layers.map { l in
            Layer(
                attentionNorm: backend.prepare(l.attentionNorm), attentionSubNorm: backend.prepare(l.attentionSubNorm),
                feedForwardNorm: backend.prepare(l.feedForwardNorm),
                feedForwardSubNorm: backend.prepare(l.feedForwardSubNorm), query: backend.prepare(l.query),
                key: backend.prepare(l.key), value: backend.prepare(l.value), output: backend.prepare(l.output),
                gate: backend.prepare(l.gate), up: backend.prepare(l.up), down: backend.prepare(l.down))
        }
        embeddings = backend.prepare(weights.embeddings)
        head = weights.outputHead.map { backend.prepare($0) } ?? embeddings
        finalNorm = backend.prepare(weights.finalNorm)

        let hidden = config.hiddenSize
        let attentionWidth = config.headCount * config.headDim
        let kvWidth = config.kvHeadCount * config.headDim
        let ffn = config.intermediateSize
        x = backend.makeActivations(tokens: chunkSize, width: hidden)
        normed = backend.makeActivations(tokens: chunkSize, width: hidden)
        q = backend.makeActivations(tokens: chunkSize, width: attentionWidth)
        k = backend.makeActivations(tokens: chunkSize, width: kvWidth)
        v = backend.makeActivations(tokens: chunkSize, width: kvWidth)
        attention = backend.makeActivations(tokens: chunkSize, width: attentionWidth)
        projected = backend.makeActivations(tokens: chunkSize, width: hidden)
        gate = backend.makeActivations(tokens: chunkSize, width: ffn)
        up = backend.makeActivations(tokens: chunkSize, width: ffn)
        quantizedHidden = backend.makeQuantizedActivations(tokens: chunkSize, width: hidden)
        quantizedAttention = backend.makeQuantizedActivations(tokens: chunkSize, width: attentionWidth)
        quantizedFeedForward = backend.makeQuantizedActivations(tokens: chunkSize, width: ffn)
    }

    /// A key/value cache for one sequence of up to `capacity` tokens: a pool of its own, all of whose blocks the
    /// sequence holds.
    public func makeCache(capacity: Int) -> B.KeyValueCache {
        let blockPositions = backend.keyValueBlockPositions(contextLength: capacity)
        let blocks = (capacity + blockPositions - 1) / blockPositions
        let pool = makeKeyValuePool(blockPositions: blockPositions, blocks: blocks)
        return backend.keyValueCache(in: pool, blocks: (0..<blocks).map { Int32($0) })
    }

    /// The most positions, up to `capacity`, that each of `sequences` caches (``makeCache(capacity:)``) can hold
    /// in the device memory free now: `capacity` where the device does not bound it. Each cache takes whole blocks,
    /// so the device's blocks are shared out, not its positions.
    public func cachePositions(upTo capacity: Int, sequences: Int = 1) -> Int {
        let blockPositions = backend.keyValueBlockPositions(contextLength: capacity)
        guard let blocks = keyValueBlockLimit(blockPositions: blockPositions) else { return capacity }
        return min(capacity, blocks / max(sequences, 1) * blockPositions)
    }

    /// The most KV blocks of `blockPositions` positions the device has memory for, where that bounds a pool.
    public func keyValueBlockLimit(blockPositions: Int) -> Int? {
        backend.keyValueBlockLimit(
            layers: config.layerCount, width: config.kvHeadCount * config.headDim, blockPositions: blockPositions)
    }

    /// A pool of `blocks` KV blocks of `blockPositions` positions, shared by the sequences of a scheduler.
    public func makeKeyValuePool(blockPositions: Int, blocks: Int) -> B.KeyValuePool {
        backend.makeKeyValuePool(
            layers: config.layerCount, width: config.kvHeadCount * config.headDim, blockPositions: blockPositions,
            blocks: blocks)
    }

    /// Consecutive tokens of one sequence within a batched step.
    public struct Slice {
        /// The tokens, in order.
        public var tokens: [Int]
        /// The position of `tokens[0]` in its sequence.
        public var start: Int
        /// The sequence's cache, which receives the slice's keys and values.
        public var cache: B.KeyValueCache
        /// Whether the logits of the slice's last token are wanted.
        public var wantsLogits: Bool
        /// Whether, of those logits, only the index of the largest is wanted (found where the backend runs).
        public var greedy: Bool
        /// Where not nil (and not `greedy`), only the token this draw picks from the logits is wanted, drawn where
        /// the backend runs.
        public var draw: RowDraw?

        /// Describes a slice.
        public init(
            tokens: [Int], start: Int, cache: B.KeyValueCache, wantsLogits: Bool, greedy: Bool = false,
            draw: RowDraw? = nil
        ) {
            self.tokens = tokens
            self.start = start
            self.cache = cache
            self.wantsLogits = wantsLogits
            self.greedy = greedy
            self.draw = draw
        }

        /// What the step brings back of the last token's logits, where they are wanted: the first of `greedy` and
        /// `draw` that is set, else the whole row.
        fileprivate var output: Output {
            greedy ? .argmax : draw != nil ? .draw : .logits
        }
    }

    /// What a slice wants of its last token's logits (``Slice/output``).
    fileprivate enum Output { case argmax, draw, logits }

    /// Runs `tokens` at positions `start ..< start + tokens.count` of the sequence whose cache is `cache`, and
    /// returns the logits of the positions `wantLogits` selects (indices into `tokens`).
    public func forward(
        _ tokens: [Int], startingAt start: Int, cache: B.KeyValueCache, logitsFor wantLogits: (Int) -> Bool
    ) -> [Int: [Float]] {
        queuedStep = nil
        var result: [Int: [Float]] = [:]
        var offset = 0
        while offset < tokens.count {
            let chunk = Array(tokens[offset..<min(offset + chunkSize, tokens.count)])
            let wanted = (0..<chunk.count).filter { wantLogits(offset + $0) }
            if chunk.count == 1 && wanted == [0] {
                decodeStep(chunk[0], at: start + offset, cache: cache)
                result[offset] = backend.logits(normed, row: 0, head: head)
                offset += 1
                continue
            }
            let positions = (0..<chunk.count).map { Int32(start + offset + $0) }
            runLayers(chunk, positions: positions, segments: [(0..<chunk.count, cache)])
            if !wanted.isEmpty {
                backend.rmsNorm(x, weight: finalNorm, epsilon: config.rmsNormEpsilon, tokens: chunk.count, into: normed)
                for row in wanted { result[offset + row] = backend.logits(normed, row: row, head: head) }
            }
            offset += chunk.count
        }
        if tokens.count > 1 { discardScratch(keepingRows: 1) }
        return result
    }

    /// Gives back the scratch rows past the first `rows` once prompt tokens have run: the decoding steps that
    /// follow use one row per sequence, and a chunk's rows would otherwise stay resident as long as the model.
    private func discardScratch(keepingRows rows: Int) {
        for buffer in [x, normed, q, k, v, attention, projected, gate, up] {
            backend.discardRows(of: buffer, after: rows)
        }
        for buffer in [quantizedHidden, quantizedAttention, quantizedFeedForward] {
            backend.discardRows(of: buffer, after: rows)
        }
    }

    /// Runs `token` at `position` of the sequence whose cache is `cache` and returns the index of its largest logit
    /// (the lowest on ties), found where the backend runs.
    public func greedyNext(_ token: Int, at position: Int, cache: B.KeyValueCache) -> Int {
        decodeStep(token, at: position, cache: cache)
        return backend.argmax(normed, row: 0, head: head)
    }

    /// One token through the layer stack and the final norm, into row 0 of `normed`, as one backend step.
    private func decodeStep(_ token: Int, at position: Int, cache: B.KeyValueCache) {
        _ = run([Slice(tokens: [token], start: position, cache: cache, wantsLogits: true)])
    }

    /// Runs the slices of several sequences as one step: every projection reads the weights once for all their
    /// tokens, attention runs per sequence against its own cache (one backend call for all of them). Returns, per
    /// slice, the logits of its last token when wanted. The slices hold at most ``chunkSize`` tokens together.
    public func forward(batch: [Slice]) -> [[Float]?] {
        step(batch: batch, greedy: false).map {
            if case .logits(let logits) = $0 { logits } else { nil }
        }
    }

    /// ``forward(batch:)`` with only the index of each wanted row's largest logit (the lowest on ties) coming
    /// back, found where the backend runs: the greedy step of many sequences.
    public func greedyNext(batch: [Slice]) -> [Int?] {
        step(batch: batch, greedy: true).map {
            if case .token(let token) = $0 { token } else { nil }
        }
    }

    /// `count` decoding steps of the slices' sequences, one token each to begin with, each step's tokens chosen from
    /// the logits of the step before: by `draws[step][slice]` where `draws` is not empty (a draw of temperature 0 takes
    /// the argmax), else the argmax. Where the backend keeps those tokens itself
    /// (``Backend/argmaxKept(_:rows:head:step:of:)``, ``Backend/drawKept(_:rows:head:draws:step:of:)``), the host
    /// queues every step and waits once for their tokens instead of once a step. Returns each step's tokens, one a
    /// slice. The caches must have room for `count` more positions.
    ///
    /// With `next` above 0, the caller means to go on with a run of `next` steps of the same sequences, whose first
    /// step draws `nextDraws` (where not empty, else takes the argmax), and the caches have room for one position
    /// more: where the backend keeps the tokens, that run's first step is queued before this run's tokens are read
    /// back, so the device has it to run while the host reads them and queues the rest. The next call starts from it
    /// when it asks for exactly that run (each slice one position on, its token this run's last, the same first
    /// draws); any other call runs its first step again, which writes the same cache positions over.
    public func decodeSteps(
        batch: [Slice], count: Int, draws: [[RowDraw]] = [], queueingNext next: Int = 0,
        drawing nextDraws: [RowDraw] = []
    ) -> [[Int]] {
        precondition(batch.allSatisfy { $0.tokens.count == 1 }, "decoding steps start from one token a sequence")
        precondition(count >= 1, "at least one step")
        precondition(next >= 0, "no run of fewer than 0 steps after it")
        precondition(
            draws.isEmpty || draws.count == count && draws.allSatisfy { $0.count == batch.count },
            "one draw a sequence a step")
        precondition(nextDraws.isEmpty || nextDraws.count == batch.count, "one draw a sequence")
        var slices = batch.map {
            var slice = $0
            slice.wantsLogits = true
            slice.greedy = true
            return slice
        }
        let queued = QueuedStep(
            starts: batch.map(\.start), tokens: batch.map { $0.tokens[0] }, count: count, draws: draws.first ?? [])
        let first = queuedStep == queued ? 1 : 0
        queuedStep = nil
        if first == 1 { slices = slices.map { $0.advanced(to: nil) } }
        var known: [[Int]] = []
        // The token each row of `rows` picks where the backend runs: by `draws` where one of them draws.
        func choose(_ rows: [Int], _ draws: [RowDraw], step index: Int, of count: Int) -> [Int]? {
            draws.allSatisfy({ $0.temperature == 0 })
                ? backend.argmaxKept(normed, rows: rows, head: head, step: index, of: count)
                : backend.drawKept(normed, rows: rows, head: head, draws: draws, step: index, of: count)
        }
        for index in first..<count {
            let rows = run(slices, tokensKept: index > 0 && known.isEmpty).compactMap { $0 }
            let tokens = choose(rows, draws.isEmpty ? [] : draws[index], step: index, of: count)
            precondition((tokens == nil) == known.isEmpty || index == 0, "a backend keeps every step's tokens or none")
            if let tokens { known.append(tokens) }
            slices = slices.enumerated().map { row, slice in slice.advanced(to: tokens?[row]) }
        }
        guard known.isEmpty else { return known }
        backend.queueKeptTokens()
        if next > 0 {
            let rows = run(slices, tokensKept: true).compactMap { $0 }
            _ = choose(rows, nextDraws, step: 0, of: next)
        }
        let tokens = backend.keptTokens()
        if next > 0, let last = tokens.last {
            queuedStep = QueuedStep(starts: slices.map(\.start), tokens: last, count: next, draws: nextDraws)
        }
        return tokens
    }

    /// Makes the next ``decodeSteps(batch:count:draws:queueingNext:drawing:)`` run its first step itself: for a caller
    /// whose sequences changed although their positions and tokens did not.
    public func forgetQueuedStep() {
        queuedStep = nil
    }

    /// A run's first step, queued ahead (``decodeSteps(batch:count:draws:queueingNext:drawing:)``): where its
    /// sequences start, the tokens it starts from, how many steps its run takes, and its draws (none where it takes the
    /// argmax).
    private struct QueuedStep: Equatable {
        let starts: [Int]
        let tokens: [Int]
        let count: Int
        let draws: [RowDraw]
    }

    /// ``step(batch:)`` with every slice's `greedy` set to `greedy`.
    private func step(batch: [Slice], greedy: Bool) -> [StepOutput?] {
        step(
            batch: batch.map {
                var slice = $0
                slice.greedy = greedy
                return slice
            })
    }

    /// Runs the slices as one step; returns per slice what it wants of its last token: its logits, or where
    /// `greedy` only the index of the largest, or where `draw` only the token it picks, or nothing.
    public func step(batch: [Slice]) -> [StepOutput?] {
        let rows = run(batch)
        let wanted = zip(batch, rows).compactMap { slice, row in row.map { (slice, $0) } }
        let greedyRows = wanted.filter { $0.0.output == .argmax }.map(\.1)
        let drawRows = wanted.filter { $0.0.output == .draw }
        let logitRows = wanted.filter { $0.0.output == .logits }.map(\.1)
        var tokens = (greedyRows.isEmpty ? [] : backend.argmax(normed, rows: greedyRows, head: head)).makeIterator()
        var drawn =
            (drawRows.isEmpty
            ? [] : backend.draw(normed, rows: drawRows.map(\.1), head: head, draws: drawRows.map { $0.0.draw! }))
            .makeIterator()
        var logits = (logitRows.isEmpty ? [] : backend.logits(normed, rows: logitRows, head: head)).makeIterator()
        let outputs: [StepOutput?] = zip(batch, rows).map { slice, row in
            guard row != nil else { return nil }
            switch slice.output {
            case .argmax: return tokens.next().map { .token($0) }
            case .draw: return drawn.next().map { .token($0) }
            case .logits: return logits.next().map { .logits($0) }
            }
        }
        // The decoding steps after a prompt chunk use one row a sequence.
        if batch.contains(where: { $0.tokens.count > 1 }) { discardScratch(keepingRows: batch.count) }
        return outputs
    }

    /// Runs the slices as one step and the final norm of the rows whose logits are wanted; returns per slice the
    /// row of `normed` that holds its last token when wanted. With `tokensKept`, a decoding step's tokens are the
    /// ones the backend kept from the last step's argmax, not the slices'.
    private func run(_ batch: [Slice], tokensKept: Bool = false) -> [Int?] {
        // Any step but the queued one's run changes what the device holds for it (its tokens at least).
        queuedStep = nil
        let tokens = batch.flatMap(\.tokens)
        precondition(tokens.count <= chunkSize, "a step holds at most \(chunkSize) tokens")
        guard !tokens.isEmpty else { return batch.map { _ in nil } }
        var positions: [Int32] = []
        var segments: [(rows: Range<Int>, cache: B.KeyValueCache)] = []
        for slice in batch {
            segments.append((positions.count..<positions.count + slice.tokens.count, slice.cache))
            positions += (0..<slice.tokens.count).map { Int32(slice.start + $0) }
        }
        let wantsLogits = batch.contains(where: \.wantsLogits)
        // A decoding step (one token per sequence) is the same operations every time for the same number of
        // sequences, so the backend may replay it; its final norm always runs.
        let decoding = batch.allSatisfy { $0.tokens.count == 1 }
        func layersAndNorm() {
            runLayers(tokens, positions: positions, segments: segments)
            if decoding || wantsLogits {
                backend.rmsNorm(
                    x, weight: finalNorm, epsilon: config.rmsNormEpsilon, tokens: tokens.count, into: normed)
            }
        }
        if decoding {
            backend.step(
                tokens: tokens, positions: positions, segments: segments, tokensKept: tokensKept, layersAndNorm)
        } else {
            layersAndNorm()
        }
        guard wantsLogits else { return batch.map { _ in nil } }
        return zip(batch, segments).map { slice, segment in
            slice.wantsLogits && !segment.rows.isEmpty ? segment.rows.upperBound - 1 : nil
        }
    }

    /// Runs the layer stack over `tokens`; `segments` say which rows belong to which sequence's cache.
    private func runLayers(_ tokens: [Int], positions: [Int32], segments: [(rows: Range<Int>, cache: B.KeyValueCache)])
    {
        let n = tokens.count
        let eps = config.rmsNormEpsilon
        let c = config
        backend.embed(tokens, from: embeddings, into: x)
        for (index, layer) in layers.enumerated() {
            // Attention.
            backend.rmsNormQuantize(x, weight: layer.attentionNorm, epsilon: eps, tokens: n, into: quantizedHidden)
            backend.multiply([layer.query, layer.key, layer.value], quantizedHidden, tokens: n, into: [q, k, v])
            backend.applyRoPE(
                q, tokens: n, heads: c.headCount, headDim: c.headDim, positions: positions, theta: c.ropeTheta)
            backend.applyRoPE(
                k, tokens: n, heads: c.kvHeadCount, headDim: c.headDim, positions: positions, theta: c.ropeTheta)
            backend.attend(
                keys: k, values: v, queries: q, positions: positions, segments: segments, layer: index,
                heads: c.headCount, kvHeads: c.kvHeadCount, headDim: c.headDim, into: attention)
            backend.rmsNormQuantize(
                attention, weight: layer.attentionSubNorm, epsilon: eps, tokens: n, into: quantizedAttention)
            backend.multiply(layer.output, quantizedAttention, tokens: n, into: projected)
            backend.add(projected, to: x, tokens: n)
            // Feed-forward.
            backend.rmsNormQuantize(x, weight: layer.feedForwardNorm, epsilon: eps, tokens: n, into: quantizedHidden)
            backend.multiply([layer.gate, layer.up], quantizedHidden, tokens: n, into: [gate, up])
            backend.gatedActivation(c.activation, gate: gate, up: up, tokens: n)
            backend.rmsNormQuantize(
                gate, weight: layer.feedForwardSubNorm, epsilon: eps, tokens: n, into: quantizedFeedForward)
            backend.multiply(layer.down, quantizedFeedForward, tokens: n, into: projected)
            backend.add(projected, to: x, tokens: n)
        }
    }
}

extension Transformer.Slice {
    /// The slice one position on, taking `token` where given (else the one the backend kept).
    fileprivate func advanced(to token: Int?) -> Self {
        var next = self
        next.start += 1
        if let token { next.tokens = [token] }
        return next
    }
}
