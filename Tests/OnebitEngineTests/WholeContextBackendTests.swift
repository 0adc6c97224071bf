import OnebitCPU
import OnebitModel
import Testing

@testable import OnebitEngine

/// The CPU backend as a backend that keeps one contiguous cache per sequence, the way the CUDA backend does: its
/// blocks hold a whole context, and steps of several sequences go through the protocol's default attention, which
/// moves each sequence's rows to the front of the buffers. Lets the engine's side of that split run without a GPU.
final class WholeContextCPU: Backend {
    let cpu = CPUBackend()
    /// The most blocks the backend says it has memory for; `nil` for no bound, as on the CPU.
    var blockLimit: Int?

    func prepare(_ matrix: TernaryMatrix) -> CPUTernaryWeights { cpu.prepare(matrix) }
    func prepare(_ vector: [Float]) -> [Float] { cpu.prepare(vector) }
    func prepare(_ matrix: DenseMatrix) -> CPUDenseWeights { cpu.prepare(matrix) }
    func makeActivations(tokens: Int, width: Int) -> CPUActivations {
        cpu.makeActivations(tokens: tokens, width: width)
    }
    func makeQuantizedActivations(tokens: Int, width: Int) -> CPUQuantizedActivations {
        cpu.makeQuantizedActivations(tokens: tokens, width: width)
    }
    func keyValueBlockPositions(contextLength: Int) -> Int { contextLength }
    func keyValueBlockLimit(layers: Int, width: Int, blockPositions: Int) -> Int? { blockLimit }
    func makeKeyValuePool(layers: Int, width: Int, blockPositions: Int, blocks: Int) -> CPUKeyValuePool {
        cpu.makeKeyValuePool(layers: layers, width: width, blockPositions: blockPositions, blocks: blocks)
    }
    func keyValueCache(in pool: CPUKeyValuePool, blocks: [Int32]) -> CPUKeyValueCache {
        precondition(blocks.count == 1, "a sequence holds one whole-context block")
        return cpu.keyValueCache(in: pool, blocks: blocks)
    }
    func embed(_ tokens: [Int], from table: CPUDenseWeights, into x: CPUActivations) {
        cpu.embed(feeding ? fed : tokens, from: table, into: x)
    }
    func rmsNorm(_ x: CPUActivations, weight: [Float], epsilon: Float, tokens: Int, into y: CPUActivations) {
        cpu.rmsNorm(x, weight: weight, epsilon: epsilon, tokens: tokens, into: y)
    }
    func rmsNormQuantize(
        _ x: CPUActivations, weight: [Float], epsilon: Float, tokens: Int, into q: CPUQuantizedActivations
    ) {
        cpu.rmsNormQuantize(x, weight: weight, epsilon: epsilon, tokens: tokens, into: q)
    }
    func multiply(_ w: CPUTernaryWeights, _ q: CPUQuantizedActivations, tokens: Int, into y: CPUActivations) {
        cpu.multiply(w, q, tokens: tokens, into: y)
    }
    func applyRoPE(_ x: CPUActivations, tokens: Int, heads: Int, headDim: Int, positions: [Int32], theta: Float) {
        cpu.applyRoPE(x, tokens: tokens, heads: heads, headDim: headDim, positions: positions, theta: theta)
    }
    func store(
        keys: CPUActivations, values: CPUActivations, tokens: Int, positions: [Int32], layer: Int,
        in cache: CPUKeyValueCache
    ) {
        cpu.store(keys: keys, values: values, tokens: tokens, positions: positions, layer: layer, in: cache)
    }
    func attention(
        queries: CPUActivations, tokens: Int, positions: [Int32], layer: Int, cache: CPUKeyValueCache, heads: Int,
        kvHeads: Int, headDim: Int, into out: CPUActivations
    ) {
        cpu.attention(
            queries: queries, tokens: tokens, positions: positions, layer: layer, cache: cache, heads: heads,
            kvHeads: kvHeads, headDim: headDim, into: out)
    }
    func gatedActivation(_ activation: ModelConfig.Activation, gate: CPUActivations, up: CPUActivations, tokens: Int) {
        cpu.gatedActivation(activation, gate: gate, up: up, tokens: tokens)
    }
    func add(_ delta: CPUActivations, to x: CPUActivations, tokens: Int) { cpu.add(delta, to: x, tokens: tokens) }
    func logits(_ x: CPUActivations, row: Int, head: CPUDenseWeights) -> [Float] { cpu.logits(x, row: row, head: head) }
    func readRows(_ x: CPUActivations, _ rows: Range<Int>) -> [Float] { cpu.readRows(x, rows) }
    func writeRows(_ rows: [Float], count: Int, into x: CPUActivations) { cpu.writeRows(rows, count: count, into: x) }

    /// The rows per segment of every step the forward pass offered for recording and replay.
    var steps: [[Int]] = []

    func step(
        tokens: [Int], positions: [Int32], segments: [(rows: Range<Int>, cache: CPUKeyValueCache)], tokensKept: Bool,
        _ body: () -> Void
    ) {
        steps.append(segments.map(\.rows.count))
        feeding = tokensKept
        body()
        feeding = false
    }

    /// Whether decoding steps keep their tokens here, as the CUDA backend does, instead of handing them back.
    var keepsTokens = false
    /// The tokens kept, `[step][row]`; the last step's, which a step whose tokens are kept embeds; whether the step
    /// running now is one; and the kept tokens as ``queueKeptTokens()`` found them.
    private var kept: [[Int]] = []
    private var fed: [Int] = []
    private var feeding = false
    private var copied: [[Int]]?

    func argmaxKept(_ x: CPUActivations, rows: [Int], head: CPUDenseWeights, step index: Int, of count: Int) -> [Int]? {
        keep(cpu.argmax(x, rows: rows, head: head), step: index, of: count)
    }

    func drawKept(
        _ x: CPUActivations, rows: [Int], head: CPUDenseWeights, draws: [RowDraw], step index: Int, of count: Int
    ) -> [Int]? {
        drawnSteps += 1
        return keep(cpu.draw(x, rows: rows, head: head, draws: draws), step: index, of: count)
    }

    /// How many steps ``drawKept(_:rows:head:draws:step:of:)`` chose the tokens of.
    var drawnSteps = 0

    /// Keeps `tokens` as step `index` of `count` where ``keepsTokens``; else hands them back.
    private func keep(_ tokens: [Int], step index: Int, of count: Int) -> [Int]? {
        guard keepsTokens else { return tokens }
        if index == 0 { kept = Array(repeating: [], count: count) }
        kept[index] = tokens
        fed = tokens
        return nil
    }

    func queueKeptTokens() { copied = kept }

    func keptTokens() -> [[Int]] {
        defer { copied = nil }
        return copied ?? kept
    }
}

@Suite struct WholeContextBackendTests {
    static let model = SchedulerTests.model

    @Test func decodingStepsOfSeveralSequencesAreOfferedForReplayAndGiveTheSameLogits() throws {
        let backend = WholeContextCPU()
        let transformer = Transformer(backend: backend, config: Self.model.config, weights: Self.model.weights)
        let session = LanguageModel(Self.model)
        let prompts = [Array(1...9), [40, 41], Array(60...72)]
        let caches = prompts.map { _ in transformer.makeCache(capacity: 64) }
        // The prompts in one step: several rows per sequence, so the step is not offered.
        let first = transformer.forward(
            batch: zip(prompts, caches).map { .init(tokens: $0, start: 0, cache: $1, wantsLogits: true) })
        #expect(backend.steps.isEmpty)
        // Then one token per sequence, twice: each step offered whole, the final norm in it.
        let next = [[5, 6, 7], [8, 9, 10]]
        var decoded: [[[Float]?]] = []
        for (step, tokens) in next.enumerated() {
            decoded.append(
                transformer.forward(
                    batch: zip(tokens, zip(prompts, caches)).map {
                        .init(tokens: [$0], start: $1.0.count + step, cache: $1.1, wantsLogits: true)
                    }))
        }
        #expect(backend.steps == [[1, 1, 1], [1, 1, 1]])
        for (index, prompt) in prompts.enumerated() {
            let text = prompt + next.map { $0[index] }
            let alone = try session.makeSession(capacity: 64).append(text) { _ in true }
            #expect(first[index] == alone[prompt.count - 1])
            #expect(decoded[0][index] == alone[prompt.count])
            #expect(decoded[1][index] == alone[prompt.count + 1])
        }
    }

    @Test func aSessionTheDeviceHasNoMemoryForFailsBeforeItAllocates() throws {
        let backend = WholeContextCPU()
        let transformer = Transformer(backend: backend, config: Self.model.config, weights: Self.model.weights)
        backend.blockLimit = 0
        let starved = transformer.makeSession(capacity: 64)
        #expect(starved.capacity == 0)
        #expect(throws: SessionError.deviceMemoryFull(capacity: 0, requested: 3)) {
            try starved.append([1, 2, 3]) { _ in true }
        }
        #expect(SessionError.deviceMemoryFull(capacity: 0, requested: 3).description.contains("--device cpu"))
        // Room for the whole capacity: the context window is what ends the sequence.
        backend.blockLimit = 1
        let roomy = transformer.makeSession(capacity: 8)
        #expect(roomy.capacity == 8)
        #expect(throws: SessionError.contextFull(capacity: 8, requested: 9)) {
            try roomy.append(Array(1...9)) { _ in true }
        }
    }

    @Test func sequencesShareTheDevicesBlocksNotItsPositions() {
        let backend = WholeContextCPU()
        let transformer = Transformer(backend: backend, config: Self.model.config, weights: Self.model.weights)
        // Whole-context blocks: three of them hold three sequences of the full capacity, and no fourth.
        backend.blockLimit = 3
        #expect(transformer.cachePositions(upTo: 40, sequences: 3) == 40)
        #expect(transformer.cachePositions(upTo: 40, sequences: 4) == 0)
        #expect(transformer.cachePositions(upTo: 40) == 40)
        backend.blockLimit = nil
        #expect(transformer.cachePositions(upTo: 40, sequences: 1_000) == 40)
    }

    @Test func wholeContextBlocksRunBatchesAndContinueACachedPrefix() throws {
        let transformer = Transformer(
            backend: WholeContextCPU(), config: Self.model.config, weights: Self.model.weights)
        let runner = TransformerRunner(transformer: transformer, contextLength: 64) { _ in 2 }
        let session = LanguageModel(Self.model)
        let first = Array(1...20)
        let second = [40, 41, 42]
        let a = try #require(runner.admit(first))
        let b = try #require(runner.admit(second))
        // Both prompts in one step: the default attention runs them one after another.
        let logits = runner.run([
            SliceRequest(sequence: a.sequence, tokens: first, start: 0, wantsLogits: true),
            SliceRequest(sequence: b.sequence, tokens: second, start: 0, wantsLogits: true),
        ])
        for (prompt, result) in zip([first, second], logits) {
            let alone = try session.makeSession(capacity: 64).append(prompt) { $0 == prompt.count - 1 }
            #expect(result == alone[prompt.count - 1].map(StepOutput.logits))
        }
        #expect(runner.admit([9]) == nil)
        // A released block keeps its tokens; a prompt that starts the same way continues it.
        runner.release(a.sequence)
        let resent = first + [21, 22]
        let c = try #require(runner.admit(resent))
        #expect(c.reused == first.count)
        let continued = runner.run([
            SliceRequest(
                sequence: c.sequence, tokens: Array(resent[c.reused...]), start: c.reused, wantsLogits: true)
        ])
        let alone = try session.makeSession(capacity: 64).append(resent) { $0 == resent.count - 1 }
        #expect(continued[0] == alone[resent.count - 1].map(StepOutput.logits))
    }
}
