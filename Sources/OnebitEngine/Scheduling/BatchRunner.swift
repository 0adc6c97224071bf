/// The part of a model the scheduler drives: a pool of per-sequence caches and one batched forward step.
///
/// Hides the backend type so the scheduler is written once.
protocol BatchRunner: AnyObject {
    /// Most tokens one step holds.
    var stepTokens: Int { get }
    /// Takes a free cache from the pool (allocating one when the pool is empty) and returns its slot number.
    func acquireSlot() -> Int
    /// Returns a slot's cache to the pool; its contents are overwritten by the next user.
    func releaseSlot(_ slot: Int)
    /// Runs one step; returns per slice the logits of its last token when wanted.
    func run(_ slices: [SliceRequest]) -> [[Float]?]
}

/// One sequence's part of a step, by cache slot.
struct SliceRequest {
    var slot: Int
    var tokens: [Int]
    var start: Int
    var wantsLogits: Bool
}

/// A ``BatchRunner`` over the transformer of one backend. Caches are kept after use so a new request reuses the
/// memory of a finished one instead of allocating (and zeroing) a whole context again.
final class TransformerRunner<B: Backend>: BatchRunner {
    private let transformer: Transformer<B>
    private let capacity: Int
    private var caches: [B.KeyValueCache] = []
    private var free: [Int] = []

    init(transformer: Transformer<B>, capacity: Int) {
        self.transformer = transformer
        self.capacity = capacity
    }

    var stepTokens: Int { transformer.chunkSize }

    func acquireSlot() -> Int {
        if let slot = free.popLast() { return slot }
        caches.append(transformer.makeCache(capacity: capacity))
        return caches.count - 1
    }

    func releaseSlot(_ slot: Int) { free.append(slot) }

    func run(_ slices: [SliceRequest]) -> [[Float]?] {
        transformer.forward(
            batch: slices.map {
                Transformer<B>.Slice(
                    tokens: $0.tokens, start: $0.start, cache: caches[$0.slot], wantsLogits: $0.wantsLogits)
            })
    }
}
