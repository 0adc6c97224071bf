import ArgumentParser
import OnebitCPU
import OnebitCUDA
import OnebitEngine
import OnebitModel

/// `onebit selftest`: the checks `swift test` makes of a device, from the shipped binary, for machines with a GPU
/// and no Swift toolchain.
struct SelfTest: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "selftest",
        abstract: "Check a device's kernels and forward pass against the CPU, then measure it.",
        discussion: """
            Six checks, each printed with its numbers: the device's RMSNorm + quantize + ternary product against \
            the CPU's scalar reference on random odd sizes; whole single-token steps of random models with \
            2B-4T's head size and group, with Falcon3-10B's 256-dimension heads and with 18-dimension heads (the \
            fused single-token kernels, rotary embedding and split attention over 300+ positions) against the \
            CPU's scalar backend; a 511-token prompt of the built-in model against the \
            CPU (teacher-forced log-probabilities); every fixture model of --fixtures (teacher-forced \
            log-probabilities and the first greedy tokens) against the recorded transformers outputs and against \
            the CPU backend; batch invariance (seeded greedy requests give the same tokens alone and in one full \
            batch); and `onebit bench` on the 2B-4T shape. The output head (bf16 and the opt-in int8 copy) is \
            checked against the CPU's scalar kernels too, and its top-k and top-p draws against the host's on rows \
            of ties and logits that are not finite. Exits with status 1 when a check fails.
            """)

    @Option(help: "The device to check: cuda, or cpu (its SIMD kernels against the scalar ones).")
    var device: ComputeDevice = .cuda

    @Option(
        help: ArgumentHelp(
            "The fixture models and their recorded reference outputs (reference.json).", valueName: "path"))
    var fixtures = "Tests/Fixtures/models"

    @Flag(help: "Skip the benchmark.")
    var skipBench = false

    func validate() throws {
        if device == .auto { throw ValidationError("--device must be cuda or cpu: the check needs to know which") }
    }

    func run() async throws {
        var failures = 0
        let reference = CPUBackend(instructionSet: .scalar)
        switch device {
        case .cuda:
            failures += try KernelCheck.run(on: CUDABackend(), against: reference)
            failures += try NormCheck.run(on: CUDABackend(), against: reference)
            failures += try FeedForwardCheck.run(on: CUDABackend(), against: reference)
            failures += try AttentionCheck.run(on: CUDABackend(), against: reference)
            failures += try HeadCheck.run(on: CUDABackend(), against: reference, label: "bf16")
            failures += try HeadCheck.run(
                on: CUDABackend(int8Head: true), against: CPUBackend(instructionSet: .scalar, int8Head: true),
                label: "int8", exactRows: true)
            failures += try RankingCheck.run(on: CUDABackend())
            failures += try DeviceMemoryCheck.run(on: CUDABackend())
        case .cpu, .auto:
            failures += try KernelCheck.run(on: CPUBackend(), against: reference)
            failures += NormCheck.run(on: CPUBackend(), against: reference)
            failures += FeedForwardCheck.run(on: CPUBackend(), against: reference)
            failures += AttentionCheck.run(on: CPUBackend(), against: reference)
            failures += HeadCheck.run(on: CPUBackend(), against: reference, label: "bf16")
            failures += HeadCheck.run(
                on: CPUBackend(int8Head: true), against: CPUBackend(instructionSet: .scalar, int8Head: true),
                label: "int8", exactRows: true)
            failures += RankingCheck.run(on: CPUBackend())
        }
        switch device {
        case .cuda:
            for config in DecodeStepCheck.configs {
                failures += try DecodeStepCheck.run(config, on: CUDABackend(), against: reference)
            }
            failures += BatchedStepCheck.run(
                on: [
                    ("positions split over clusters", try CUDABackend()),
                    ("one block a kv head", try CUDABackend(splitsAttention: false)),
                ], against: reference)
        case .cpu, .auto:
            for config in DecodeStepCheck.configs {
                failures += try DecodeStepCheck.run(config, on: CPUBackend(), against: reference)
            }
            failures += BatchedStepCheck.run(on: [("", CPUBackend())], against: reference)
        }
        failures += try PromptCheck.run(device: device)
        failures += try FixtureCheck(root: fixtures, device: device).run()
        failures += try await BatchInvarianceCheck(device: device).run()
        if !skipBench {
            let bench = try Bench.parse(["--device", device.rawValue, "-p", "512", "-n", "128"])
            try bench.run()
        }
        print(failures == 0 ? "selftest: PASS" : "selftest: FAIL (\(failures) failed)")
        if failures > 0 { throw ExitCode.failure }
    }
}

/// The random values the kernel checks feed a backend and its reference.
extension SplitMix64 {
    /// Ternary weights, -1, 0 or 1.
    mutating func ternaryValues(count: Int) -> [Int8] {
        (0..<count).map { _ in Int8(Int(next() % 3) - 1) }
    }

    /// Activations in [-4, 4] in steps of 1/250.
    mutating func checkInputs(count: Int) -> [Float] {
        (0..<count).map { _ in Float(Int(next() % 2001) - 1000) / 250 }
    }

    /// Queries, keys and values for the attention checks: ``checkInputs(count:)`` quartered, so the softmax weighs
    /// many keys instead of picking one.
    mutating func attentionInputs(count: Int) -> [Float] {
        checkInputs(count: count).map { $0 / 4 }
    }
}

/// `rows` (`count` rows of `width`) in activations of `backend`.
private func activations<B: Backend>(_ backend: B, holding rows: [Float], count: Int, width: Int) -> B.Activations {
    let x = backend.makeActivations(tokens: count, width: width)
    backend.writeRows(rows, count: count, into: x)
    return x
}

/// RMSNorm + int8 quantization + ternary product on a backend against the CPU's scalar kernels.
enum KernelCheck {
    /// Shapes with in-dimensions that are multiples of 4 but not of 64 or 256, single rows and tokens, and
    /// batches that leave partial tiles; per-block scales; one whose norm takes 1,024 threads, and rows too wide for
    /// it (8,188, 23,040 and 24,572), whose norm holds them in shared memory, a cluster of blocks a row for steps of
    /// few tokens (on sm_90) and a block a row for more (9,004 at 70 tokens). Single tokens take
    /// rows of up to 64 chunks 16 lanes a row, longer rows and per-block scales a warp a row, and rows wider
    /// than 448 chunks another kernel (30,004 columns); one token's 80,003 rows are more tiles of 16 than a GPU
    /// holds at once, so on sm_90 each block streams several; 2 to 8 tokens with one scale a tensor take tiles of 16
    /// rows on the tensor cores. On Hopper, 70,000 rows of 64 tokens once took sums from the warpgroup kernel that were
    /// wrong from run to run.
    static let cases: [(rows: Int, columns: Int, tokens: Int, block: Int?)] = [
        (1, 4, 1, nil), (7, 100, 1, nil), (33, 260, 3, nil), (130, 2564, 1, nil), (257, 6916, 8, nil),
        (64, 2560, 17, nil), (96, 3200, 1, nil), (300, 2564, 100, nil), (130, 6916, 77, nil), (40, 512, 2, 128),
        (33, 8188, 9, nil), (35, 6916, 1, nil), (40, 512, 1, 128), (3, 30004, 1, nil), (5, 4, 2, nil),
        (19, 100, 5, nil), (131, 2564, 7, nil), (70_000, 128, 64, nil), (9, 23_040, 1, nil), (4, 24_572, 3, nil),
        (5, 9_004, 70, nil), (80_003, 132, 1, nil),
    ]

    /// Prints one line per case; returns the number that failed.
    static func run<Device: Backend, Reference: Backend>(on device: Device, against reference: Reference) throws -> Int
    {
        var rng = SplitMix64(seed: 0x5E1F_7E57)
        var failures = 0
        for shape in cases {
            let values = rng.ternaryValues(count: shape.rows * shape.columns)
            var scale = TernaryScale.perTensor(0.02)
            if let block = shape.block {
                scale = .perBlock(blockSize: block, [Float](repeating: 0.01, count: shape.rows * shape.columns / block))
            }
            let matrix = TernaryMatrix(rows: shape.rows, columns: shape.columns, values: values, scale: scale)
            let input = rng.checkInputs(count: shape.tokens * shape.columns)
            let got = product(device, matrix, input, tokens: shape.tokens)
            let expected = product(reference, matrix, input, tokens: shape.tokens)
            failures += reportDifference(
                "kernels  ",
                "\(shape.rows)x\(shape.columns), \(shape.tokens) token(s)"
                    + "\(shape.block.map { ", blocks of \($0)" } ?? "")", got: got, expected: expected)
        }
        return failures
    }

    private static func product<B: Backend>(_ backend: B, _ matrix: TernaryMatrix, _ input: [Float], tokens: Int)
        -> [Float]
    {
        let weights = backend.prepare(matrix)
        let ones = backend.prepare([Float](repeating: 1, count: matrix.columns))
        let x = activations(backend, holding: input, count: tokens, width: matrix.columns)
        let q = backend.makeQuantizedActivations(tokens: tokens, width: matrix.columns)
        backend.rmsNormQuantize(x, weight: ones, epsilon: 1e-5, tokens: tokens, into: q)
        let y = backend.makeActivations(tokens: tokens, width: matrix.rows)
        backend.multiply(weights, q, tokens: tokens, into: y)
        return backend.readRows(y, 0..<tokens)
    }
}

/// RMSNorm alone, the final norm before the head, on a backend against the CPU's scalar kernel: rows that fit in
/// registers (on the GPU up to 16 values of each of 256 threads: 4,096) and rows wider than that, read in strided
/// passes instead, with random weights.
enum NormCheck {
    static let cases: [(width: Int, tokens: Int)] = [
        (4, 1), (100, 3), (2_560, 1), (3_072, 64), (4_096, 2), (4_097, 5), (9_004, 1),
    ]

    /// Prints one line per case; returns the number that failed.
    static func run<Device: Backend, Reference: Backend>(on device: Device, against reference: Reference) -> Int {
        var rng = SplitMix64(seed: 0x0A0B_0C0D)
        var failures = 0
        for shape in cases {
            let input = rng.checkInputs(count: shape.tokens * shape.width)
            let weight = rng.checkInputs(count: shape.width)
            let got = normalized(device, input, weight: weight, tokens: shape.tokens)
            let expected = normalized(reference, input, weight: weight, tokens: shape.tokens)
            failures += reportDifference(
                "norm     ", "\(shape.width) wide, \(shape.tokens) token(s)", got: got, expected: expected)
        }
        return failures
    }

    private static func normalized<B: Backend>(_ backend: B, _ input: [Float], weight: [Float], tokens: Int)
        -> [Float]
    {
        let x = activations(backend, holding: input, count: tokens, width: weight.count)
        let y = backend.makeActivations(tokens: tokens, width: weight.count)
        backend.rmsNorm(x, weight: backend.prepare(weight), epsilon: 1e-5, tokens: tokens, into: y)
        return backend.readRows(y, 0..<tokens)
    }
}

/// A feed-forward block (norm, gate and up in one product, relu², norm, down, residual add) on a backend against the
/// CPU's scalar kernels: one token and four (the tile products, which fold in the relu² and the residual add), and
/// more (the tensor-core products, whose gate and up rows are few enough that the product splits its columns and the
/// shares are added and rescaled before the relu² norm). The model checks never reach that path: their rows are too
/// narrow to split. In the last, eight tokens' gate and up tiles take more shared memory than a tile block may have,
/// and its down tiles are more than a GPU of up to 132 multiprocessors holds at once, so those products go to the
/// tensor-core kernels after all and the relu² and the residual add they were to fold in follow as kernels of their
/// own. Falcon3-10B's feed-forward (SiLU) and a hidden size of 9,004 have rows too wide for the norm that holds a row in
/// registers: the norm that holds it in shared memory takes them, and the gated activation and the residual add
/// with them. Falcon3-10B's gate and up product of one token is more tiles than a GPU holds at once: on sm_90 each
/// block streams several. Each block ends with the norm of its output and another product, so that the add is checked too.
enum FeedForwardCheck {
    static let cases: [(hidden: Int, intermediate: Int, tokens: Int, activation: ModelConfig.Activation)] = [
        (2_560, 1_000, 1, .relu2), (2_560, 1_000, 4, .relu2), (2_560, 1_000, 9, .relu2), (2_560, 1_000, 40, .relu2),
        (6_000, 6_400, 8, .relu2), (3_072, 23_040, 1, .silu), (1_000, 23_040, 20, .silu), (9_004, 1_000, 5, .relu2),
    ]

    /// Prints one line per case; returns the number that failed.
    static func run<Device: Backend, Reference: Backend>(on device: Device, against reference: Reference) -> Int {
        var rng = SplitMix64(seed: 0xFEED_F0)
        func matrix(_ rows: Int, _ columns: Int) -> TernaryMatrix {
            TernaryMatrix(
                rows: rows, columns: columns, values: rng.ternaryValues(count: rows * columns), scale: .perTensor(0.02))
        }
        var failures = 0
        for shape in cases {
            let (hidden, intermediate) = (shape.hidden, shape.intermediate)
            let gate = matrix(intermediate, hidden)
            let up = matrix(intermediate, hidden)
            let down = matrix(hidden, intermediate)
            let input = rng.checkInputs(count: shape.tokens * hidden)
            let got = block(device, gate, up, down, input, tokens: shape.tokens, activation: shape.activation)
            let expected = block(reference, gate, up, down, input, tokens: shape.tokens, activation: shape.activation)
            failures += reportDifference(
                "ffn      ",
                "\(hidden) -> \(intermediate) -> \(hidden), \(shape.activation), \(shape.tokens) token(s)",
                got: got, expected: expected)
        }
        return failures
    }

    private static func block<B: Backend>(
        _ backend: B, _ gate: TernaryMatrix, _ up: TernaryMatrix, _ down: TernaryMatrix, _ input: [Float], tokens: Int,
        activation: ModelConfig.Activation
    ) -> [Float] {
        let (hidden, intermediate) = (gate.columns, gate.rows)
        let (gateWeights, upWeights, downWeights) = (backend.prepare(gate), backend.prepare(up), backend.prepare(down))
        let ones = backend.prepare([Float](repeating: 1, count: hidden))
        let twos = backend.prepare([Float](repeating: 2, count: intermediate))
        let x = activations(backend, holding: input, count: tokens, width: hidden)
        let q = backend.makeQuantizedActivations(tokens: tokens, width: hidden)
        backend.rmsNormQuantize(x, weight: ones, epsilon: 1e-5, tokens: tokens, into: q)
        let gated = backend.makeActivations(tokens: tokens, width: intermediate)
        let upped = backend.makeActivations(tokens: tokens, width: intermediate)
        backend.multiply([gateWeights, upWeights], q, tokens: tokens, into: [gated, upped])
        backend.gatedActivation(activation, gate: gated, up: upped, tokens: tokens)
        let q2 = backend.makeQuantizedActivations(tokens: tokens, width: intermediate)
        backend.rmsNormQuantize(gated, weight: twos, epsilon: 1e-5, tokens: tokens, into: q2)
        let y = backend.makeActivations(tokens: tokens, width: hidden)
        backend.multiply(downWeights, q2, tokens: tokens, into: y)
        backend.add(y, to: x, tokens: tokens)
        backend.rmsNormQuantize(x, weight: ones, epsilon: 1e-5, tokens: tokens, into: q)
        let next = backend.makeActivations(tokens: tokens, width: intermediate)
        backend.multiply(gateWeights, q, tokens: tokens, into: next)
        return backend.readRows(x, 0..<tokens) + backend.readRows(next, 0..<tokens)
    }
}

/// Attention of a prompt chunk over a paged cache on a backend against the CPU's scalar kernels: chunks with and
/// without positions cached before them, 2B-4T's heads, groups of 1 to 16 with head sizes of 8 to 64 (groups that do
/// not divide a warp's 16 rows among them), and a chunk after 1,000 cached positions (more cache blocks than a warp
/// reads its table entries for at once), and Falcon3-10B's heads of 256 and heads of 200, all of which the
/// tensor-core kernels take on a GPU that has them; then a chunk that sees too few keys for them, and head sizes of 18
/// and 256, which go to the CUDA-core kernels. The cache's blocks are out of order and the layer is not the first.
enum AttentionCheck {
    static let cases: [(heads: Int, kvHeads: Int, headDim: Int, cached: Int, tokens: Int)] = [
        (20, 5, 128, 0, 512), (12, 4, 64, 37, 129), (6, 2, 40, 300, 17), (16, 1, 8, 5, 100), (9, 3, 24, 90, 33),
        (10, 2, 32, 40, 77), (20, 5, 128, 1_000, 61), (12, 4, 256, 0, 300), (5, 1, 200, 250, 70), (8, 2, 64, 0, 40),
        (4, 2, 18, 0, 50), (3, 1, 256, 10, 40),
    ]

    /// Prints one line per case; returns the number that failed.
    static func run<Device: Backend, Reference: Backend>(on device: Device, against reference: Reference) -> Int {
        var rng = SplitMix64(seed: 0xA77E_4710)
        var failures = 0
        for shape in cases {
            let width = shape.kvHeads * shape.headDim
            let positions = shape.cached + shape.tokens
            let keys = rng.attentionInputs(count: positions * width)
            let values = rng.attentionInputs(count: positions * width)
            let queries = rng.attentionInputs(count: shape.tokens * shape.heads * shape.headDim)
            func attend<B: Backend>(_ backend: B) -> [Float] {
                let blockPositions = backend.keyValueBlockPositions(contextLength: positions)
                let blocks = (positions + blockPositions - 1) / blockPositions
                let pool = backend.makeKeyValuePool(
                    layers: 2, width: width, blockPositions: blockPositions, blocks: blocks)
                var order = SplitMix64(seed: 0x0B10C5)
                let cache = backend.keyValueCache(in: pool, blocks: (0..<Int32(blocks)).shuffled(using: &order))
                backend.store(
                    keys: activations(backend, holding: keys, count: positions, width: width),
                    values: activations(backend, holding: values, count: positions, width: width), tokens: positions,
                    positions: (0..<Int32(positions)).map { $0 }, layer: 1,
                    in: cache)
                let q = activations(backend, holding: queries, count: shape.tokens, width: shape.heads * shape.headDim)
                let out = backend.makeActivations(tokens: shape.tokens, width: shape.heads * shape.headDim)
                backend.attention(
                    queries: q, tokens: shape.tokens, positions: (shape.cached..<positions).map { Int32($0) },
                    layer: 1, cache: cache, heads: shape.heads, kvHeads: shape.kvHeads, headDim: shape.headDim,
                    into: out)
                return backend.readRows(out, 0..<shape.tokens)
            }
            failures += reportDifference(
                "prefill  ",
                "\(shape.tokens) tokens after \(shape.cached), \(shape.heads) heads of \(shape.headDim) over "
                    + "\(shape.kvHeads)", got: attend(device), expected: attend(reference))
        }
        return failures + runMixedStep(on: device, against: reference)
    }

    /// The sequences of ``runMixedStep(on:against:)``: positions cached before the step, and rows in it. Prompt
    /// chunks that take the tensor-core kernel (one after more cache blocks than a warp reads table entries for at
    /// once) and the CUDA-core one, between single rows that take the plain kernel.
    static let mixedStep: [(cached: Int, rows: Int)] = [(100, 40), (300, 1), (0, 20), (50, 1), (600, 33), (7, 1)]

    /// One step of several sequences, prompt chunks and single rows, stored and attended together
    /// (``Backend/attend(keys:values:queries:positions:segments:layer:heads:kvHeads:headDim:into:)``, 8 heads of 128
    /// over 2); prints one line, returns 1 when it failed.
    static func runMixedStep<Device: Backend, Reference: Backend>(on device: Device, against reference: Reference)
        -> Int
    {
        let (heads, kvHeads, headDim) = (8, 2, 128)
        var rng = SplitMix64(seed: 0x5EC5)
        let width = kvHeads * headDim
        let cachedKeys = mixedStep.map { rng.attentionInputs(count: $0.cached * width) }
        let cachedValues = mixedStep.map { rng.attentionInputs(count: $0.cached * width) }
        let rows = mixedStep.map(\.rows).reduce(0, +)
        let keys = rng.attentionInputs(count: rows * width)
        let values = rng.attentionInputs(count: rows * width)
        let queries = rng.attentionInputs(count: rows * heads * headDim)
        var ranges: [Range<Int>] = []
        var positions: [Int32] = []
        for sequence in mixedStep {
            let first = ranges.last?.upperBound ?? 0
            ranges.append(first..<first + sequence.rows)
            positions += (sequence.cached..<sequence.cached + sequence.rows).map { Int32($0) }
        }
        func attend<B: Backend>(_ backend: B) -> [Float] {
            let blockPositions = backend.keyValueBlockPositions(contextLength: 1_024)
            let counts = mixedStep.map { ($0.cached + $0.rows + blockPositions - 1) / blockPositions }
            let pool = backend.makeKeyValuePool(
                layers: 2, width: width, blockPositions: blockPositions, blocks: counts.reduce(0, +))
            var order = SplitMix64(seed: 0x0B10C5)
            var free = (0..<Int32(counts.reduce(0, +))).shuffled(using: &order)
            var segments: [(rows: Range<Int>, cache: B.KeyValueCache)] = []
            for (index, sequence) in mixedStep.enumerated() {
                let cache = backend.keyValueCache(in: pool, blocks: Array(free.prefix(counts[index])))
                free.removeFirst(counts[index])
                if sequence.cached > 0 {
                    backend.store(
                        keys: activations(backend, holding: cachedKeys[index], count: sequence.cached, width: width),
                        values: activations(
                            backend, holding: cachedValues[index], count: sequence.cached, width: width),
                        tokens: sequence.cached,
                        positions: (0..<Int32(sequence.cached)).map { $0 }, layer: 1, in: cache)
                }
                segments.append((ranges[index], cache))
            }
            let out = backend.makeActivations(tokens: rows, width: heads * headDim)
            backend.attend(
                keys: activations(backend, holding: keys, count: rows, width: width),
                values: activations(backend, holding: values, count: rows, width: width),
                queries: activations(backend, holding: queries, count: rows, width: heads * headDim),
                positions: positions, segments: segments, layer: 1, heads: heads,
                kvHeads: kvHeads, headDim: headDim, into: out)
            return backend.readRows(out, 0..<rows)
        }
        return reportDifference(
            "prefill  ", "one step of \(mixedStep.count) sequences, prompt chunks and single rows", got: attend(device),
            expected: attend(reference))
    }
}

/// The output head (bf16, or its int8 copy) on a backend against the CPU's scalar kernels, one token and a batch.
enum HeadCheck {
    /// Prints one line per case; returns the number that failed. With `exactRows` (the int8 head, whose rows are
    /// exact integer dots rescaled alike) each row of a batch must also have the very logits it gets alone.
    static func run<Device: Backend, Reference: Backend>(
        on device: Device, against reference: Reference, label: String, exactRows: Bool = false
    ) -> Int {
        var rng = SplitMix64(seed: 0x4EAD)
        var failures = 0
        // The batched shapes take the tensor cores on a GPU where the columns are a multiple of 32 (on Hopper the
        // warpgroup kernel where they are a multiple of 64: 777 rows end inside its last block, 70 tokens take two
        // token tiles); the widest vocabulary has more groups than the GPU's ranking sorts at once.
        for (rows, columns, tokens) in [
            (1_000, 2_560, 1), (333, 100, 5), (1_000, 2_560, 9), (333, 96, 70), (777, 192, 70), (300_000, 32, 3),
        ] {
            let head = DenseMatrix(
                rows: rows, columns: columns, storage: .bfloat16(rng.smallBFloat16(count: rows * columns)))
            let input = rng.checkInputs(count: tokens * columns)
            // The head goes up to the device once; every check below reads the same copy.
            let (weights, x) = upload(device, head, input, tokens: tokens)
            let all = Array(0..<tokens)
            let got = device.logits(x, rows: all, head: weights).flatMap { $0 }
            let expected = logits(reference, head, input, tokens: tokens)
            let worst = largestRelativeDifference(got, expected)
            // The device's own argmax of every row must be the argmax of the logits it returns.
            let indices = device.argmax(x, rows: all, head: weights)
            let sameArgmax = indices == (0..<tokens).map { Sampler.argmax(Array(got[$0 * rows..<($0 + 1) * rows])) }
            // And the tokens it draws must be those the host's sampler draws from those logits.
            // Every fifth row takes its argmax (temperature 0), as a greedy sequence does in a step of draws; of
            // every seven rows one draws among its 40 largest logits with top-p 0.9, and one from its top-p 0.8
            // nucleus.
            let draws = (0..<tokens).map { token -> RowDraw in
                let temperature: Float = token % 5 == 4 ? 0 : token % 2 == 0 ? 0.7 : 1.3
                let minP: Float = token % 3 == 0 ? 0 : 0.05
                let topK = token % 7 == 6 ? 40 : 0
                return RowDraw(
                    temperature: temperature, minP: minP, topK: topK, topP: topK > 0 ? 0.9 : token % 7 == 2 ? 0.8 : 1,
                    unit: Double(rng.next() >> 11) * 0x1.0p-53)
            }
            let hostDraws = (0..<tokens).map { token -> Int in
                Sampler.token(drawing: draws[token], from: Array(got[token * rows..<(token + 1) * rows]))
            }
            let differing = zip(device.draw(x, rows: all, head: weights, draws: draws), hostDraws).count { $0 != $1 }
            let sameDraws = differing == 0
            let sameAlone =
                !exactRows
                || (0..<tokens).allSatisfy { token in
                    device.logits(x, row: token, head: weights) == Array(got[token * rows..<(token + 1) * rows])
                }
            let ok = worst <= 1e-4 && sameArgmax && sameDraws && sameAlone
            if !ok { failures += 1 }
            print(
                "head     \(ok ? "PASS" : "FAIL")  \(label) \(rows)x\(columns), \(tokens) token(s): largest relative "
                    + "difference \(worst); argmax per row \(sameArgmax ? "agrees" : "differs"); draws "
                    + "\(sameDraws ? "agree" : "differ in \(differing) of \(tokens) rows")"
                    + "\(sameAlone ? "" : "; a row's logits differ from what it gets alone")")
        }
        return failures
    }

    private static func logits<B: Backend>(_ backend: B, _ head: DenseMatrix, _ input: [Float], tokens: Int)
        -> [Float]
    {
        let (weights, x) = upload(backend, head, input, tokens: tokens)
        return backend.logits(x, rows: Array(0..<tokens), head: weights).flatMap { $0 }
    }

    /// The head and `tokens` rows of `input` on `backend`.
    private static func upload<B: Backend>(_ backend: B, _ head: DenseMatrix, _ input: [Float], tokens: Int)
        -> (B.DenseWeights, B.Activations)
    {
        let x = activations(backend, holding: input, count: tokens, width: head.columns)
        return (backend.prepare(head), x)
    }
}

/// The GPU memory `onebit bench` reports: a buffer the backend makes counts while it lives, in the peak too, and no
/// longer once it is freed.
enum DeviceMemoryCheck {
    /// Prints one line; returns 1 if the count is wrong.
    static func run(on backend: CUDABackend) -> Int {
        let before = backend.deviceMemory.now
        backend.resetPeakDeviceMemory()
        let bytes = 7 * 1_001 * 4
        let held = withExtendedLifetime(backend.makeActivations(tokens: 7, width: 1_001)) {
            backend.deviceMemory.now - before
        }
        let (after, peak) = backend.deviceMemory
        let ok = held == bytes && after == before && peak == before + bytes
        print(
            "memory   \(ok ? "PASS" : "FAIL")  a buffer of \(bytes) bytes counted \(held) while it lived, "
                + "\(after - before) after it was freed, peak \(peak - before) above the start")
        return ok ? 0 : 1
    }
}

/// The device's top-k and top-p draws (its ranking of the largest logits, and its nuclei) against the host's on rows
/// made to be hard for it: long runs of equal logits, every logit equal, the largest at the end of the row, logits
/// that are not finite, fewer finite logits than the top-k, and none.
enum RankingCheck {
    /// Each row's logit of token `token` before it is cut to bf16, from which a head is made whose only nonzero column
    /// gives it exactly.
    static let patterns: [(name: String, logit: @Sendable (Int) -> Float)] = [
        ("rising, in runs of ties", { Float($0) * 0.01 }),
        ("all equal", { _ in 1 }),
        (
            "falling, with infinities and NaN",
            { token in
                token % 3 == 0 ? -.infinity : token % 11 == 0 ? .nan : token % 13 == 0 ? .infinity : Float(-token)
            }
        ),
        ("five finite", { token in token % 30_000 == 7 ? Float(token % 5) : -.infinity }),
        ("none finite", { _ in -.infinity }),
    ]

    /// Prints one line per pattern; returns the number that failed. The rows have more groups of 32 tokens than the
    /// 4,096 keys `rank_thresholds` keeps in shared memory, so its select reads them from memory each round.
    static func run<Device: Backend>(on device: Device) -> Int {
        let (vocabulary, columns) = (140_001, 32)
        var rng = SplitMix64(seed: 0x4A4B)
        var failures = 0
        // Every row's input picks the head's first column.
        let tokens = 5
        let x = device.makeActivations(tokens: tokens, width: columns)
        var input = [Float](repeating: 0, count: tokens * columns)
        for token in 0..<tokens { input[token * columns] = 1 }
        device.writeRows(input, count: tokens, into: x)
        let all = Array(0..<tokens)
        for pattern in patterns {
            var weights = [UInt16](repeating: 0, count: vocabulary * columns)
            for token in 0..<vocabulary {
                weights[token * columns] = UInt16(truncatingIfNeeded: pattern.logit(token).bitPattern >> 16)
            }
            let head = device.prepare(
                DenseMatrix(rows: vocabulary, columns: columns, storage: .bfloat16(weights)))
            let rows = device.logits(x, rows: all, head: head)
            // Top-k with and without top-p, and top-p alone (its nucleus a few tokens, or half the row).
            let draws = all.map { token in
                RowDraw(
                    temperature: 0.8, minP: 0, topK: [40, 256, 1, 0, 0][token], topP: [0.9, 1, 1, 0.5, 0.95][token],
                    unit: Double(rng.next() >> 11) * 0x1.0p-53)
            }
            let hostDraws = all.map { Sampler.token(drawing: draws[$0], from: rows[$0]) }
            let ok = device.draw(x, rows: all, head: head, draws: draws) == hostDraws
            if !ok { failures += 1 }
            print(
                "ranking  \(ok ? "PASS" : "FAIL")  \(pattern.name), \(vocabulary) tokens: top-k and top-p draws "
                    + "\(ok ? "agree" : "differ")")
        }
        return failures
    }
}

/// A whole 511-token prompt of the built-in model on a device against the CPU, teacher-forced: one prompt chunk of
/// many 64-token tiles, the launches a prompt takes rather than a decoding step's (the other checks' prompts are
/// short, or only their decoding steps are compared).
enum PromptCheck {
    /// Prints one line; returns 1 when the mean |Δ logprob| of the prompt's tokens reaches 0.05 (the parity bound).
    static func run(device: ComputeDevice) throws -> Int {
        let model = try EmbeddedModel.load()
        var rng = SplitMix64(seed: 0x9120)
        let prompt = (0..<511).map { _ in Int(rng.next() % UInt64(model.config.vocabSize)) }
        let got = try LanguageModel(model, device: device) { _ in }.score(prompt)
        let expected = try LanguageModel(model).score(prompt)
        let deltas = zip(got, expected).compactMap { a, b in a.flatMap { a in b.map { abs(a - $0) } } }
        let mean = deltas.reduce(0, +) / Double(max(deltas.count, 1))
        let ok = mean < 0.05 && deltas.count == prompt.count - 1
        print(
            "prompt   \(ok ? "PASS" : "FAIL")  \(prompt.count)-token prompt of the built-in model against the CPU: "
                + "mean |Δ logprob| \(mean), largest \(deltas.max() ?? 0)")
        return ok ? 0 : 1
    }
}

/// Whole single-token steps on a backend against the CPU's scalar backend, on random models whose heads take each
/// of single-token attention's kernels (the fixture models' heads take only one): a 300-token prompt, then
/// teacher-forced steps whose logits must agree, then greedy steps whose tokens must be the same.
enum DecodeStepCheck {
    /// The models: 2B-4T's heads (128 dimensions, groups of four) in a small stack, Falcon3-10B-1.58bit's (256
    /// dimensions, which single-token attention takes in a kernel of its own), and heads of 18 dimensions, not a
    /// multiple of 4, which it leaves to the plain attention kernel.
    static let configs = [
        ModelConfig(
            architecture: "decode-step-check", hiddenSize: 512, layerCount: 3, headCount: 4, kvHeadCount: 1,
            headDim: 128, intermediateSize: 1_408, vocabSize: 1_000, contextLength: 512, ropeTheta: 500_000,
            rmsNormEpsilon: 1e-5, activation: .relu2, tiedEmbeddings: true),
        ModelConfig(
            architecture: "decode-step-check-wide", hiddenSize: 768, layerCount: 2, headCount: 3, kvHeadCount: 1,
            headDim: 256, intermediateSize: 1_408, vocabSize: 1_000, contextLength: 512, ropeTheta: 1_000_042,
            rmsNormEpsilon: 1e-6, activation: .silu, tiedEmbeddings: false),
        ModelConfig(
            architecture: "decode-step-check-odd", hiddenSize: 72, layerCount: 2, headCount: 4, kvHeadCount: 2,
            headDim: 18, intermediateSize: 248, vocabSize: 1_000, contextLength: 512, ropeTheta: 10_000,
            rmsNormEpsilon: 1e-5, activation: .relu2, tiedEmbeddings: true),
    ]

    /// Prints one line; returns 1 when it failed.
    static func run<Device: Backend, Reference: Backend>(
        _ config: ModelConfig, on device: Device, against reference: Reference
    ) throws -> Int {
        let weights = SyntheticShape(config: config).makeWeights()
        var rng = SplitMix64(seed: 0xDEC0DE)
        let prompt = (0..<300).map { _ in Int(rng.next() % UInt64(config.vocabSize)) }
        let forced = (0..<24).map { _ in Int(rng.next() % UInt64(config.vocabSize)) }
        func run<B: Backend>(_ backend: B) throws -> (logits: [Float], greedy: [Int]) {
            let session = Transformer(backend: backend, config: config, weights: weights).makeSession(capacity: 400)
            _ = try session.append(prompt) { _ in false }
            var logits: [Float] = []
            for token in forced { logits += try session.append([token]) { _ in true }[0]! }
            var greedy = [forced.last!]
            for _ in 0..<16 { greedy.append(try session.appendGreedy(greedy.last!)) }
            return (logits, greedy)
        }
        return reportAgreement(
            "step     ", "\(forced.count) steps after a \(prompt.count)-token prompt, heads of \(config.headDim)",
            got: try run(device),
            expected: try run(reference), greedySteps: 16)
    }
}

/// Steps of several sequences at once on a backend against the CPU's scalar backend, on a model of 2B-4T's heads
/// with two kv heads: prompts of different lengths, then batched steps of one token per sequence (the steps a
/// backend may record and replay), whose logits must agree, then batched greedy steps whose tokens must be the same,
/// the last four through ``Transformer/decodeSteps(batch:count:draws:queueingNext:drawing:)``. Then, on the device
/// alone, eight steps whose tokens are drawn at a temperature (a third of the sequences greedy, a third with min-p, a
/// sixth among their top-k),
/// one step at a time and again as two queued runs over the same positions, the second's first step queued ahead: the
/// tokens must be the same.
enum BatchedStepCheck {
    /// Prompt lengths of the sequences: more positions than one attention run, and fewer; more sequences than the
    /// 8 tokens a step takes without the tensor cores.
    static let promptLengths = [300, 7, 64, 129, 33, 1, 90, 31, 250, 12, 65, 5]

    /// The model: ``DecodeStepCheck``'s with two groups of four query heads, so that a step's attention has blocks of
    /// more than one kv head per sequence.
    static let config = ModelConfig(
        architecture: "batched-step-check", hiddenSize: 1_024, layerCount: 3, headCount: 8, kvHeadCount: 2,
        headDim: 128, intermediateSize: 1_408, vocabSize: 1_000, contextLength: 512, ropeTheta: 500_000,
        rmsNormEpsilon: 1e-5, activation: .relu2, tiedEmbeddings: true)

    /// Prints one line for each of `devices` (its label says how it was set up); returns how many failed.
    static func run<Device: Backend, Reference: Backend>(
        on devices: [(label: String, backend: Device)], against reference: Reference
    ) -> Int {
        let weights = SyntheticShape(config: config).makeWeights()
        var rng = SplitMix64(seed: 0xBA7C4)
        let prompts = promptLengths.map { count in (0..<count).map { _ in Int(rng.next() % UInt64(config.vocabSize)) } }
        let forced = (0..<6).map { _ in prompts.map { _ in Int(rng.next() % UInt64(config.vocabSize)) } }
        func run<B: Backend>(_ backend: B) -> (
            logits: [Float], greedy: [[Int]], drawn: (stepwise: [[Int]], queued: [[Int]])
        ) {
            let transformer = Transformer(backend: backend, config: config, weights: weights)
            let caches = prompts.map { _ in transformer.makeCache(capacity: 400) }
            var lengths = prompts.map(\.count)
            for (prompt, cache) in zip(prompts, caches) {
                _ = transformer.forward(prompt, startingAt: 0, cache: cache) { _ in false }
            }
            func slices(_ tokens: [Int]) -> [Transformer<B>.Slice] {
                zip(tokens, zip(lengths, caches)).map {
                    .init(tokens: [$0], start: $1.0, cache: $1.1, wantsLogits: true)
                }
            }
            var logits: [Float] = []
            for tokens in forced {
                logits += transformer.forward(batch: slices(tokens)).flatMap { $0 ?? [] }
                lengths = lengths.map { $0 + 1 }
            }
            var greedy = [forced.last!]
            for _ in 0..<4 {
                greedy.append(transformer.greedyNext(batch: slices(greedy.last!)).map { $0 ?? -1 })
                lengths = lengths.map { $0 + 1 }
            }
            // Four more whose tokens stay where the backend runs, each step's argmax the next one's input.
            greedy += transformer.decodeSteps(batch: slices(greedy.last!), count: 4)
            lengths = lengths.map { $0 + 4 }
            // The drawn steps, one at a time, then queued over the same positions from the same tokens: two runs of
            // four, the second's first step queued before the first's tokens come back.
            // A third of the sequences greedy, a third with min-p, a sixth among their 20 largest logits with top-p.
            var samplers = prompts.indices.map { index in
                Sampler(
                    SamplingParameters(
                        temperature: index % 3 == 0 ? 0 : 0.8, topK: index % 6 == 2 ? 20 : 0,
                        topP: index % 6 == 2 ? 0.9 : 1, minP: index % 3 == 1 ? 0.05 : 0, seed: UInt64(index)))
            }
            let draws = (0..<8).map { _ in
                samplers.indices.map { samplers[$0].parameters.temperature == 0 ? .argmax : samplers[$0].nextRowDraw() }
            }
            var stepwise = [greedy.last!]
            for step in draws {
                let drawing = zip(slices(stepwise.last!), step).map { slice, draw in
                    var slice = slice
                    slice.draw = draw
                    return slice
                }
                stepwise.append(
                    transformer.step(batch: drawing).map {
                        guard case .token(let token) = $0 else { return -1 }
                        return token
                    })
                lengths = lengths.map { $0 + 1 }
            }
            lengths = lengths.map { $0 - 8 }
            var queued = transformer.decodeSteps(
                batch: slices(greedy.last!), count: 4, draws: Array(draws[..<4]), queueingNext: 4, drawing: draws[4])
            lengths = lengths.map { $0 + 4 }
            queued += transformer.decodeSteps(batch: slices(queued.last!), count: 4, draws: Array(draws[4...]))
            return (logits, greedy, (Array(stepwise.dropFirst()), queued))
        }
        let expected = run(reference)
        return devices.reduce(0) { failures, device in
            let what =
                "\(forced.count) steps of \(prompts.count) sequences"
                + (device.label.isEmpty ? "" : ", \(device.label)")
            let got = run(device.backend)
            let drawnAlike = got.drawn.stepwise == got.drawn.queued
            let drawn = "\(drawnAlike ? "same" : "different") drawn tokens over 8 steps, one at a time and queued"
            return failures
                + reportAgreement(
                    "batched  ", what, got: (got.logits, got.greedy), expected: (expected.logits, expected.greedy),
                    greedySteps: 8, also: (drawnAlike, drawn))
        }
    }
}

/// Prints one line, `label` then PASS or FAIL, `what` was run and how far the logits and greedy tokens of a backend
/// are from the reference's, then `also`'s text; returns 1 when the logits differ by more than 1e-3 (relative), the
/// tokens at all, or `also` failed.
private func reportAgreement<Tokens: Equatable>(
    _ label: String, _ what: String, got: (logits: [Float], greedy: Tokens),
    expected: (logits: [Float], greedy: Tokens), greedySteps: Int, also: (ok: Bool, text: String)? = nil
) -> Int {
    let worst = largestRelativeDifference(got.logits, expected.logits)
    let same = got.greedy == expected.greedy
    let ok = worst <= 1e-3 && same && also?.ok != false
    print(
        "\(label)\(ok ? "PASS" : "FAIL")  \(what): largest relative logit difference \(worst); "
            + "\(same ? "same" : "different") greedy tokens over \(greedySteps) steps"
            + (also.map { "; \($0.text)" } ?? ""))
    return ok ? 0 : 1
}

/// Prints whether `got` is within 1e-5 of `expected` (``largestRelativeDifference(_:_:)``); returns 1 when not.
private func reportDifference(_ label: String, _ what: String, got: [Float], expected: [Float]) -> Int {
    let worst = largestRelativeDifference(got, expected)
    let ok = worst <= 1e-5
    print("\(label)\(ok ? "PASS" : "FAIL")  \(what): largest relative difference \(worst)")
    return ok ? 0 : 1
}

/// The largest `|a - b| / max(1, |b|)` over the pairs, infinity when the counts differ (a check's failure).
private func largestRelativeDifference(_ got: [Float], _ expected: [Float]) -> Float {
    guard got.count == expected.count else { return .infinity }
    return zip(got, expected).reduce(0) { max($0, abs($1.0 - $1.1) / max(1, abs($1.1))) }
}

/// Every fixture model against its recorded transformers outputs and against the CPU backend.
struct FixtureCheck {
    /// The folder holding `reference.json` and the models it names.
    var root: String
    /// The device under test.
    var device: ComputeDevice

    /// Prints one line per model; returns the number that failed.
    func run() throws -> Int {
        guard let text = try? TextFile.read(root + "/reference.json") else {
            print("fixtures SKIP  no \(root)/reference.json (run from the repository, or pass --fixtures)")
            return 0
        }
        var failures = 0
        for entry in try JSONValue(parsing: text)["models"]?.arrayValue ?? [] {
            let name = entry["name"]?.stringValue ?? "?"
            let model = try ModelLoader.load(path: root + "/" + (entry["path"]?.stringValue ?? ""))
            let tested = try LanguageModel(model, device: device) { _ in }
            let cpu = LanguageModel(model)
            var deltaReference = 0.0
            var deltaCPU = 0.0
            var count = 0
            var greedyMatches = 0
            var greedyRuns = 0
            for prompt in entry["prompts"]?.arrayValue ?? [] {
                let ids = prompt["token_ids"]?.arrayValue?.compactMap(\.intValue) ?? []
                let recorded = prompt["token_logprobs"]?.arrayValue?.map(\.doubleValue) ?? []
                let ours = try tested.score(ids)
                let theirs = try cpu.score(ids)
                for i in 1..<ids.count {
                    guard let a = ours[i], let b = theirs[i], i < recorded.count, let r = recorded[i] else { continue }
                    deltaReference += abs(a - r)
                    deltaCPU += abs(a - b)
                    count += 1
                }
                guard prompt["text"]?.stringValue != nil else { continue }
                let greedy = try tested.generate(prompt: ids, maxTokens: 8, sampling: .greedy).tokens
                let expected = ["greedy_token_ids", "greedy_token_ids_fp64"].map {
                    Array((prompt[$0]?.arrayValue?.compactMap(\.intValue) ?? []).prefix(greedy.count))
                }
                greedyRuns += 1
                if expected.contains(greedy) { greedyMatches += 1 }
            }
            let meanReference = deltaReference / Double(max(count, 1))
            let meanCPU = deltaCPU / Double(max(count, 1))
            // transformers parity is the contract for Hugging Face checkpoints; every format must agree with the
            // CPU backend.
            let huggingFace = entry["format"]?.stringValue == "huggingface"
            let ok = meanCPU < 0.05 && (!huggingFace || (meanReference < 0.05 && greedyMatches == greedyRuns))
            if !ok { failures += 1 }
            print(
                "fixtures \(ok ? "PASS" : "FAIL")  \(name): mean |Δ logprob| \(format(meanReference)) against "
                    + "transformers, \(format(meanCPU)) against the CPU over \(count) tokens; greedy "
                    + "\(greedyMatches)/\(greedyRuns)")
        }
        return failures
    }

    private func format(_ value: Double) -> String {
        let scaled = (value * 1_000_000).rounded() / 1_000_000
        return "\(scaled)"
    }
}

/// Seeded greedy requests through the scheduler: each alone, then all in one batch; the tokens must not change.
struct BatchInvarianceCheck {
    /// The device under test.
    var device: ComputeDevice

    static let prompts = [
        "To be, or not to be", "Now is the winter of our discontent", "Friends, Romans, countrymen",
        "O Romeo, Romeo", "All the world's a stage", "Once more unto the breach", "The quality of mercy",
        "If music be the food of love",
    ]

    /// Prints one line; returns 1 when it failed.
    func run() async throws -> Int {
        let model = try EmbeddedModel.load()
        let requests = Self.prompts.map {
            GenerationRequest(
                prompt: model.tokenizer.encode($0, addSpecialTokens: true), maxTokens: 24, sampling: .greedy)
        }
        // Alone, every step's tokens come back before the next step; together, the device's own number of steps is
        // queued at once. (Tokens drawn at a temperature are not compared: the batched kernels add in another order
        // than one sequence's, and a draw moves with the last bits of its logits.)
        let alone = try await generate(requests, model: model, concurrency: 1, stepsAhead: 1)
        let together = try await generate(requests, model: model, concurrency: requests.count, stepsAhead: nil)
        let same = zip(alone, together).filter { $0 == $1 }.count
        let ok = same == requests.count
        print(
            "batch    \(ok ? "PASS" : "FAIL")  \(same)/\(requests.count) sequences identical alone, a step at a time, "
                + "and in a batch of queued steps")
        return ok ? 0 : 1
    }

    private func generate(
        _ requests: [GenerationRequest], model: LoadedModel, concurrency: Int, stepsAhead: Int?
    ) async throws -> [[Int]] {
        let language = try LanguageModel(model, device: device) { _ in }
        let scheduler = Scheduler(
            model: language,
            configuration: SchedulerConfiguration(
                maxConcurrency: concurrency, contextLength: 128, stepsAhead: stepsAhead))
        defer { scheduler.shutdown() }
        let streams = try requests.map { try scheduler.submit($0) }
        var results: [[Int]] = []
        for stream in streams {
            var tokens: [Int] = []
            for await event in stream {
                if case .token(let token) = event { tokens.append(token.id) }
                if case .failed(let message) = event { throw SelfTestError.engineFailed(message) }
            }
            results.append(tokens)
        }
        return results
    }
}

/// Why a self-test could not run to the end.
enum SelfTestError: Error, CustomStringConvertible {
    /// The engine gave up on a request.
    case engineFailed(String)

    var description: String {
        switch self {
        case .engineFailed(let message): "the engine failed during the batch check: \(message)"
        }
    }
}
