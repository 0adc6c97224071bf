import Synchronization

/// The byte-pair-encoding model: a vocabulary and ranked merges, applied to one pre-tokenized word at a time.
struct BPEModel: Sendable {
    /// Token ids by the UTF-8 of their text; bytes rather than `String` keys, because `String` equality is
    /// canonical equivalence and would merge distinct entries such as `é` and `e` + U+0301.
    let vocabulary: [[UInt8]: Int]
    /// Token text by id; `nil` where the model has no such id.
    let tokens: [String?]
    /// Merge rank and result id, keyed by the pair of ids.
    let merges: [MergePair: Merge]
    /// Whether a word found whole in the vocabulary skips the merges (Llama-3 does this).
    let ignoreMerges: Bool
    /// Whether characters missing from the vocabulary become `<0xAB>` byte tokens.
    let byteFallback: Bool
    let unknownTokenID: Int?
    /// Whether consecutive unknown characters become a single unknown token.
    let fuseUnknown: Bool
    /// Ids of single-character tokens for the first scalars (the whole byte-level alphabet), -1 if absent.
    private let singleScalarIDs: [Int32]
    private let cache = WordCache()

    struct MergePair: Hashable, Sendable {
        var left: Int32
        var right: Int32
    }

    struct Merge: Sendable {
        var rank: Int32
        var result: Int32
    }

    init(
        vocabulary: [[UInt8]: Int], merges: [MergePair: Merge], ignoreMerges: Bool, byteFallback: Bool,
        unknownTokenID: Int?, fuseUnknown: Bool
    ) {
        self.vocabulary = vocabulary
        var tokens = [String?](repeating: nil, count: (vocabulary.values.max() ?? -1) + 1)
        for (bytes, id) in vocabulary { tokens[id] = String(decoding: bytes, as: UTF8.self) }
        self.tokens = tokens
        self.merges = merges
        self.ignoreMerges = ignoreMerges
        self.byteFallback = byteFallback
        self.unknownTokenID = unknownTokenID
        self.fuseUnknown = fuseUnknown
        singleScalarIDs = (0..<0x180).map { value in
            let bytes = Array(UTF8.encode(Unicode.Scalar(value)!)!)
            return Int32(vocabulary[bytes] ?? -1)
        }
    }

    /// Appends the ids of one word.
    func tokenize(_ word: [Unicode.Scalar], into ids: inout [Int]) {
        guard !word.isEmpty else { return }
        if ignoreMerges || word.count == 1 {
            var bytes: [UInt8] = []
            bytes.reserveCapacity(word.count * 2)
            for scalar in word { bytes.append(contentsOf: UTF8.encode(scalar)!) }
            if let id = vocabulary[bytes] {
                ids.append(id)
                return
            }
        }
        if let cached = cache.lookup(word) {
            ids.append(contentsOf: cached)
            return
        }
        let result = merge(initialSymbols(word))
        cache.insert(word, result)
        ids.append(contentsOf: result)
    }

    /// One symbol per character, or its fallback bytes or unknown token when the vocabulary lacks it.
    private func initialSymbols(_ word: [Unicode.Scalar]) -> [Int32] {
        var symbols: [Int32] = []
        symbols.reserveCapacity(word.count)
        var previousWasUnknown = false
        for scalar in word {
            if let id = singleID(scalar) {
                symbols.append(id)
                previousWasUnknown = false
                continue
            }
            if byteFallback {
                let bytes = Array(UTF8.encode(scalar)!)
                let byteIDs = bytes.compactMap { vocabulary[Array(Self.byteTokenText($0).utf8)] }
                if byteIDs.count == bytes.count {
                    symbols.append(contentsOf: byteIDs.map { Int32($0) })
                    previousWasUnknown = false
                    continue
                }
            }
            if let unknownTokenID {
                if !(fuseUnknown && previousWasUnknown) { symbols.append(Int32(unknownTokenID)) }
                previousWasUnknown = true
            }
        }
        return symbols
    }

    private func singleID(_ scalar: Unicode.Scalar) -> Int32? {
        if scalar.value < 0x180 {
            let id = singleScalarIDs[Int(scalar.value)]
            return id >= 0 ? id : nil
        }
        return vocabulary[Array(UTF8.encode(scalar)!)].map { Int32($0) }
    }

    static func byteTokenText(_ byte: UInt8) -> String {
        let hex = String(byte, radix: 16, uppercase: true)
        return "<0x" + (byte < 16 ? "0" + hex : hex) + ">"
    }

    /// Applies merges lowest rank first, leftmost first among equal ranks, until none applies.
    ///
    /// A binary heap of candidate merges over a linked list of symbols keeps long words (a 10,000-character
    /// run) near n log n; stale candidates are recognised when popped.
    private func merge(_ initial: [Int32]) -> [Int] {
        let count = initial.count
        guard count > 1 else { return initial.map { Int($0) } }
        var symbols = initial
        var next = Array(1...count)
        next[count - 1] = -1
        var previous = Array(-1..<(count - 1))
        var alive = [Bool](repeating: true, count: count)
        var heap = MergeHeap()
        for position in 0..<(count - 1) {
            if let merge = merges[MergePair(left: symbols[position], right: symbols[position + 1])] {
                heap.push(.init(rank: merge.rank, position: Int32(position), result: merge.result))
            }
        }
        while let candidate = heap.pop() {
            let position = Int(candidate.position)
            guard alive[position], next[position] >= 0 else { continue }
            let right = next[position]
            guard let merge = merges[MergePair(left: symbols[position], right: symbols[right])],
                merge.result == candidate.result
            else { continue }
            symbols[position] = merge.result
            alive[right] = false
            next[position] = next[right]
            if next[right] >= 0 { previous[next[right]] = position }
            if previous[position] >= 0 {
                let left = previous[position]
                if let merge = merges[MergePair(left: symbols[left], right: symbols[position])] {
                    heap.push(.init(rank: merge.rank, position: Int32(left), result: merge.result))
                }
            }
            if next[position] >= 0,
                let merge = merges[MergePair(left: symbols[position], right: symbols[next[position]])]
            {
                heap.push(.init(rank: merge.rank, position: Int32(position), result: merge.result))
            }
        }
        var result: [Int] = []
        var position = 0
        while position >= 0 {
            result.append(Int(symbols[position]))
            position = next[position]
        }
        return result
    }
}

/// A min-heap of merge candidates ordered by rank, then position.
private struct MergeHeap {
    struct Candidate {
        var rank: Int32
        var position: Int32
        var result: Int32

        static func < (a: Candidate, b: Candidate) -> Bool {
            a.rank != b.rank ? a.rank < b.rank : a.position < b.position
        }
    }

    private var items: [Candidate] = []

    mutating func push(_ candidate: Candidate) {
        items.append(candidate)
        var child = items.count - 1
        while child > 0 {
            let parent = (child - 1) / 2
            guard items[child] < items[parent] else { break }
            items.swapAt(child, parent)
            child = parent
        }
    }

    mutating func pop() -> Candidate? {
        guard let top = items.first else { return nil }
        let last = items.removeLast()
        guard !items.isEmpty else { return top }
        items[0] = last
        var parent = 0
        while true {
            let left = 2 * parent + 1
            guard left < items.count else { break }
            let right = left + 1
            let smaller = right < items.count && items[right] < items[left] ? right : left
            guard items[smaller] < items[parent] else { break }
            items.swapAt(smaller, parent)
            parent = smaller
        }
        return top
    }
}

/// Words already tokenized, shared by all threads using one tokenizer.
///
/// Bounded like the `tokenizers` cache: once full, new words are no longer remembered.
private final class WordCache: Sendable {
    static let capacity = 10_000
    private let words = Mutex<[[Unicode.Scalar]: [Int]]>([:])

    func lookup(_ word: [Unicode.Scalar]) -> [Int]? {
        words.withLock { $0[word] }
    }

    func insert(_ word: [Unicode.Scalar], _ ids: [Int]) {
        words.withLock { words in
            if words.count < Self.capacity { words[word] = ids }
        }
    }
}
