/// The part of a model the scheduler drives: sequences whose keys and values live in a pool of KV blocks, and one
/// batched forward step.
///
/// Hides the backend type so the scheduler is written once.
protocol BatchRunner: AnyObject {
    /// Most tokens one step holds.
    var stepTokens: Int { get }
    /// The pool's block counts.
    var blockUsage: KeyValueBlockUsage { get }
    /// Starts a sequence for `prompt`: maps its leading blocks to cached ones where they hold the same tokens and
    /// takes blocks for the rest of the prompt, leaving one block for every running sequence that may still grow
    /// past its blocks. Returns the sequence and how many leading prompt tokens it already holds, or `nil` when the
    /// pool cannot take the prompt now.
    func admit(_ prompt: [Int]) -> (sequence: Int, reused: Int)?
    /// Takes blocks so that `sequence` holds positions `0..<positions`; `false` when the pool has none left.
    func reserve(_ sequence: Int, positions: Int) -> Bool
    /// Ends `sequence`, releasing its blocks (their contents stay for a later prompt that starts the same way).
    func release(_ sequence: Int)
    /// Runs one step; returns per slice what it wants of its last token (its logits, or only the argmax).
    func run(_ slices: [SliceRequest]) -> [StepOutput?]
    /// Most decoding steps ``runSteps(_:count:draws:queueingNext:drawing:)`` gains by queuing at once: 1 where the
    /// backend hands every step's tokens back anyway.
    var stepsAhead: Int { get }
    /// Runs `count` decoding steps of one token per slice, each step's tokens chosen from the logits of the step
    /// before (by `draws[step][slice]` where `draws` is not empty, else the argmax), and waits once for all of them;
    /// returns each step's tokens, one a slice. The sequences must hold `count` more positions. With `next` above 0
    /// they hold one more, and the first step of a run of `next` steps of the same sequences, drawing `nextDraws` where
    /// not empty, is queued before the tokens come back, for the next call to start from if it asks for exactly that
    /// run.
    func runSteps(
        _ slices: [SliceRequest], count: Int, draws: [[RowDraw]], queueingNext next: Int, drawing nextDraws: [RowDraw]
    ) -> [[Int]]
}

/// How the blocks of a pool are used.
struct KeyValueBlockUsage {
    /// Positions per block.
    var blockPositions: Int
    /// Blocks in the pool.
    var total: Int
    /// Blocks running sequences hold.
    var used: Int
    /// Blocks nobody holds that keep keys and values a later prompt may reuse (evicted when needed).
    var cached: Int
    /// Blocks holding nothing.
    var free: Int
}

/// One sequence's part of a step.
struct SliceRequest {
    var sequence: Int
    var tokens: [Int]
    var start: Int
    var wantsLogits: Bool
    /// Whether only the argmax of those logits is wanted.
    var greedy = false
    /// Where not nil, only the token this draw picks is wanted.
    var draw: RowDraw?
}

/// A ``BatchRunner`` over the transformer of one backend and one pool of KV blocks.
final class TransformerRunner<B: Backend>: BatchRunner {
    /// A running sequence's blocks.
    private struct Sequence {
        /// Pool blocks, in position order.
        var table: [Int32] = []
        /// Chain hashes of the full blocks at the front of `table`.
        var chain: [Int] = []
    }

    private let transformer: Transformer<B>
    /// Most positions of a sequence.
    private let contextLength: Int
    let stepsAhead: Int
    private let pool: B.KeyValuePool
    private let blocks: KeyValueBlocks
    private var sequences: [Int: Sequence] = [:]
    private var nextSequence = 0
    /// The sequences, in order, whose next run's first step the last
    /// ``runSteps(_:count:draws:queueingNext:drawing:)`` queued.
    private var queuedSequences: [Int]?

    /// A runner over a pool of `blockCount` blocks of the backend's block size for `contextLength`, queuing up to
    /// `stepsAhead` decoding steps at once.
    init(
        transformer: Transformer<B>, contextLength: Int, stepsAhead: Int = 1,
        blockCount: (_ blockPositions: Int) -> Int
    ) {
        self.transformer = transformer
        self.contextLength = contextLength
        self.stepsAhead = max(1, stepsAhead)
        let blockPositions = transformer.backend.keyValueBlockPositions(contextLength: contextLength)
        // No more than the device holds: a pool the GPU cannot fill would fail as its sequences grow.
        let limit = transformer.keyValueBlockLimit(blockPositions: blockPositions) ?? .max
        let count = min(blockCount(blockPositions), limit)
        blocks = KeyValueBlocks(count: count, blockPositions: blockPositions)
        pool = transformer.makeKeyValuePool(blockPositions: blockPositions, blocks: count)
    }

    var stepTokens: Int { transformer.chunkSize }

    var blockUsage: KeyValueBlockUsage {
        KeyValueBlockUsage(
            blockPositions: blocks.blockPositions, total: blocks.count, used: blocks.held, cached: blocks.cached,
            free: blocks.free)
    }

    func admit(_ prompt: [Int]) -> (sequence: Int, reused: Int)? {
        let size = blocks.blockPositions
        // A sequence whose blocks already cover the context (a whole-context block) never needs another.
        let headroom = sequences.values.count { $0.table.count * size < contextLength }
        var sequence = Sequence()
        // Full blocks that end before the last prompt token, which always runs: its logits pick the first token.
        let shareable = (prompt.count - 1) / size
        while sequence.table.count < shareable {
            let start = sequence.table.count * size
            let parent = sequence.chain.last ?? KeyValueBlocks.root
            guard let block = blocks.cached(after: parent, prompt[start..<start + size]) else { break }
            sequence.table.append(Int32(block))
            sequence.chain.append(KeyValueBlocks.chain(parent, prompt[start..<start + size]))
        }
        var reused = sequence.table.count * size
        let needed = (prompt.count + size - 1) / size - sequence.table.count
        guard needed + headroom <= blocks.available else {
            sequence.table.forEach { blocks.release(Int($0)) }
            return nil
        }
        // The next block may continue a cached block that holds the start of this prompt's next tokens. At most
        // `size - 1` of them: a block taken over this way is written to at least once more, so it is full only
        // through a write, which puts its chain hash in the sequence's chain as every later block's parent needs.
        // (A full block can be cached without being found by its hash: a second block with the same tokens, written
        // while the first was held, whose twin was evicted since.)
        let parent = sequence.chain.last ?? KeyValueBlocks.root
        if let (block, length) = blocks.longestPrefix(
            after: parent, prompt[reused..<min(reused + size - 1, prompt.count - 1)])
        {
            sequence.table.append(Int32(block))
            reused += length
        }
        while sequence.table.count * size < prompt.count {
            // Checked above: enough blocks are available.
            sequence.table.append(Int32(blocks.allocate()!))
        }
        let id = nextSequence
        nextSequence += 1
        sequences[id] = sequence
        return (id, reused)
    }

    func reserve(_ id: Int, positions: Int) -> Bool {
        guard var sequence = sequences[id] else { return false }
        defer { sequences[id] = sequence }
        while sequence.table.count * blocks.blockPositions < positions {
            guard let block = blocks.allocate() else { return false }
            sequence.table.append(Int32(block))
        }
        return true
    }

    func release(_ id: Int) {
        guard let sequence = sequences.removeValue(forKey: id) else { return }
        for block in sequence.table { blocks.release(Int(block)) }
    }

    func run(_ slices: [SliceRequest]) -> [StepOutput?] {
        for slice in slices { record(slice.tokens, at: slice.start, of: slice.sequence) }
        return transformer.step(batch: transformerSlices(slices))
    }

    func runSteps(
        _ slices: [SliceRequest], count: Int, draws: [[RowDraw]], queueingNext next: Int, drawing nextDraws: [RowDraw]
    ) -> [[Int]] {
        // The transformer knows the queued step's positions and tokens, not whose they were.
        let sequences = slices.map(\.sequence)
        if sequences != queuedSequences { transformer.forgetQueuedStep() }
        queuedSequences = next > 0 ? sequences : nil
        let steps = transformer.decodeSteps(
            batch: transformerSlices(slices), count: count, draws: draws, queueingNext: next, drawing: nextDraws)
        // Each step's input is the token before it: the slice's own, then what the steps before chose.
        for (row, slice) in slices.enumerated() {
            record(slice.tokens + steps.dropLast().map { $0[row] }, at: slice.start, of: slice.sequence)
        }
        return steps
    }

    /// Notes that `tokens` fill `sequence`'s positions from `start` on, for later prompts to find its blocks by.
    private func record(_ tokens: [Int], at start: Int, of id: Int) {
        let size = blocks.blockPositions
        var sequence = sequences[id]!
        var position = start
        while position < start + tokens.count {
            let index = position / size
            let end = min((index + 1) * size, start + tokens.count)
            let written = tokens[(position - start)..<(end - start)]
            // Positions are written in order, so every block before this one is full and in the chain.
            let parent = index == 0 ? KeyValueBlocks.root : sequence.chain[index - 1]
            if let hash = blocks.write(written, at: position % size, in: Int(sequence.table[index]), after: parent) {
                sequence.chain.append(hash)
            }
            position = end
        }
        sequences[id] = sequence
    }

    /// The transformer's slices of `slices`, each over its sequence's blocks.
    private func transformerSlices(_ slices: [SliceRequest]) -> [Transformer<B>.Slice] {
        slices.map { slice in
            let view = transformer.backend.keyValueCache(in: pool, blocks: sequences[slice.sequence]!.table)
            return Transformer<B>.Slice(
                tokens: slice.tokens, start: slice.start, cache: view, wantsLogits: slice.wantsLogits,
                greedy: slice.greedy, draw: slice.draw)
        }
    }
}
