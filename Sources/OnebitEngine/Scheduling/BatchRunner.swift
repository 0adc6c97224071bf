/// The part of a model the scheduler drives: a pool of per-sequence caches and one batched forward step.
///
/// Hides the backend type so the scheduler is written once.
protocol BatchRunner: AnyObject {
    /// Most tokens one step holds.
    var stepTokens: Int { get }
    /// Takes a cache for `prompt` and returns its slot and how many leading prompt tokens it already holds.
    func acquireSlot(for prompt: [Int]) -> (slot: Int, reused: Int)
    /// Returns a slot's cache to the pool, keeping its contents for a later prompt that starts the same way.
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

/// A ``BatchRunner`` over the transformer of one backend.
///
/// Caches are kept after use, with the tokens whose keys and values they hold: a new request takes the free cache
/// that shares the longest prefix with its prompt and skips recomputing that prefix (a chat client resends the
/// whole conversation every turn), and otherwise reuses the memory of a finished request instead of allocating
/// and zeroing a whole context again. At most one cache per concurrent sequence ever exists.
final class TransformerRunner<B: Backend>: BatchRunner {
    private let transformer: Transformer<B>
    private let capacity: Int
    private var caches: [B.KeyValueCache] = []
    /// Per slot, the tokens at positions `0..<count` of its cache.
    private var contents: [[Int]] = []
    private var free: [Int] = []

    init(transformer: Transformer<B>, capacity: Int) {
        self.transformer = transformer
        self.capacity = capacity
    }

    var stepTokens: Int { transformer.chunkSize }

    func acquireSlot(for prompt: [Int]) -> (slot: Int, reused: Int) {
        var best: (index: Int, length: Int)?
        for (index, slot) in free.enumerated() {
            let length = Self.commonPrefix(contents[slot], prompt)
            if length > best?.length ?? -1 { best = (index, length) }
        }
        guard let best else {
            caches.append(transformer.makeCache(capacity: capacity))
            contents.append([])
            return (caches.count - 1, 0)
        }
        let slot = free.remove(at: best.index)
        // The last prompt token is always run again: its logits pick the first generated token.
        let reused = min(best.length, prompt.count - 1)
        contents[slot].removeSubrange(reused...)
        return (slot, reused)
    }

    private static func commonPrefix(_ a: [Int], _ b: [Int]) -> Int {
        var length = 0
        while length < a.count, length < b.count, a[length] == b[length] { length += 1 }
        return length
    }

    func releaseSlot(_ slot: Int) { free.append(slot) }

    func run(_ slices: [SliceRequest]) -> [[Float]?] {
        for slice in slices {
            contents[slice.slot].removeSubrange(min(slice.start, contents[slice.slot].count)...)
            contents[slice.slot] += slice.tokens
        }
        return transformer.forward(
            batch: slices.map {
                Transformer<B>.Slice(
                    tokens: $0.tokens, start: $0.start, cache: caches[$0.slot], wantsLogits: $0.wantsLogits)
            })
    }
}
