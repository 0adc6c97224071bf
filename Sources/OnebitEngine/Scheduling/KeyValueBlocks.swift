/// The bookkeeping of a pool of KV blocks: who holds each block, which tokens it holds, and which full blocks a
/// later prompt may share.
///
/// A full block is known by the hash of its tokens chained to the hash of every block before it (`parent`), so two
/// sequences that start with the same tokens map their leading full blocks to the same pool blocks: keys and values
/// depend on every earlier token, which the chain covers. Blocks are reference-counted; a block nobody holds keeps
/// its contents for a later prompt (a chat client resends the whole conversation every turn) until the pool needs
/// it, the least recently released first. Only bookkeeping lives here; the backend owns the memory.
final class KeyValueBlocks {
    /// Positions per block.
    let blockPositions: Int
    /// Blocks in the pool.
    let count: Int

    /// The chain hash before a sequence's first block.
    static let root = 0

    private var references: [Int]
    /// Per block, the tokens whose keys and values it holds, in position order.
    private var contents: [[Int]]
    /// Per block, the chain hash of every token before it.
    private var parents: [Int]
    /// Per block, its own chain hash while it is the block `cached` finds for it.
    private var registered: [Int?]
    private var byHash: [Int: Int] = [:]
    /// Blocks holding nothing, the lowest id last so it is taken first (memory is committed as blocks are used).
    private var empty: [Int]
    /// Unheld blocks with contents, least recently released first.
    private var unheld = LeastRecentlyUsed()

    /// A pool of `count` empty blocks of `blockPositions` positions.
    init(count: Int, blockPositions: Int) {
        precondition(count > 0 && blockPositions > 0, "a pool needs blocks of at least one position")
        self.count = count
        self.blockPositions = blockPositions
        references = Array(repeating: 0, count: count)
        contents = Array(repeating: [], count: count)
        parents = Array(repeating: Self.root, count: count)
        registered = Array(repeating: nil, count: count)
        empty = Array((0..<count).reversed())
        unheld = LeastRecentlyUsed(count: count)
    }

    /// Blocks some sequence holds.
    private(set) var held = 0
    /// Blocks nobody holds whose contents a later prompt may reuse.
    var cached: Int { unheld.count }
    /// Blocks holding nothing.
    var free: Int { empty.count }
    /// Blocks a sequence can take now: empty ones, then cached ones, which are evicted.
    var available: Int { empty.count + unheld.count }

    /// The chain hash of a block holding `tokens` after the tokens whose chain hash is `parent`.
    static func chain(_ parent: Int, _ tokens: ArraySlice<Int>) -> Int {
        var hasher = Hasher()
        hasher.combine(parent)
        for token in tokens { hasher.combine(token) }
        return hasher.finalize()
    }

    /// The block that holds exactly `tokens` (a full block) after `parent`, now held once more by the caller.
    func cached(after parent: Int, _ tokens: ArraySlice<Int>) -> Int? {
        guard tokens.count == blockPositions, let block = byHash[Self.chain(parent, tokens)],
            parents[block] == parent, contents[block].elementsEqual(tokens)
        else { return nil }
        hold(block)
        return block
    }

    /// The unheld block after `parent` whose tokens share the longest prefix with `tokens`, taken over by the
    /// caller, who writes after that prefix, with the prefix's length; `nil` when none shares a token.
    func longestPrefix(after parent: Int, _ tokens: ArraySlice<Int>) -> (block: Int, length: Int)? {
        var best: (block: Int, length: Int)?
        for block in unheld.blocks where parents[block] == parent {
            let length = zip(contents[block], tokens).prefix { $0 == $1 }.count
            if length > best?.length ?? 0 { best = (block, length) }
        }
        guard let best else { return nil }
        unheld.remove(best.block)
        unregister(best.block)
        contents[best.block].removeSubrange(best.length...)
        references[best.block] = 1
        held += 1
        return best
    }

    /// An empty block, held by the caller; `nil` when every block is held. Takes a never-used block first, else
    /// evicts the least recently released cached one.
    func allocate() -> Int? {
        guard let block = empty.popLast() ?? unheld.removeOldest() else { return nil }
        unregister(block)
        contents[block] = []
        references[block] = 1
        held += 1
        return block
    }

    /// Records that `tokens` were written at offsets `offset...` of `block`, which the caller holds alone, after
    /// the tokens whose chain hash is `parent`. A block that becomes full is offered to later prompts; its chain
    /// hash is returned.
    @discardableResult
    func write(_ tokens: ArraySlice<Int>, at offset: Int, in block: Int, after parent: Int) -> Int? {
        precondition(references[block] == 1 && offset + tokens.count <= blockPositions, "a block write out of bounds")
        unregister(block)
        parents[block] = parent
        contents[block].removeSubrange(min(offset, contents[block].count)...)
        contents[block] += tokens
        guard contents[block].count == blockPositions else { return nil }
        let hash = Self.chain(parents[block], contents[block][...])
        if byHash[hash] == nil {
            byHash[hash] = block
            registered[block] = hash
        }
        return hash
    }

    /// Drops one hold of `block`; a block nobody holds keeps its contents for reuse until it is evicted.
    func release(_ block: Int) {
        precondition(references[block] > 0, "block \(block) released more often than held")
        references[block] -= 1
        guard references[block] == 0 else { return }
        held -= 1
        if contents[block].isEmpty {
            empty.append(block)
        } else {
            unheld.append(block)
        }
    }

    /// How many sequences hold `block`.
    func holders(of block: Int) -> Int { references[block] }

    private func hold(_ block: Int) {
        if references[block] == 0 {
            unheld.remove(block)
            held += 1
        }
        references[block] += 1
    }

    private func unregister(_ block: Int) {
        guard let hash = registered[block] else { return }
        byHash[hash] = nil
        registered[block] = nil
    }
}

/// Block ids in the order they were appended, with removal from anywhere in constant time (a doubly linked list
/// over arrays indexed by block id).
struct LeastRecentlyUsed {
    private var previous: [Int] = []
    private var next: [Int] = []
    private var member: [Bool] = []
    private var head = -1
    private var tail = -1
    /// Blocks in the list.
    private(set) var count = 0

    /// An empty list of blocks `0..<count`.
    init(count: Int = 0) {
        previous = Array(repeating: -1, count: count)
        next = Array(repeating: -1, count: count)
        member = Array(repeating: false, count: count)
    }

    /// Appends `block` as the most recent.
    mutating func append(_ block: Int) {
        precondition(!member[block], "block \(block) is already listed")
        member[block] = true
        previous[block] = tail
        next[block] = -1
        if tail >= 0 { next[tail] = block } else { head = block }
        tail = block
        count += 1
    }

    /// Removes `block` if listed.
    mutating func remove(_ block: Int) {
        guard member[block] else { return }
        member[block] = false
        if previous[block] >= 0 { next[previous[block]] = next[block] } else { head = next[block] }
        if next[block] >= 0 { previous[next[block]] = previous[block] } else { tail = previous[block] }
        count -= 1
    }

    /// Removes and returns the least recent block.
    mutating func removeOldest() -> Int? {
        guard head >= 0 else { return nil }
        let block = head
        remove(block)
        return block
    }

    /// The blocks, least recent first.
    var blocks: [Int] {
        var out: [Int] = []
        out.reserveCapacity(count)
        var block = head
        while block >= 0 {
            out.append(block)
            block = next[block]
        }
        return out
    }
}
