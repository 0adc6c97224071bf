import ArgumentParser
import OnebitCPU
import OnebitCUDA
import OnebitEngine
import OnebitModel

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// `onebit bench`: prompt and generation speed, against the memory-bandwidth roofline this machine measures.
struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Measure prompt and generation speed.",
        discussion: """
            Runs a prompt of -p random tokens, then generates -n tokens one at a time, on a model file or on a \
            synthetic model of a published shape (random ternary weights: speed does not depend on their values). \
            Decoding reads every weight once per token, so its speed limit is the memory bandwidth divided by the \
            bytes read per step; the bench measures that bandwidth itself and reports decode as a share of it.
            """)

    @Option(help: ArgumentHelp("A Hugging Face model directory or a .gguf file.", valueName: "path"))
    var model: String?

    @Option(
        help: ArgumentHelp(
            "A synthetic model shape (used when --model is absent): \(SyntheticShape.names.joined(separator: ", ")).",
            valueName: "name"))
    var synthetic = "bitnet-2b4t"

    @Option(help: "Threads (default: the physical cores).")
    var threads: Int?

    @Option(name: .customShort("p"), help: "Prompt tokens.")
    var promptTokens = 128

    @Option(name: .customShort("n"), help: "Generated tokens.")
    var generatedTokens = 128

    @Option(name: .shortAndLong, help: "Runs of prompt + generation; the best is reported with the spread.")
    var repetitions = 1

    @Option(help: "Kernel variant: avx512-vnni, avx2 or scalar (default: the best this CPU runs).")
    var kernels: String?

    @Option(help: "Sequences decoding together (each step runs one token of every sequence through one forward pass).")
    var batch = 1

    @Flag(help: "Compute logits with an int8 copy of the output head.")
    var int8Head = false

    @Option(
        help: ArgumentHelp(
            "Decoding steps queued before the host waits for their tokens, which the GPU chooses and feeds from one "
                + "step to the next (1: the host reads every step's tokens before the next step).",
            valueName: "steps"))
    var stepsAhead = 1

    @Option(
        help: ArgumentHelp(
            "Draw every generated token at this temperature over the whole row of logits, each sequence from its own "
                + "seeded random numbers (0: the argmax).",
            valueName: "T"))
    var temperature: Float = 0

    @Option(
        help: ArgumentHelp(
            "With --temperature, draw among the K most likely tokens (1 to \(Sampler.largestCandidateSet); 0: the whole "
                + "row).", valueName: "K"))
    var topK = 0

    @Option(
        help: ArgumentHelp(
            "With --temperature, draw among the most likely tokens (of the top K, with --top-k) whose probabilities "
                + "add up to P (1: all).",
            valueName: "P"))
    var topP: Float = 1

    @Option(help: "Where the model runs: cpu or cuda (the first GPU; --threads and --kernels do not apply).")
    var device = "cpu"

    @Flag(help: "Print one JSON object.")
    var json = false

    func validate() throws {
        guard promptTokens >= 1, generatedTokens >= 1, repetitions >= 1 else {
            throw ValidationError("-p, -n and --repetitions must be at least 1")
        }
        guard (1...64).contains(batch) else { throw ValidationError("--batch must be 1 to 64") }
        guard stepsAhead >= 1 else { throw ValidationError("--steps-ahead must be at least 1") }
        guard temperature >= 0, temperature.isFinite else { throw ValidationError("--temperature must be 0 or more") }
        guard (0...Sampler.largestCandidateSet).contains(topK) else {
            throw ValidationError("--top-k must be 0 to \(Sampler.largestCandidateSet)")
        }
        guard topK == 0 || temperature > 0 else { throw ValidationError("--top-k needs a --temperature above 0") }
        guard topP > 0, topP <= 1 else { throw ValidationError("--top-p must be above 0 and at most 1") }
        guard topP == 1 || temperature > 0 else { throw ValidationError("--top-p needs a --temperature above 0") }
        if let threads, threads < 1 { throw ValidationError("--threads must be at least 1") }
        if let kernels {
            guard let set = CPUInstructionSet.allCases.first(where: { $0.description == kernels }) else {
                throw ValidationError("unknown kernels \(kernels); known: avx512-vnni, avx2, scalar")
            }
            guard set.isSupported else { throw ValidationError("this CPU cannot run \(kernels)") }
        }
        guard device == "cpu" || device == "cuda" else { throw ValidationError("--device must be cpu or cuda") }
        if model == nil, SyntheticShape(name: synthetic) == nil {
            throw ValidationError("unknown shape \(synthetic); known: \(SyntheticShape.names.joined(separator: ", "))")
        }
    }

    func run() throws {
        if device == "cuda" {
            try runCUDA()
            return
        }
        let status = StatusLine()
        let clock = ContinuousClock()
        var source = ""
        var config: ModelConfig
        var transformer: Transformer<CPUBackend>
        let instructionSet = CPUInstructionSet.allCases.first { $0.description == kernels } ?? .best
        let backend = CPUBackend(threadCount: threads, instructionSet: instructionSet, int8Head: int8Head)
        let loadStart = clock.now
        do {
            let weights: ModelWeights
            (config, weights, source) = try loadWeights(status: status)
            status.show("repacking for \(backend.instructionSet)")
            transformer = Transformer(backend: backend, config: config, weights: weights)
        }
        let loadSeconds = (clock.now - loadStart).seconds
        let residentAfterLoad = Self.memoryStatus("VmRSS")

        status.show("measuring memory bandwidth")
        let peakBeforeProbe = Self.memoryStatus("VmHWM")
        let firstBandwidth = MemoryBandwidth.measure(pool: backend.pool)
        Self.resetPeakMemory()  // the probe's buffer is not the model's memory

        let (prefillRates, decodeRates) = try measure(transformer, config: config, status: status)
        let peak = max(peakBeforeProbe, Self.memoryStatus("VmHWM"))
        // The roofline is the best bandwidth seen: probe again, in case other work slowed the first probe.
        status.show("measuring memory bandwidth again")
        let bandwidth = max(firstBandwidth, MemoryBandwidth.measure(pool: backend.pool))
        status.clear()
        report(
            source: source, kernels: backend.instructionSet.description, threads: backend.pool.threadCount,
            int8Head: backend.usesInt8Head, config: config, prefill: prefillRates, decode: decodeRates,
            loadSeconds: loadSeconds, peak: peak, resident: residentAfterLoad, bandwidth: bandwidth)
    }

    /// The bench on the first GPU: the roofline's bandwidth is what a device-to-device copy reaches (bytes read
    /// and written), measured before and after the runs.
    private func runCUDA() throws {
        let status = StatusLine()
        let clock = ContinuousClock()
        let loadStart = clock.now
        let backend = try CUDABackend(int8Head: int8Head)
        let (config, weights, source) = try loadWeights(status: status)
        try backend.validate(config, weights: weights)
        status.show("uploading to \(backend.deviceDescription)")
        let transformer = Transformer(
            backend: backend, config: config, weights: weights, chunkSize: CUDABackend.chunkSize)
        let loadSeconds = (clock.now - loadStart).seconds
        let residentAfterLoad = Self.memoryStatus("VmRSS")
        let deviceAfterLoad = backend.deviceMemory.now
        status.show("measuring device memory bandwidth")
        let firstBandwidth = backend.copyBandwidth()
        backend.resetPeakDeviceMemory()  // the probe's buffers are not the model's memory
        let (prefillRates, decodeRates) = try measure(transformer, config: config, status: status)
        let devicePeak = backend.deviceMemory.peak
        status.show("measuring device memory bandwidth again")
        let bandwidth = max(firstBandwidth, backend.copyBandwidth())
        status.clear()
        report(
            source: source, kernels: "cuda: \(backend.deviceDescription)", threads: 0, int8Head: int8Head,
            config: config, prefill: prefillRates, decode: decodeRates, loadSeconds: loadSeconds,
            peak: Self.memoryStatus("VmHWM"), resident: residentAfterLoad, bandwidth: bandwidth,
            device: DeviceMemory(peak: devicePeak, afterLoad: deviceAfterLoad))
    }

    /// The model file's weights, or the synthetic shape's, with a description of where they came from.
    private func loadWeights(status: StatusLine) throws -> (ModelConfig, ModelWeights, String) {
        if let model {
            status.show("loading \(model)")
            let loaded = try ModelLoader.load(path: model)
            return (loaded.config, loaded.weights, model)
        }
        status.show("building a synthetic \(synthetic)")
        let shape = SyntheticShape(name: synthetic)!
        return (shape.config, shape.makeWeights(), "synthetic \(synthetic)")
    }

    /// The prompt and generation rates of every run.
    private func measure<B: Backend>(
        _ transformer: Transformer<B>, config: ModelConfig, status: StatusLine
    ) throws -> (prefill: [Double], decode: [Double]) {
        let clock = ContinuousClock()
        var rng = SystemRandomNumberGenerator()
        let prompt = (0..<promptTokens).map { _ in Int.random(in: 0..<config.vocabSize, using: &rng) }
        // One untimed token first: first-use work (the int8 head's quantization, page faults) is not speed.
        status.show("warming up")
        _ = try transformer.makeSession(capacity: 2).append([prompt[0]]) { _ in true }
        var prefillRates: [Double] = []
        var decodeRates: [Double] = []
        for run in 1...repetitions {
            let label = repetitions > 1 ? " (run \(run) of \(repetitions))" : ""
            if batch > 1 || stepsAhead > 1 || temperature > 0 {
                let (prefill, decode) = try runBatch(transformer, prompt: prompt, status: status, label: label)
                prefillRates.append(prefill)
                decodeRates.append(decode)
                continue
            }
            let session = transformer.makeSession(capacity: promptTokens + generatedTokens)
            status.show("prompt: \(promptTokens) tokens\(label)")
            let prefill = try clock.measure {
                _ = try session.append(prompt) { $0 == promptTokens - 1 }
            }
            prefillRates.append(Double(promptTokens) / prefill.seconds)
            var token = prompt.last!
            let decode = try clock.measure {
                for i in 0..<generatedTokens {
                    // The argmax of the token's logits, found where the backend runs.
                    token = try session.appendGreedy(token)
                    status.progress("generating\(label)", fraction: Double(i + 1) / Double(generatedTokens))
                }
            }
            decodeRates.append(Double(generatedTokens) / decode.seconds)
        }
        return (prefillRates, decodeRates)
    }

    /// Prints the report of the rates against the roofline of `bandwidth`.
    private func report(
        source: String, kernels: String, threads: Int, int8Head: Bool, config: ModelConfig, prefill: [Double],
        decode decodeRates: [Double], loadSeconds: Double, peak: Int, resident: Int, bandwidth: Double,
        device: DeviceMemory? = nil
    ) {
        let bytes = Self.bytesPerDecodeStep(
            config: config, int8Head: int8Head, averageContext: promptTokens + generatedTokens / 2, sequences: batch)
        // A step yields one token per sequence.
        let roofline = Double(batch) * bandwidth / Double(bytes)
        let decode = decodeRates.max()!
        let report = Report(
            source: source, instructionSet: kernels, threads: threads,
            int8Head: int8Head, batch: batch, stepsAhead: stepsAhead, temperature: temperature, topK: topK, topP: topP,
            promptTokens: promptTokens,
            generatedTokens: generatedTokens,
            prefill: prefill, decode: decodeRates, loadSeconds: loadSeconds,
            peakBytes: peak, residentBytes: resident, device: device,
            bytesPerStep: bytes,
            bandwidth: bandwidth, roofline: roofline, rooflineShare: decode / roofline)
        print(json ? report.json.jsonText : report.text)
    }

    /// `batch` sequences decoding together: each prompt runs through its own cache (prompt rate: all their tokens
    /// over the time), then every step runs one token of each sequence through one batched forward pass
    /// (generation rate: tokens of all sequences per second), `--steps-ahead` steps before the host waits for their
    /// tokens, each token the argmax or, with `--temperature`, a draw. Returns both rates.
    private func runBatch<B: Backend>(
        _ transformer: Transformer<B>, prompt: [Int], status: StatusLine, label: String
    ) throws(SessionError) -> (prefill: Double, decode: Double) {
        let clock = ContinuousClock()
        // The caches take device memory as they fill: caches that cannot all fit fail before the first step.
        let positions = promptTokens + generatedTokens
        let room = transformer.cachePositions(upTo: positions, sequences: batch)
        guard room >= positions else { throw .deviceMemoryFull(capacity: room, requested: positions) }
        let caches = (0..<batch).map { _ in transformer.makeCache(capacity: promptTokens + generatedTokens) }
        status.show("prompt: \(batch) x \(promptTokens) tokens\(label)")
        let prefill = clock.measure {
            for cache in caches {
                _ = transformer.forward(prompt, startingAt: 0, cache: cache) { $0 == promptTokens - 1 }
            }
        }
        var tokens = [Int](repeating: prompt.last!, count: batch)
        var samplers = (0..<batch).map {
            Sampler(SamplingParameters(temperature: temperature, topK: topK, topP: topP, seed: UInt64($0)))
        }
        func nextDraws() -> [RowDraw] { samplers.indices.map { samplers[$0].nextRowDraw() } }
        // The draws of a run's first step, taken when the run before queued that step.
        var queuedDraws: [RowDraw]?
        let decode = clock.measure {
            var step = 0
            while step < generatedTokens {
                let slices = zip(tokens, caches).map { token, cache in
                    Transformer<B>.Slice(
                        tokens: [token], start: promptTokens + step, cache: cache, wantsLogits: true)
                }
                let count = min(stepsAhead, generatedTokens - step)
                // The run after this one, queued ahead where it is one of several steps as well.
                let after = min(stepsAhead, generatedTokens - step - count)
                let next = after > 1 ? after : 0
                var draws: [[RowDraw]] = []
                if temperature > 0 {
                    draws = (0..<count).map { index in index == 0 ? queuedDraws ?? nextDraws() : nextDraws() }
                    queuedDraws = count > 1 && next > 0 ? nextDraws() : nil
                }
                if count > 1 {
                    tokens =
                        transformer.decodeSteps(
                            batch: slices, count: count, draws: draws, queueingNext: next, drawing: queuedDraws ?? []
                        )
                        .last!
                } else if draws.isEmpty {
                    tokens = transformer.greedyNext(batch: slices).map { $0! }
                } else {
                    let drawing = zip(slices, draws[0]).map { slice, draw in
                        var slice = slice
                        slice.draw = draw
                        return slice
                    }
                    tokens = transformer.step(batch: drawing).map {
                        guard case .token(let token) = $0 else { preconditionFailure("a draw gives a token") }
                        return token
                    }
                }
                step += count
                status.progress("generating\(label)", fraction: Double(step) / Double(generatedTokens))
            }
        }
        return (
            Double(batch * promptTokens) / prefill.seconds, Double(batch * generatedTokens) / decode.seconds
        )
    }

    /// Bytes one decode step streams from memory: every ternary matrix in its packed layout, the output head, and
    /// the KV caches of `sequences` sequences at `averageContext` positions (the embedding rows and activations
    /// are negligible).
    static func bytesPerDecodeStep(
        config: ModelConfig, int8Head: Bool, averageContext: Int, sequences: Int = 1
    ) -> Int {
        let c = config
        let attention = c.headCount * c.headDim
        let kv = c.kvHeadCount * c.headDim
        let shapes = [
            (attention, c.hiddenSize), (kv, c.hiddenSize), (kv, c.hiddenSize), (c.hiddenSize, attention),
            (c.intermediateSize, c.hiddenSize), (c.intermediateSize, c.hiddenSize), (c.hiddenSize, c.intermediateSize),
        ]
        let ternary = shapes.reduce(0) { $0 + CPUBackend.packedByteCount(rows: $1.0, columns: $1.1) } * c.layerCount
        let headElements = c.vocabSize * c.hiddenSize
        let head = int8Head ? headElements + c.vocabSize * 8 : headElements * 2
        let cache = c.layerCount * 2 * kv * 4 * averageContext * sequences
        return ternary + head + cache
    }

    /// Restarts the peak-memory count (`VmHWM`) from the current resident size (Linux `clear_refs` value 5).
    static func resetPeakMemory() {
        guard let file = fopen("/proc/self/clear_refs", "w") else { return }
        fputs("5", file)
        fclose(file)
    }

    /// A `/proc/self/status` field (`VmHWM`, `VmRSS`) in bytes; 0 where the file does not exist.
    static func memoryStatus(_ field: String) -> Int {
        guard let file = fopen("/proc/self/status", "r") else { return 0 }
        defer { fclose(file) }
        var line = [CChar](repeating: 0, count: 256)
        while fgets(&line, Int32(line.count), file) != nil {
            let text = String(decoding: line.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
            guard text.hasPrefix(field + ":") else { continue }
            let kilobytes = text.split(separator: " ", omittingEmptySubsequences: true).compactMap { Int($0) }.first
            return (kilobytes ?? 0) * 1024
        }
        return 0
    }
}

/// Bytes of GPU memory the backend's buffers held: the most during the runs, and after loading the model.
private struct DeviceMemory {
    var peak: Int
    var afterLoad: Int
}

/// What a bench run measured.
private struct Report {
    var source: String
    var instructionSet: String
    var threads: Int
    var int8Head: Bool
    var batch: Int
    var stepsAhead: Int
    var temperature: Float
    var topK: Int
    var topP: Float
    var promptTokens: Int
    var generatedTokens: Int
    var prefill: [Double]
    var decode: [Double]
    var loadSeconds: Double
    var peakBytes: Int
    var residentBytes: Int
    var device: DeviceMemory?
    var bytesPerStep: Int
    var bandwidth: Double
    var roofline: Double
    var rooflineShare: Double

    var text: String {
        func rate(_ values: [Double]) -> String {
            let best = format(values.max()!, 2)
            return values.count > 1
                ? "\(best) tokens/s (runs: \(values.map { format($0, 2) }.joined(separator: ", ")))"
                : "\(best) tokens/s"
        }
        let batchLabel = batch > 1 ? "\(batch) x " : ""
        let perSequence =
            (batch > 1 ? ", \(format(decode.max()! / Double(batch), 2)) per sequence" : "")
            + (stepsAhead > 1 ? ", \(stepsAhead) steps a wait" : "")
            + (temperature > 0 ? ", drawn at temperature \(format(Double(temperature), 2))" : "")
            + (topK > 0 ? " among the top \(topK)" : "") + (topP < 1 ? " with top-p \(format(Double(topP), 2))" : "")
        return """
            model        \(source)\(int8Head ? ", int8 head" : "")
            kernels      \(instructionSet)\(threads > 0 ? ", \(threads) threads" : "")
            prompt       \(batchLabel)\(promptTokens) tokens: \(rate(prefill))
            generation   \(batchLabel)\(generatedTokens) tokens: \(rate(decode))\(perSequence)
            roofline     \(format(bandwidth / 1e9, 1)) GB/s read / \(format(Double(bytesPerStep) / 1e9, 3)) GB per \
            \(batch > 1 ? "step of \(batch) tokens" : "token") = \(format(roofline, 2)) tokens/s; generation at \
            \(format(rooflineShare * 100, 1))% of it
            memory       peak \(gigabytes(peakBytes)) GB, \(gigabytes(residentBytes)) GB resident after load \
            (\(format(loadSeconds, 1)) s)\(gpuMemory)
            """
    }

    /// The GPU's memory line, after a line break; empty on the CPU.
    private var gpuMemory: String {
        guard let device else { return "" }
        return "\ngpu memory   peak \(gigabytes(device.peak)) GB, \(gigabytes(device.afterLoad)) GB after load"
    }

    private func gigabytes(_ bytes: Int) -> String { format(Double(bytes) / 1e9, 2) }

    var json: JSONValue {
        .object([
            "model": .string(source), "kernels": .string(instructionSet), "threads": .integer(threads),
            "int8_head": .bool(int8Head), "batch": .integer(batch), "steps_ahead": .integer(stepsAhead),
            "temperature": .number(Double(temperature)), "top_k": .integer(topK), "top_p": .number(Double(topP)),
            "prompt_tokens": .integer(promptTokens),
            "generated_tokens": .integer(generatedTokens),
            "prompt_tokens_per_second": .number(prefill.max()!),
            "generation_tokens_per_second": .number(decode.max()!),
            "generation_tokens_per_second_per_sequence": .number(decode.max()! / Double(batch)),
            "prompt_runs": .array(prefill.map { .number($0) }), "generation_runs": .array(decode.map { .number($0) }),
            "bytes_per_generated_token": .integer(bytesPerStep / batch), "bytes_per_step": .integer(bytesPerStep),
            "read_bandwidth_bytes_per_second": .number(bandwidth),
            "roofline_tokens_per_second": .number(roofline), "generation_share_of_roofline": .number(rooflineShare),
            "peak_memory_bytes": .integer(peakBytes), "resident_after_load_bytes": .integer(residentBytes),
            "load_seconds": .number(loadSeconds),
            "gpu_peak_memory_bytes": device.map { .integer($0.peak) } ?? .null,
            "gpu_memory_after_load_bytes": device.map { .integer($0.afterLoad) } ?? .null,
        ])
    }

    private func format(_ value: Double, _ digits: Int) -> String {
        var scale = 1.0
        for _ in 0..<digits { scale *= 10 }
        let rounded = (value * scale).rounded() / scale
        let text = "\(rounded)"
        guard let dot = text.firstIndex(of: ".") else { return text }
        let decimals = text.distance(from: dot, to: text.endIndex) - 1
        return decimals >= digits ? text : text + String(repeating: "0", count: digits - decimals)
    }
}

/// The published shapes `onebit bench --synthetic` can build.
struct SyntheticShape {
    /// The shape's configuration.
    var config: ModelConfig

    /// Names accepted by ``init(name:)``.
    static let names = ["bitnet-2b4t", "bitnet-large", "bitnet-3b", "falcon3-10b-1.58"]

    /// The shape called `name`, or `nil`.
    init?(name: String) {
        func shape(
            _ hidden: Int, _ layers: Int, _ heads: Int, _ kvHeads: Int, _ intermediate: Int, _ vocab: Int,
            _ theta: Float, _ activation: ModelConfig.Activation, tied: Bool
        ) -> ModelConfig {
            ModelConfig(
                architecture: name, hiddenSize: hidden, layerCount: layers, headCount: heads, kvHeadCount: kvHeads,
                headDim: hidden / heads, intermediateSize: intermediate, vocabSize: vocab, contextLength: 4096,
                ropeTheta: theta, rmsNormEpsilon: 1e-5, activation: activation, tiedEmbeddings: tied)
        }
        switch name {
        // microsoft/bitnet-b1.58-2B-4T: tied bf16 head.
        case "bitnet-2b4t": config = shape(2560, 30, 20, 5, 6912, 128_256, 500_000, .relu2, tied: true)
        // 1bitLLM/bitnet_b1_58-large and -3B.
        case "bitnet-large": config = shape(1536, 24, 16, 16, 4096, 32_002, 10_000, .silu, tied: false)
        case "bitnet-3b": config = shape(3200, 26, 32, 32, 8640, 32_002, 10_000, .silu, tied: false)
        // tiiuae/Falcon3-10B (head_dim 256), the shape of its 1.58-bit release.
        case "falcon3-10b-1.58": config = shape(3072, 40, 12, 4, 23040, 131_072, 1_000_042, .silu, tied: false)
        default: return nil
        }
    }

    /// Any shape, for checks on small models.
    init(config: ModelConfig) {
        self.config = config
    }

    /// Random weights of this shape. Every layer repacks the same random codes (the canonical copy is shared, so
    /// building takes seconds and little memory); each layer still gets its own packed copy, so decoding streams
    /// as many distinct bytes as a real model.
    func makeWeights() -> ModelWeights {
        var rng = SplitMix64(seed: 0x5EED)
        let c = config
        let attention = c.headCount * c.headDim
        let kv = c.kvHeadCount * c.headDim
        func ternary(_ rows: Int, _ columns: Int) -> TernaryMatrix {
            TernaryMatrix(
                rows: rows, columns: columns, codes: rng.ternaryCodes(count: rows * columns / 4),
                scale: .perTensor(0.02))
        }
        let ones = [Float](repeating: 1, count: max(c.hiddenSize, c.intermediateSize, attention))
        let layer = LayerWeights(
            attentionNorm: Array(ones.prefix(c.hiddenSize)), query: ternary(attention, c.hiddenSize),
            key: ternary(kv, c.hiddenSize), value: ternary(kv, c.hiddenSize),
            attentionSubNorm: Array(ones.prefix(attention)), output: ternary(c.hiddenSize, attention),
            feedForwardNorm: Array(ones.prefix(c.hiddenSize)), gate: ternary(c.intermediateSize, c.hiddenSize),
            up: ternary(c.intermediateSize, c.hiddenSize), feedForwardSubNorm: Array(ones.prefix(c.intermediateSize)),
            down: ternary(c.hiddenSize, c.intermediateSize))
        func dense() -> DenseMatrix {
            DenseMatrix(
                rows: c.vocabSize, columns: c.hiddenSize,
                storage: .bfloat16(rng.smallBFloat16(count: c.vocabSize * c.hiddenSize)))
        }
        return ModelWeights(
            embeddings: dense(), layers: Array(repeating: layer, count: c.layerCount),
            finalNorm: Array(ones.prefix(c.hiddenSize)), outputHead: c.tiedEmbeddings ? nil : dense())
    }
}

/// Random synthetic weights, fast enough to fill gigabytes in seconds.
extension SplitMix64 {
    /// Bytes whose four 2-bit fields are each a valid code (0, 1 or 2): one of the 81 such bytes per random byte.
    mutating func ternaryCodes(count: Int) -> [UInt8] {
        var valid: [UInt8] = []
        for byte in 0...255 where (0..<4).allSatisfy({ (byte >> (2 * $0)) & 3 != 3 }) { valid.append(UInt8(byte)) }
        return [UInt8](unsafeUninitializedCapacity: count) { buffer, initialized in
            var i = 0
            while i < count {
                var bits = next()
                for _ in 0..<min(8, count - i) {
                    buffer[i] = valid[Int((bits & 0xFF) * 81 >> 8)]
                    bits >>= 8
                    i += 1
                }
            }
            initialized = count
        }
    }

    /// bfloat16 bit patterns of random values of magnitude 1/32 to 1/16 and random sign.
    mutating func smallBFloat16(count: Int) -> [UInt16] {
        [UInt16](unsafeUninitializedCapacity: count) { buffer, initialized in
            var i = 0
            while i < count {
                var bits = next()
                for _ in 0..<min(4, count - i) {
                    buffer[i] = 0x3D00 | UInt16(bits & 0x807F)
                    bits >>= 16
                    i += 1
                }
            }
            initialized = count
        }
    }
}
