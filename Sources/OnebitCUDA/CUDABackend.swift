import CCUDA
import OnebitModel

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// The CUDA backend: every operation of the forward pass as a kernel on one stream of the first GPU.
///
/// Kernels are compiled by NVRTC on first use and cached on disk (``KernelBuild``). Only logits come back to the
/// host; token ids and positions go up once per forward. This file holds the backend's state, its buffers and the
/// launch plumbing; the operations are extensions by kind: `CUDABackend+Norms.swift`, `+Products`, `+Attention`,
/// `+Head` and `+Sampling`.
public final class CUDABackend {
    let context: CUDAContext

    let kernels: KernelModule

    var tokenBuffer: DeviceBuffer?

    /// The positions of a step: every layer passes the same array several times per forward.
    private var positionCopy = DeviceCopy<Int32>()

    /// The block tables of the sequences of a step (``deviceBlockTables(_:rows:)``).
    var blockTableCopy = DeviceCopy<UInt64>()

    var logitBuffer: DeviceBuffer?

    /// Row indices of ``logits(_:rows:head:)``: a greedy step of many sequences reads the same rows every time.
    var logitRowCopy = DeviceCopy<Int32>()

    /// The bf16 planes of the rows a tensor-core head product reads.
    var headPlanes: DeviceBuffer?

    /// Integer sums of split tensor-core products, zero between products (``Kernel/finishProducts`` clears them).
    var partialSums: DeviceBuffer?

    /// Whether logits come from an int8 copy of a bf16 output head (half its bytes; opt-in, it moves the logits
    /// slightly: `onebit ppl --int8-head` measures by how much).
    public let int8Head: Bool

    /// The int8 copy of the head, made at first use.
    var int8Copy: Int8Rows?

    /// A token's row quantized for the int8 head: its scale, then from byte 16 the values.
    var quantizedRowBuffer: DeviceBuffer?

    var argmaxBuffer: DeviceBuffer?

    /// The tokens ``argmaxKept(_:rows:head:step:of:)`` keeps, `[step][row]`, and how many of each.
    var keptBuffer: DeviceBuffer?

    var keptShape = (steps: 0, rows: 0)

    /// Kept tokens on their way to the host (``queueKeptTokens()``): how many, and the buffer they come from, held
    /// until they have arrived in `keptHost`, so that a run queued meanwhile may replace `keptBuffer`.
    var keptCopy: (shape: (steps: Int, rows: Int), source: DeviceBuffer)?

    var keptHost: HostBuffer?

    lazy var keptArrival = StreamEvent(context)

    /// The random numbers, temperatures and min-p of ``drawTokens(_:rows:head:draws:)``, the tokens drawn, then the
    /// top-k and top-p.
    var drawBuffer: DeviceBuffer?

    /// Each chunk's largest logits and kept mass, between the launches of a draw.
    var drawChunkBuffer: DeviceBuffer?

    /// The sums of the rounds that find top-p nuclei, 4,096 a row
    /// (``queueNuclei(_:columns:chunk:chunks:rows:temperatures:topKs:topPs:)``).
    var nucleusSums: DeviceBuffer?

    /// The rows' `Nucleus` records, the limits the draw reads among them.
    var nucleusRecords: DeviceBuffer?

    /// The ranking's group minima, candidates, ranked keys, thresholds and candidate counts
    /// (``queueRanking(_:columns:rows:count:)``).
    var rankingBuffer: DeviceBuffer?

    /// Per-split partial results of single-token attention (``Kernel/attentionSplit``).
    var attentionPartials: DeviceBuffer?

    /// Zeroed counters of finished blocks, one a head, with which single-token attention finds the last split of
    /// each head. The kernel leaves them at zero.
    var blockCounters: DeviceBuffer?

    /// Single-token products queued by ``multiply(_:_:tokens:into:)`` and not launched yet: consecutive products
    /// of the same activations go out as one launch, with a following residual add or gated activation folded in.
    var pending: [PendingProduct] = []

    /// Whether ``step(tokens:positions:cache:_:)`` has uploaded the step's token and position already.
    private var stepInputsUploaded = false

    /// Recorded decoding steps. The graphs also bake in the addresses of the transformer's scratch buffers: a
    /// backend serves one transformer.
    private let graphs: StepGraphs

    /// Variants for measurement: `ONEBIT_CUDA_GRAPHS=0` runs decode steps eagerly, `ONEBIT_CUDA_FUSION=0` keeps
    /// one launch per product and the single-pass attention, `ONEBIT_CUDA_TILES=0` keeps single-token products off
    /// the tensor cores.
    private let useGraphs = CUDABackend.flag("ONEBIT_CUDA_GRAPHS")

    let useFusion = CUDABackend.flag("ONEBIT_CUDA_FUSION")

    let useTiles: Bool

    /// Whether one token's tile products may stream their tiles through each block (`ternary_tiles_stream_1`, sm_90
    /// and later; ``launchTiles(_:activation:)`` says which do).
    let streamsTiles: Bool

    /// Whether kernels may start before the kernel before them ends (programmatic dependent launch, sm_90 and
    /// later): each kernel waits for its predecessor itself, and the products prefetch their weights meanwhile. Every
    /// launch overlaps but prompt attention's (``Kernel/overlapsPredecessor``). On an H200 overlapping prompts too
    /// took 512-token prompts from 48,425 to 50,621 tokens/s and 64 prompts of 128 from 31,168 to 33,346. They once
    /// read wrong values overlapped (the built-in model's perplexity 1,168-1,635 instead of 64.82); the warpgroup
    /// product's race, since fixed, was the likely cause: with it fixed, overlapped prompts gave 64.8215, as before.
    /// `ONEBIT_CUDA_OVERLAP=0` turns it off everywhere.
    private let overlapLaunches: Bool

    /// Whether products of two or more tokens with one weight scale per tensor run on the int8 tensor cores (sm_80
    /// and later; the same integers as the other kernels). `ONEBIT_CUDA_TENSOR_CORES=0` turns it off.
    let useTensorCores: Bool

    /// Whether prompt chunks with heads wider than ``KernelSource/prefillHeadDimension`` (Falcon3's 256) attend on the
    /// tensor cores too (``Kernel/attentionPrefillTensorCoresWide``, sm_90 and sm_100), rather than a block per head
    /// and token.
    let attendsWideHeadsOnTensorCores: Bool

    /// Whether prompt chunks of up to ``prefillFourPartTokens`` tokens attend in blocks of four parts of half as many
    /// rows (``Kernel/attentionPrefillTensorCoresShort``, sm_90 and sm_100).
    let attendsShortChunksInFourParts: Bool

    /// Whether rows too wide for ``Kernel/rmsNormQuantizeWide`` (Falcon3-10B's 23,040-wide feed-forward) are normalised
    /// by ``Kernel/rmsNormQuantizeLong``, a block per row holding it in shared memory (sm_80 and later).
    let normsLongRows: Bool

    /// Whether steps of up to ``splitNormTokens`` tokens share each such row out over a thread block cluster
    /// (``Kernel/rmsNormQuantizeSplit``, sm_90 and later) instead.
    let splitsLongNorms: Bool

    /// Whether those products, and the bf16 head of several tokens, run on Hopper's warpgroup tensor cores (`wgmma`,
    /// sm_90a: compute capability 9.0) instead of `mma.sync`: the products in blocks of 128 rows instead of 64. On an
    /// H200 the products took a 64-sequence step from 17,700-18,900 generated tokens/s to 19,200-20,600 and 512-token
    /// prompts from 30,100 to 36,800; the head then took it to 22,550-23,040 (211 us a step instead of 498).
    /// `ONEBIT_CUDA_WARPGROUP=0` turns both off.
    let useWarpgroups: Bool

    /// Whether steps of several sequences attend with ``Kernel/attentionRows``, which stages keys and values with
    /// `cp.async` (sm_80 and later); before that, the rotary store and plain attention kernels serve them.
    let stagesAttentionRows: Bool

    /// The most blocks of a cluster of ``Kernel/attentionRowsClustered`` this GPU runs (up to
    /// ``KernelSource/attentionRowsMaximumSplits``): 1 before sm_90, which has no clusters.
    let largestAttentionCluster: Int

    /// A residual add or gated activation of several tokens, not launched yet: the RMSNorm + quantize of its
    /// result that follows in a layer does it on the way (``Kernel/rmsNormQuantizeWide``); anything else launches
    /// it first.
    var pendingRowOperation: PendingRowOperation?

    /// The rescale of a split tensor-core product of one to three matrices (``Kernel/finishProducts``) and their
    /// outputs, not launched yet: a residual add of the one output and the norm after it, the gated activation of
    /// the two (gate, up) and the norm after it, or the rotary embedding and cache store of the three (query, key,
    /// value) do it on the way.
    var pendingFinish: (PendingFinish, [CUDAActivations])?

    /// The single-token rotary embedding and cache store of the current layer, not launched yet: the single-token
    /// attention that follows does it (``Kernel/attentionSplit``); anything else launches it first.
    var pendingRopeStore: PendingRopeStore?

    /// Tokens per forward pass the kernels are sized for: a prompt chunk this long fills the GPU (the tensor-core
    /// products run one block per 64 rows and 64 tokens). `ONEBIT_CUDA_CHUNK` overrides it.
    public static let chunkSize: Int = {
        guard let text = getenv("ONEBIT_CUDA_CHUNK"), let value = Int(String(cString: text)), value > 0 else {
            return 512
        }
        return value
    }()

    /// Most decode-step graphs kept (a server whose batch size wanders over 1 to 64 sequences records one for
    /// each); a new one then replaces the one launched longest ago. On an H200, 64 greedy streams of 16 to 142
    /// tokens (a batch shrinking by one every two steps) were served at 7,919-7,945 tokens/s, against 6,381-6,567
    /// when more than 16 graphs started the collection over.
    static let graphLimit = 64

    /// Rotary embeddings not launched yet: a query and key rotation followed by the store of the keys go out as
    /// one launch.
    var rotations: [PendingRotation] = []

    /// Opens the first GPU and loads (or compiles) the kernels; throws when there is no driver, GPU or compiler.
    /// With `int8Head`, logits come from an int8 copy of a bf16 output head. `splitsAttention` false keeps every
    /// decoding step's attention to one block a kv head and sequence, without the clusters that spread a few
    /// sequences' positions over the GPU (the self-test checks both).
    public init(int8Head: Bool = false, splitsAttention: Bool = true) throws(CUDAError) {
        self.int8Head = int8Head
        context = try CUDAContext()
        kernels = try KernelModule(context)
        graphs = StepGraphs(context, limit: Self.graphLimit)
        overlapLaunches = context.major >= 9 && CUDABackend.flag("ONEBIT_CUDA_OVERLAP")
        useTensorCores =
            Kernel.ternaryMatmulTensorCores.runs(major: context.major, minor: context.minor)
            && CUDABackend.flag("ONEBIT_CUDA_TENSOR_CORES")
        normsLongRows = Kernel.rmsNormQuantizeLong.runs(major: context.major, minor: context.minor)
        splitsLongNorms = Kernel.rmsNormQuantizeSplit.runs(major: context.major, minor: context.minor)
        attendsShortChunksInFourParts =
            useTensorCores && Kernel.attentionPrefillTensorCoresShort.runs(major: context.major, minor: context.minor)
        attendsWideHeadsOnTensorCores =
            useTensorCores && Kernel.attentionPrefillTensorCoresWide.runs(major: context.major, minor: context.minor)
        useTiles =
            Kernel.ternaryTilesSingle.runs(major: context.major, minor: context.minor)
            && CUDABackend.flag("ONEBIT_CUDA_TILES")
        streamsTiles = useTiles && Kernel.ternaryTilesStreamSingle.runs(major: context.major, minor: context.minor)
        stagesAttentionRows = Kernel.attentionRows.runs(major: context.major, minor: context.minor)
        largestAttentionCluster =
            splitsAttention && Kernel.attentionRowsClustered.runs(major: context.major, minor: context.minor)
            ? min(
                KernelSource.attentionRowsMaximumSplits, kernels.largestCluster(of: .attentionRowsClustered, block: 128)
            )
            : 1
        useWarpgroups =
            KernelBuild.hasWarpgroups(major: context.major, minor: context.minor)
            && CUDABackend.flag("ONEBIT_CUDA_WARPGROUP")
    }

    private static func flag(_ name: String) -> Bool {
        guard let value = getenv(name) else { return true }
        return String(cString: value) != "0"
    }

    /// Device memory a model takes on the GPU: its weights as the kernels lay them out (with the int8 copy of the
    /// head where `int8Head`), the working buffers of a forward chunk with the logits of every row, one sequence's
    /// key/value cache of up to ``checkedContext`` positions (what `say` or `ppl` allocate), and
    /// ``workingHeadroom``.
    public static func residentBytes(config: ModelConfig, weights: ModelWeights, int8Head: Bool) -> Int {
        func ternary(_ m: TernaryMatrix) -> Int {
            let scales: Int
            switch m.scale {
            case .perTensor: scales = 1
            case .perBlock(_, let values): scales = values.count
            }
            return m.rows * CUDATernaryWeights.chunks(columns: m.columns) * 16 + scales * 4
        }
        var bytes = weights.layers.reduce(0) { total, layer in
            let norms =
                layer.attentionNorm.count + layer.attentionSubNorm.count + layer.feedForwardNorm.count
                + layer.feedForwardSubNorm.count
            return total + layer.projections.reduce(norms * 4) { $0 + ternary($1.matrix) }
        }
        bytes += weights.embeddings.byteCount + (weights.outputHead?.byteCount ?? 0) + weights.finalNorm.count * 4
        let head = weights.head
        if int8Head { bytes += head.rows * ((head.columns + 15) / 16 * 16) + head.rows * 4 }
        let attention = config.headCount * config.headDim, keyValue = config.kvHeadCount * config.headDim
        let hidden = config.hiddenSize, ffn = config.intermediateSize
        let floats = 3 * hidden + 2 * attention + 2 * keyValue + 2 * ffn
        bytes += chunkSize * (floats * 4 + hidden + attention + ffn + head.rows * 4)
        bytes += min(config.contextLength, Self.checkedContext) * config.layerCount * 2 * keyValue * 4
        return bytes + workingHeadroom
    }

    /// Device memory past the model's own for scratch buffers that grow with the steps, recorded steps and the
    /// compiled kernels.
    static let workingHeadroom = 512 << 20

    /// Positions of the one sequence's cache ``residentBytes(config:weights:int8Head:)`` counts: a model's whole
    /// context up to this. A model of a long context is not refused for a cache its commands rarely fill (32,768
    /// positions of Falcon3-10B's are 10.7 GB); the scheduler's pool has its own cap.
    static let checkedContext = 4_096

    /// Bytes of device memory the backend's buffers (weights, caches, activations, scratch) hold now, and the most
    /// they have held since ``resetPeakDeviceMemory()``; the driver's own (the context, kernels, graphs) is not
    /// counted.
    public var deviceMemory: (now: Int, peak: Int) {
        (context.allocatedBytes, context.peakAllocatedBytes)
    }

    /// Starts the peak of ``deviceMemory`` again from what the buffers hold now.
    public func resetPeakDeviceMemory() {
        context.resetPeakAllocation()
    }

    /// The GPU in words, e.g. `NVIDIA H100 80GB HBM3 (sm_90, 132 multiprocessors, clusters of up to 16)`.
    public var deviceDescription: String {
        let clusters = largestAttentionCluster > 1 ? ", clusters of up to \(largestAttentionCluster)" : ""
        let capability = "sm_\(context.major)\(context.minor)"
        return "\(context.name) (\(capability), \(context.multiprocessors) multiprocessors\(clusters))"
    }

    /// Throws if the kernels cannot run a model of `config` with `weights`, or the GPU has too little free memory
    /// for it (``residentBytes(config:weights:int8Head:)``): a model that does not fit is refused before any of it
    /// is uploaded, instead of an allocation failing halfway.
    public func validate(_ config: ModelConfig, weights: ModelWeights) throws(CUDAError) {
        guard config.headDim <= 256 && config.headDim % 2 == 0 else {
            throw .unsupportedShape("head_dim \(config.headDim) (at most 256, even)")
        }
        context.makeCurrent()
        let needed = Self.residentBytes(config: config, weights: weights, int8Head: int8Head)
        let free = context.freeMemory()
        guard needed <= free else { throw .insufficientMemory(needed: needed, free: free) }
        for layer in weights.layers {
            for matrix in [layer.query, layer.key, layer.value, layer.output, layer.gate, layer.up, layer.down] {
                if case .perBlock(let size, _) = matrix.scale,
                    !CUDATernaryWeights.supports(blockSize: size, columns: matrix.columns)
                {
                    throw .unsupportedShape("ternary scale blocks of \(size) columns (need a multiple of 64)")
                }
            }
        }
    }

    /// Repacks a ternary matrix and uploads it.
    public func prepare(_ matrix: TernaryMatrix) -> CUDATernaryWeights {
        context.makeCurrent()
        return CUDATernaryWeights(context, matrix)
    }

    /// Uploads a norm weight.
    public func prepare(_ vector: [Float]) -> CUDAVectorWeights {
        context.makeCurrent()
        return CUDAVectorWeights(context, vector)
    }

    /// Uploads an embedding table or output head in its stored precision.
    public func prepare(_ matrix: DenseMatrix) -> CUDADenseWeights {
        context.makeCurrent()
        return CUDADenseWeights(context, matrix)
    }

    /// A zeroed float buffer.
    public func makeActivations(tokens: Int, width: Int) -> CUDAActivations {
        context.makeCurrent()
        return CUDAActivations(context, tokens: tokens, width: width)
    }

    /// A zeroed int8 buffer.
    public func makeQuantizedActivations(tokens: Int, width: Int) -> CUDAQuantizedActivations {
        context.makeCurrent()
        return CUDAQuantizedActivations(context, tokens: tokens, width: width)
    }

    /// Positions per block of a key/value pool.
    public static let keyValueBlockPositions = KernelSource.keyValueBlockPositions

    /// Device memory a key/value pool leaves free for everything else (scratch that grows with the steps, recorded
    /// steps, the driver's own).
    static let keyValueHeadroom = 2 << 30

    /// The most key/value blocks for `layers` layers of `width` elements the GPU has memory for now, past
    /// ``keyValueHeadroom``: a pool of more could not allocate them all once its sequences hold them.
    public func keyValueBlockLimit(layers: Int, width: Int) -> Int {
        context.makeCurrent()
        let blockBytes = CUDAKeyValuePool.blockBytes(layers: layers, width: width)
        return max(1, (context.freeMemory() - Self.keyValueHeadroom) / blockBytes)
    }

    /// A pool of `blocks` blocks for `layers` layers of `width` (`kv_heads * head_dim`) elements, its device memory
    /// allocated as blocks are first used.
    public func makeKeyValuePool(layers: Int, width: Int, blocks: Int) -> CUDAKeyValuePool {
        context.makeCurrent()
        return CUDAKeyValuePool(context, layers: layers, width: width, blocks: blocks)
    }

    /// Uploads `tokens` and gathers their embedding rows into `x`. Every forward starts here, so this is where the
    /// context is bound to the calling thread.
    public func embed(_ tokens: [Int], from table: CUDADenseWeights, into x: CUDAActivations) {
        context.makeCurrent()
        let ids = tokens.map { Int32($0) }
        let buffer = scratch(&tokenBuffer, bytes: ids.count * 4)
        if !stepInputsUploaded { buffer.upload(ids) }
        let kernel: Kernel =
            switch table.storage {
            case .float32: .embedF32
            case .float16: .embedF16
            case .bfloat16: .embedBF16
            }
        launch(
            kernel, grid: ((table.columns + 255) / 256, tokens.count), block: 256,
            .address(buffer.address), .address(table.buffer.address), .int(table.columns), .address(x.buffer.address))
    }

    /// `count` values at `address`, once everything queued before has run.
    func download<Value: AdditiveArithmetic & BitwiseCopyable>(from address: UInt64, count: Int) -> [Value] {
        var values = [Value](repeating: .zero, count: count)
        values.withUnsafeMutableBytes { destination in
            context.must(
                context.driver.cuMemcpyDtoHAsync!(destination.baseAddress, address, destination.count, context.stream),
                "cuMemcpyDtoHAsync")
        }
        context.must(context.driver.cuStreamSynchronize!(context.stream), "cuStreamSynchronize")
        return values
    }

    /// Rows `rows` of `x`, row-major, copied to the host (the scheduler moves one sequence's rows this way).
    public func readRows(_ x: CUDAActivations, _ rows: Range<Int>) -> [Float] {
        context.makeCurrent()
        flush()
        return download(from: x.buffer.address + UInt64(rows.lowerBound * x.width * 4), count: rows.count * x.width)
    }

    /// Writes `count` rows (row-major in `rows`) into the first rows of `x`.
    public func writeRows(_ rows: [Float], count: Int, into x: CUDAActivations) {
        context.makeCurrent()
        flush()
        x.buffer.upload(Array(rows.prefix(count * x.width)))
    }

    /// The device memory bandwidth, in bytes read and written per second: the best of three rounds of `copies`
    /// device-to-device copies of `bytes` bytes, each round timed on the host from the first launch to the end of
    /// a synchronised stream.
    public func copyBandwidth(bytes: Int = 1 << 30, copies: Int = 10) -> Double {
        context.makeCurrent()
        flush()
        let words = bytes / 16
        let source = DeviceBuffer(context, byteCount: words * 16)
        let destination = DeviceBuffer(context, byteCount: words * 16)
        func copy() {
            emit(
                .copyWords, grid: (4096, 1), block: 256,
                [.address(source.address), .address(destination.address), .int(words)])
        }
        copy()
        context.must(context.driver.cuStreamSynchronize!(context.stream), "cuStreamSynchronize")
        let clock = ContinuousClock()
        var best = 0.0
        for _ in 0..<3 {
            let elapsed = clock.measure {
                for _ in 0..<copies { copy() }
                context.must(context.driver.cuStreamSynchronize!(context.stream), "cuStreamSynchronize")
            }
            let (seconds, attoseconds) = elapsed.components
            best = max(best, Double(2 * words * 16 * copies) / (Double(seconds) + Double(attoseconds) * 1e-18))
        }
        return best
    }

    /// Runs `body`, the operations of one step of `tokens` at `positions`, each segment's rows cached in its cache.
    /// A decoding step (one token per segment) is replayed from a CUDA graph: the tokens, positions and block
    /// tables go up first into the buffers the kernels read them from (attention reads the lengths from there too,
    /// so one graph serves every position and every set of sequences of that size), and the graph recorded for
    /// this shape, captured on the step's second run, is launched instead of `body` (on an H200, replaying the step of
    /// 64 sequences took `bench -p 128 -n 32 --batch 64` from 11,520 to 12,194 tokens/s).
    public func step(
        tokens: [Int], positions: [Int32], segments: [(rows: Range<Int>, cache: CUDAKeyValueCache)],
        tokensKept: Bool = false, _ body: () -> Void
    ) {
        context.makeCurrent()
        let decoding =
            !tokens.isEmpty && positions.count == tokens.count && segments.count == tokens.count
            && segments.enumerated().allSatisfy { $1.rows == $0..<$0 + 1 }
        precondition(
            !tokensKept || (decoding && tokenBuffer.map { $0.byteCount >= tokens.count * 4 } == true),
            "kept tokens are one a sequence, from a step of as many")
        guard useGraphs, decoding else {
            // Kept tokens are in the token buffer already, where the embedding reads them.
            stepInputsUploaded = tokensKept
            defer { stepInputsUploaded = false }
            body()
            flush()
            return
        }
        flush()
        let tokenInput = scratch(&tokenBuffer, bytes: tokens.count * 4)
        if !tokensKept { tokenInput.upload(tokens.map { Int32($0) }) }
        let positionInput = upload(positions, into: &positionCopy)
        // What the graph bakes in besides the transformer's own buffers: the addresses of the input buffers.
        let tables = deviceBlockTables(segments, rows: tokens.count)
        let key = [UInt64(tokens.count), tokenInput.address, positionInput.address, tables.blocks, tables.rows]
        if graphs.launch(key) { return }
        stepInputsUploaded = true
        defer { stepInputsUploaded = false }
        if graphs.isFirstRun(of: key) {
            body()
            flush()
            return
        }
        graphs.record(key) {
            body()
            flush()
        }
    }

    /// Launches everything queued. Products of several tokens that `ternary_tiles_n` turns down leave a rescale or
    /// row operation behind (``launchUntiled(_:activation:)``), which goes out after them.
    func flush() {
        flushRowOperation()
        flushRotations()
        flushProducts()
        flushRowOperation()
        releaseRopeStore()
    }

    // MARK: Plumbing

    /// A kernel argument.
    enum Argument {
        case address(UInt64)
        case int(Int)
        case float(Float)
    }

    /// Queues `kernel` on the stream with `arguments` in the kernel's parameter order, after the queued products.
    func launch(_ kernel: Kernel, grid: (Int, Int), block: Int, _ arguments: Argument...) {
        flush()
        emit(kernel, grid: grid, block: block, arguments)
    }

    /// Queues `kernel` on the stream, after the pending rotary embedding and cache store, with `sharedBytes` of
    /// dynamic shared memory (by default the kernel's ``Kernel/dynamicSharedBytes``) and clusters of `cluster`
    /// blocks.
    func emit(
        _ kernel: Kernel, grid: (Int, Int), block: Int, sharedBytes: Int? = nil, cluster: Int = 1,
        _ arguments: [Argument]
    ) {
        releaseRopeStore()
        withUnsafeTemporaryAllocation(of: UInt64.self, capacity: arguments.count) { slots in
            withUnsafeTemporaryAllocation(of: UnsafeMutableRawPointer?.self, capacity: arguments.count) { pointers in
                for (index, argument) in arguments.enumerated() {
                    let slot = UnsafeMutableRawPointer(slots.baseAddress! + index)
                    switch argument {
                    case .address(let value): slot.storeBytes(of: value, as: UInt64.self)
                    case .int(let value): slot.storeBytes(of: Int32(value), as: Int32.self)
                    case .float(let value): slot.storeBytes(of: value, as: Float.self)
                    }
                    pointers[index] = slot
                }
                withUnsafePointer(to: context.driver) { driver in
                    context.must(
                        ob_cuda_launch(
                            driver, kernels[kernel], UInt32(grid.0), UInt32(grid.1), UInt32(block),
                            UInt32(sharedBytes ?? kernel.dynamicSharedBytes), context.stream, pointers.baseAddress,
                            overlapLaunches && kernel.overlapsPredecessor ? 1 : 0, UInt32(cluster)),
                        "cuLaunchKernel(\(kernel.name))")
                }
            }
        }
    }

    /// The device copy of `positions`, uploaded only when they changed since the last call.
    func devicePositions(_ positions: [Int32]) -> UInt64 {
        if let held = positionCopy.buffer(holding: positions) { return held.address }
        return upload(positions, into: &positionCopy).address
    }

    /// Copies `values` into `copy`'s buffer, replaced by a larger one where needed (``scratch(_:bytes:roundingUp:)``),
    /// and records them as what it holds.
    func upload<Value: Equatable>(
        _ values: [Value], into copy: inout DeviceCopy<Value>, roundingUp: Bool = false
    ) -> DeviceBuffer {
        let buffer = scratch(&copy.buffer, bytes: values.count * MemoryLayout<Value>.stride, roundingUp: roundingUp)
        buffer.upload(values)
        copy.values = values
        return buffer
    }

    /// `buffer`, replaced by a larger one when it holds fewer than `bytes` bytes; `roundingUp` sizes the new one to
    /// the next power of two, for a buffer that grows a little at a time.
    func scratch(_ buffer: inout DeviceBuffer?, bytes: Int, roundingUp: Bool = false) -> DeviceBuffer {
        if let current = buffer, current.byteCount >= bytes { return current }
        // Recorded steps read the buffer this one replaces.
        graphs.dropAll()
        let size = max(bytes, 4096)
        let rounded = roundingUp ? 1 << (Int.bitWidth - (size - 1).leadingZeroBitCount) : size
        let grown = DeviceBuffer(context, byteCount: rounded)
        buffer = grown
        return grown
    }
}
