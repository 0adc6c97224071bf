import OnebitCPU
import OnebitModel
import Testing

@testable import OnebitEngine

@Suite struct KeyValueBlockTests {
    /// A pool of `count` blocks of four positions.
    func pool(_ count: Int) -> KeyValueBlocks { KeyValueBlocks(count: count, blockPositions: 4) }

    @Test func blocksAreTakenUntilThePoolIsEmptyAndComeBackWhenReleased() {
        let blocks = pool(3)
        let taken = (0..<3).compactMap { _ in blocks.allocate() }
        #expect(taken == [0, 1, 2])
        #expect(blocks.allocate() == nil)
        #expect((blocks.held, blocks.free, blocks.cached) == (3, 0, 0))
        // A block released before anything was written to it holds nothing to reuse.
        blocks.release(1)
        #expect((blocks.held, blocks.free, blocks.cached) == (2, 1, 0))
        #expect(blocks.allocate() == 1)
    }

    @Test func aFullBlockIsSharedByItsChainHashAndCountedPerHolder() {
        let blocks = pool(4)
        let first = blocks.allocate()!
        let hash = blocks.write([1, 2, 3, 4][...], at: 0, in: first, after: KeyValueBlocks.root)
        #expect(hash == KeyValueBlocks.chain(KeyValueBlocks.root, [1, 2, 3, 4][...]))
        #expect(blocks.cached(after: KeyValueBlocks.root, [1, 2, 3, 5][...]) == nil)
        // The same tokens after another prefix are other keys and values.
        #expect(blocks.cached(after: 42, [1, 2, 3, 4][...]) == nil)
        #expect(blocks.cached(after: KeyValueBlocks.root, [1, 2, 3, 4][...]) == first)
        #expect(blocks.holders(of: first) == 2)
        #expect(blocks.held == 1)
        blocks.release(first)
        blocks.release(first)
        // Nobody holds it, but it keeps its tokens for a later prompt.
        #expect((blocks.held, blocks.cached) == (0, 1))
        #expect(blocks.cached(after: KeyValueBlocks.root, [1, 2, 3, 4][...]) == first)
        #expect((blocks.held, blocks.cached) == (1, 0))
    }

    @Test func aPartialBlockIsFoundOnlyWhenWrittenBlocksAreWritten() {
        let blocks = pool(2)
        let block = blocks.allocate()!
        blocks.write([7, 8][...], at: 0, in: block, after: KeyValueBlocks.root)
        #expect(blocks.cached(after: KeyValueBlocks.root, [7, 8][...]) == nil)
        blocks.release(block)
        #expect(blocks.longestPrefix(after: 5, [7, 8, 9][...]) == nil)
        let found = blocks.longestPrefix(after: KeyValueBlocks.root, [7, 9, 9][...])
        #expect(found?.block == block)
        #expect(found?.length == 1)
        // Taken over: it is held, and a later write replaces what followed the shared prefix.
        #expect(blocks.holders(of: block) == 1)
        #expect(blocks.write([9, 9, 9][...], at: 1, in: block, after: KeyValueBlocks.root) != nil)
        #expect(blocks.cached(after: KeyValueBlocks.root, [7, 9, 9, 9][...]) == block)
    }

    @Test func cachedBlocksAreEvictedLeastRecentlyReleasedFirst() {
        let blocks = pool(3)
        var full: [Int] = []
        for first in [10, 20, 30] {
            let block = blocks.allocate()!
            blocks.write([first, 1, 2, 3][...], at: 0, in: block, after: KeyValueBlocks.root)
            full.append(block)
        }
        // Released in the order 1, 0, 2: block 1 is the least recently used.
        for block in [full[1], full[0], full[2]] { blocks.release(block) }
        #expect((blocks.free, blocks.cached, blocks.available) == (0, 3, 3))
        #expect(blocks.allocate() == full[1])
        #expect(blocks.cached(after: KeyValueBlocks.root, [20, 1, 2, 3][...]) == nil)
        // Reusing block 0 makes block 2 the oldest unheld one.
        #expect(blocks.cached(after: KeyValueBlocks.root, [10, 1, 2, 3][...]) == full[0])
        #expect(blocks.allocate() == full[2])
        #expect(blocks.allocate() == nil)
    }
}

@Suite struct PagedCacheTests {
    static let model = SchedulerTests.model

    /// The logits of every position of `tokens` run through `cache` in chunks of `chunk`.
    func logits<B: Backend>(_ transformer: Transformer<B>, _ tokens: [Int], cache: B.KeyValueCache, chunk: Int)
        -> [[Float]]
    {
        var out: [[Float]] = []
        var start = 0
        while start < tokens.count {
            let end = min(start + chunk, tokens.count)
            let logits = transformer.forward(Array(tokens[start..<end]), startingAt: start, cache: cache) { _ in true }
            out += (0..<end - start).map { logits[$0]! }
            start = end
        }
        return out
    }

    @Test func aSequenceOverScatteredBlocksGivesTheLogitsOfOneContiguousBlock() {
        let backend = CPUBackend()
        let transformer = Transformer(backend: backend, config: Self.model.config, weights: Self.model.weights)
        let tokens = (0..<150).map { ($0 * 37 + 11) % Self.model.config.vocabSize }
        let contiguous = backend.keyValueCache(
            in: transformer.makeKeyValuePool(blockPositions: 160, blocks: 1), blocks: [0])
        // 150 positions over blocks of 7: 22 blocks, the last partial, in no order within a larger pool.
        let scattered = backend.keyValueCache(
            in: transformer.makeKeyValuePool(blockPositions: 7, blocks: 41), blocks: (0..<22).map { Int32($0 * 9 % 41) }
        )
        let expected = logits(transformer, tokens, cache: contiguous, chunk: 150)
        #expect(logits(transformer, tokens, cache: scattered, chunk: 150) == expected)
        // Decoding one token at a time reads and writes through the block table too.
        let stepped = backend.keyValueCache(
            in: transformer.makeKeyValuePool(blockPositions: 7, blocks: 40), blocks: (0..<22).map { Int32(21 - $0) })
        let byOne = logits(transformer, tokens, cache: stepped, chunk: 1)
        let byOneContiguous = logits(
            transformer, tokens,
            cache: backend.keyValueCache(in: transformer.makeKeyValuePool(blockPositions: 160, blocks: 1), blocks: [0]),
            chunk: 1)
        #expect(byOne == byOneContiguous)
    }

    @Test func aDecodeStepOfLongSequencesGivesTheLogitsOfEachAlone() {
        // Four threads split a lone sequence's positions; a batch step splits each sequence as it would alone.
        let transformer = Transformer(
            backend: CPUBackend(threadCount: 4), config: Self.model.config, weights: Self.model.weights)
        let prompts = [70, 130, 5, 200].map { length in (0..<length).map { ($0 * 13 + length) % 250 } }
        func prefilled(_ prompt: [Int]) -> CPUKeyValueCache {
            let cache = transformer.makeCache(capacity: 256)
            _ = transformer.forward(prompt, startingAt: 0, cache: cache) { _ in false }
            return cache
        }
        let alone = prompts.map { prompt in
            transformer.forward([7], startingAt: prompt.count, cache: prefilled(prompt)) { _ in true }[0]!
        }
        let caches = prompts.map(prefilled)
        let batched = transformer.forward(
            batch: zip(prompts, caches).map { .init(tokens: [7], start: $0.count, cache: $1, wantsLogits: true) })
        #expect(batched.map { $0! } == alone)
        // The greedy step of the same batch gives each sequence's argmax, and nothing for a slice without logits.
        let greedy = transformer.greedyNext(
            batch: zip(prompts, prompts.map(prefilled)).map {
                .init(tokens: [7], start: $0.count, cache: $1, wantsLogits: true)
            } + [.init(tokens: [3, 4], start: 0, cache: transformer.makeCache(capacity: 8), wantsLogits: false)])
        #expect(greedy == alone.map { Sampler.argmax($0) } + [nil])
    }

    @Test func twoRunningSequencesShareTheBlocksOfTheirCommonPrefix() throws {
        let language = LanguageModel(Self.model)
        let runner = language.makeBatchRunner(contextLength: 128) { _ in 32 }
        let size = runner.blockUsage.blockPositions
        let prefix = (1...(3 * size)).map { $0 }
        let first = prefix + [200, 201, 202]
        let second = prefix + [300, 301]
        let a = try #require(runner.admit(first))
        #expect(a.reused == 0)
        _ = runner.run([SliceRequest(sequence: a.sequence, tokens: first, start: 0, wantsLogits: true)])
        let used = runner.blockUsage.used
        let b = try #require(runner.admit(second))
        // The three full blocks of the prefix are shared; the second prompt takes one block of its own.
        #expect(b.reused == 3 * size)
        #expect(runner.blockUsage.used == used + 1)
        let shared = runner.run([
            SliceRequest(sequence: b.sequence, tokens: Array(second[b.reused...]), start: b.reused, wantsLogits: true),
            SliceRequest(sequence: a.sequence, tokens: [203], start: first.count, wantsLogits: true),
        ])
        let alone = try language.makeSession(capacity: 64).append(second) { $0 == second.count - 1 }
        #expect(shared[0] == alone[second.count - 1].map(StepOutput.logits))
        let firstAlone = try language.makeSession(capacity: 64).append(first + [203]) { $0 == first.count }
        #expect(shared[1] == firstAlone[first.count].map(StepOutput.logits))
        // A greedy slice brings back only its argmax, beside one that wants logits.
        let mixed = runner.run([
            SliceRequest(sequence: b.sequence, tokens: [7], start: second.count, wantsLogits: true, greedy: true),
            SliceRequest(sequence: a.sequence, tokens: [8], start: first.count + 1, wantsLogits: true),
        ])
        let greedyAlone = try language.makeSession(capacity: 64).append(second + [7]) { $0 == second.count }
        let logitsAlone = try language.makeSession(capacity: 64).append(first + [203, 8]) { $0 == first.count + 1 }
        #expect(mixed[0] == .token(Sampler.argmax(try #require(greedyAlone[second.count]))))
        #expect(mixed[1] == logitsAlone[first.count + 1].map(StepOutput.logits))
        runner.release(a.sequence)
        runner.release(b.sequence)
        #expect(runner.blockUsage.used == 0)
        #expect(runner.blockUsage.cached + runner.blockUsage.free == runner.blockUsage.total)
    }

    @Test func aFullBlockCachedWithoutItsHashIsContinuedNotSkipped() throws {
        let language = LanguageModel(Self.model)
        let runner = language.makeBatchRunner(contextLength: 256) { _ in 12 }
        let size = runner.blockUsage.blockPositions
        let prompt = Array(1...(size + 1))
        // Two sequences admitted together with the same prompt write twin blocks; only the first's are found by
        // their hashes.
        let a = try #require(runner.admit(prompt))
        let b = try #require(runner.admit(prompt))
        #expect(b.reused == 0)
        _ = runner.run([
            SliceRequest(sequence: a.sequence, tokens: prompt, start: 0, wantsLogits: true),
            SliceRequest(sequence: b.sequence, tokens: prompt, start: 0, wantsLogits: true),
        ])
        runner.release(a.sequence)
        runner.release(b.sequence)
        // A prompt of nine blocks takes the eight empty ones and evicts the least recently released: the first
        // sequence's full block. The second's twin stays cached, found by no hash.
        let filler = try #require(runner.admit(Array(500..<(500 + 9 * size))))
        runner.release(filler.sequence)
        let next = prompt + [42]
        let again = try #require(runner.admit(next))
        let logits = runner.run([
            SliceRequest(
                sequence: again.sequence, tokens: Array(next[again.reused...]), start: again.reused, wantsLogits: true)
        ])
        let alone = try language.makeSession(capacity: 64).append(next) { $0 == next.count - 1 }
        #expect(logits[0] == alone[next.count - 1].map(StepOutput.logits))
    }

    @Test func sequencesWhoseBlocksCoverTheContextNeedNoHeadroom() throws {
        // One block of the whole context per sequence, as a backend with contiguous caches has.
        let runner = LanguageModel(Self.model).makeBatchRunner(contextLength: 16) { _ in 3 }
        #expect(runner.blockUsage.blockPositions == 16)
        let admitted = (0..<4).compactMap { runner.admit([1, 2, 3, $0 + 10]) }
        #expect(admitted.count == 3)
        #expect(runner.blockUsage.used == 3)
    }

    @Test func aPromptWaitsWhileThePoolHasNoRoomForIt() throws {
        let runner = LanguageModel(Self.model).makeBatchRunner(contextLength: 64) { _ in 4 }
        let size = runner.blockUsage.blockPositions
        let held = try #require(runner.admit(Array(1...(3 * size))))
        // Two blocks are needed, one is left.
        #expect(runner.admit(Array(500..<(500 + 2 * size))) == nil)
        #expect(runner.blockUsage.used == 3)
        // Growing takes the last block; then there is none.
        #expect(runner.reserve(held.sequence, positions: 3 * size + 1))
        #expect(!runner.reserve(held.sequence, positions: 4 * size + 1))
        runner.release(held.sequence)
        #expect(runner.admit(Array(500..<(500 + 2 * size))) != nil)
    }
}
