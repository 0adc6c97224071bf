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
/// host; token ids and positions go up once per forward.
public final class CUDABackend {
    private let context: CUDAContext
    private let kernels: KernelModule
    private var tokenBuffer: DeviceBuffer?
    /// The positions of a step: every layer passes the same array several times per forward.
    private var positionCopy = DeviceCopy<Int32>()
    /// The block tables of the sequences of a step (``deviceBlockTables(_:rows:)``).
    private var blockTableCopy = DeviceCopy<UInt64>()
    private var logitBuffer: DeviceBuffer?
    /// Row indices of ``logits(_:rows:head:)``: a greedy step of many sequences reads the same rows every time.
    private var logitRowCopy = DeviceCopy<Int32>()
    /// The bf16 planes of the rows a tensor-core head product reads.
    private var headPlanes: DeviceBuffer?
    /// Integer sums of split tensor-core products, zero between products (``Kernel/finishProducts`` clears them).
    private var partialSums: DeviceBuffer?
    /// Whether logits come from an int8 copy of a bf16 output head (half its bytes; opt-in, it moves the logits
    /// slightly: `onebit ppl --int8-head` measures by how much).
    public let int8Head: Bool
    /// The int8 copy of the head, made at first use.
    private var int8Copy: Int8Rows?
    /// A token's row quantized for the int8 head: its scale, then from byte 16 the values.
    private var quantizedRowBuffer: DeviceBuffer?

    /// A head's rows in int8 with one scale per row; `stride` bytes per row.
    private struct Int8Rows {
        let source: UInt64
        let codes: DeviceBuffer
        let scales: DeviceBuffer
        let stride: Int
    }
    private var argmaxBuffer: DeviceBuffer?
    /// The tokens ``argmaxKept(_:rows:head:step:of:)`` keeps, `[step][row]`, and how many of each.
    private var keptBuffer: DeviceBuffer?
    private var keptShape = (steps: 0, rows: 0)
    /// Kept tokens on their way to the host (``queueKeptTokens()``): how many, and the buffer they come from, held
    /// until they have arrived in `keptHost`, so that a run queued meanwhile may replace `keptBuffer`.
    private var keptCopy: (shape: (steps: Int, rows: Int), source: DeviceBuffer)?
    private var keptHost: HostBuffer?
    private lazy var keptArrival = StreamEvent(context)
    /// The random numbers, temperatures and min-p of ``drawTokens(_:rows:head:draws:)``, the tokens drawn, then the
    /// top-k and top-p.
    private var drawBuffer: DeviceBuffer?
    /// Each chunk's largest logits and kept mass, between the launches of a draw.
    private var drawChunkBuffer: DeviceBuffer?
    /// The sums of the rounds that find top-p nuclei, 4,096 a row
    /// (``queueNuclei(_:columns:chunk:chunks:rows:temperatures:topKs:topPs:)``).
    private var nucleusSums: DeviceBuffer?
    /// The rows' `Nucleus` records, the limits the draw reads among them.
    private var nucleusRecords: DeviceBuffer?
    /// The ranking's group minima, candidates, ranked keys, thresholds and candidate counts
    /// (``queueRanking(_:columns:rows:count:)``).
    private var rankingBuffer: DeviceBuffer?
    /// Per-split partial results of single-token attention (``Kernel/attentionSplit``).
    private var attentionPartials: DeviceBuffer?
    /// Zeroed counters of finished blocks, one a head, with which single-token attention finds the last split of
    /// each head. The kernel leaves them at zero.
    private var blockCounters: DeviceBuffer?

    /// Single-token products queued by ``multiply(_:_:tokens:into:)`` and not launched yet: consecutive products
    /// of the same activations go out as one launch, with a following residual add or gated activation folded in.
    private var pending: [PendingProduct] = []
    /// Whether ``step(tokens:positions:cache:_:)`` has uploaded the step's token and position already.
    private var stepInputsUploaded = false
    /// Recorded decoding steps. The graphs also bake in the addresses of the transformer's scratch buffers: a
    /// backend serves one transformer.
    private let graphs: StepGraphs

    /// Variants for measurement: `ONEBIT_CUDA_GRAPHS=0` runs decode steps eagerly, `ONEBIT_CUDA_FUSION=0` keeps
    /// one launch per product and the single-pass attention, `ONEBIT_CUDA_TILES=0` keeps single-token products off
    /// the tensor cores.
    private let useGraphs = CUDABackend.flag("ONEBIT_CUDA_GRAPHS")
    private let useFusion = CUDABackend.flag("ONEBIT_CUDA_FUSION")
    private let useTiles: Bool
    /// Whether one token's tile products may stream their tiles through each block (`ternary_tiles_stream_1`, sm_90
    /// and later; ``launchTiles(_:activation:)`` says which do).
    private let streamsTiles: Bool
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
    private let useTensorCores: Bool
    /// Whether prompt chunks with heads wider than ``KernelSource/prefillHeadDimension`` (Falcon3's 256) attend on the
    /// tensor cores too (``Kernel/attentionPrefillTensorCoresWide``, sm_90 and sm_100), rather than a block per head
    /// and token.
    private let attendsWideHeadsOnTensorCores: Bool
    /// Whether prompt chunks of up to ``prefillFourPartTokens`` tokens attend in blocks of four parts of half as many
    /// rows (``Kernel/attentionPrefillTensorCoresShort``, sm_90 and sm_100).
    private let attendsShortChunksInFourParts: Bool
    /// Whether rows too wide for ``Kernel/rmsNormQuantizeWide`` (Falcon3-10B's 23,040-wide feed-forward) are normalised
    /// by ``Kernel/rmsNormQuantizeLong``, a block per row holding it in shared memory (sm_80 and later).
    private let normsLongRows: Bool
    /// Whether steps of up to ``splitNormTokens`` tokens share each such row out over a thread block cluster
    /// (``Kernel/rmsNormQuantizeSplit``, sm_90 and later) instead.
    private let splitsLongNorms: Bool
    /// Whether those products, and the bf16 head of several tokens, run on Hopper's warpgroup tensor cores (`wgmma`,
    /// sm_90a: compute capability 9.0) instead of `mma.sync`: the products in blocks of 128 rows instead of 64. On an
    /// H200 the products took a 64-sequence step from 17,700-18,900 generated tokens/s to 19,200-20,600 and 512-token
    /// prompts from 30,100 to 36,800; the head then took it to 22,550-23,040 (211 us a step instead of 498).
    /// `ONEBIT_CUDA_WARPGROUP=0` turns both off.
    private let useWarpgroups: Bool
    /// Whether steps of several sequences attend with ``Kernel/attentionRows``, which stages keys and values with
    /// `cp.async` (sm_80 and later); before that, the rotary store and plain attention kernels serve them.
    private let stagesAttentionRows: Bool
    /// The most blocks of a cluster of ``Kernel/attentionRowsClustered`` this GPU runs (up to
    /// ``KernelSource/attentionRowsMaximumSplits``): 1 before sm_90, which has no clusters.
    private let largestAttentionCluster: Int

    /// A residual add or gated activation of several tokens, not launched yet: the RMSNorm + quantize of its
    /// result that follows in a layer does it on the way (``Kernel/rmsNormQuantizeWide``); anything else launches
    /// it first.
    private var pendingRowOperation: PendingRowOperation?

    private struct PendingRowOperation {
        let target: CUDAActivations
        let other: CUDAActivations
        let tokens: Int
        let mode: RowOperation
        /// The rescale that makes `other`, the output of a split product, when it is pending too.
        var finish: PendingFinish? = nil
    }

    /// What ``Kernel/rmsNormQuantizeWide`` does to its row first (`ROW_KEEP` ... `ROW_SILU_PRODUCT` in the source).
    private enum RowOperation: Int {
        case keep, add, relu2, silu, addProduct, relu2Product, siluProduct

        /// The same operation on a product already rescaled (``Kernel/finishProducts``).
        var withoutProduct: RowOperation {
            switch self {
            case .addProduct: .add
            case .relu2Product: .relu2
            case .siluProduct: .silu
            default: self
            }
        }
    }

    /// Whether the RMSNorm + quantize of rows `width` wide is ``Kernel/rmsNormQuantizeLong`` or
    /// ``Kernel/rmsNormQuantizeSplit``: rows wider than ``Kernel/rmsNormQuantizeWide`` takes, up to
    /// ``KernelSource/longNormWidth``, a multiple of 4, on a GPU that runs them.
    private func takesLongNorm(width: Int) -> Bool {
        normsLongRows && width > KernelSource.wideNormWidth && width <= KernelSource.longNormWidth && width % 4 == 0
    }

    /// The most tokens whose rows too wide for registers ``Kernel/rmsNormQuantizeSplit`` normalises, a cluster of
    /// blocks a row; more take ``Kernel/rmsNormQuantizeLong``, a block a row. On an H200, in Falcon3-10B's shape, one
    /// sequence decoded 441.1-441.7 tokens/s against 413.1-413.6, 16 sequences 3,468-3,476 against 3,345, 64
    /// sequences 9,723-9,736 against 9,736-9,738; 512-token prompts ran 19,556 tokens/s split, 19,532 not.
    static let splitNormTokens = 64

    /// The pending residual add or gated activation of `x`'s first `tokens` rows, handed to the norm of `x` that does
    /// it on the way; nil (and nothing taken) for another buffer or row count.
    private func takeRowOperation(of x: CUDAActivations, tokens: Int) -> PendingRowOperation? {
        guard let operation = pendingRowOperation, operation.target === x, operation.tokens == tokens else {
            return nil
        }
        pendingRowOperation = nil
        return operation
    }

    /// Whether the norm that follows a residual add or gated activation of rows `width` wide does it on the way.
    private func foldsRowOperation(width: Int) -> Bool {
        useFusion && (width <= KernelSource.wideNormWidth || takesLongNorm(width: width))
    }

    /// The rescale of a split tensor-core product of one to three matrices (``Kernel/finishProducts``) and their
    /// outputs, not launched yet: a residual add of the one output and the norm after it, the gated activation of
    /// the two (gate, up) and the norm after it, or the rotary embedding and cache store of the three (query, key,
    /// value) do it on the way.
    private var pendingFinish: (PendingFinish, [CUDAActivations])?

    private struct PendingFinish {
        let partial: UInt64
        let tokens: Int
        let inputScales: UInt64
        /// Scale, output and rows of each matrix, as ``Kernel/finishProducts`` takes them.
        let arguments: [Argument]
        let rows: Int
    }

    /// The single-token rotary embedding and cache store of the current layer, not launched yet: the single-token
    /// attention that follows does it (``Kernel/attentionSplit``); anything else launches it first.
    private var pendingRopeStore: PendingRopeStore?

    private struct PendingRopeStore {
        let query: CUDAActivations
        let keys: CUDAActivations
        let values: CUDAActivations
        let heads: Int
        let kvHeads: Int
        let headDim: Int
        let positions: UInt64
        let theta: Float
        /// The device block table of the sequence's cache.
        let blocks: UInt64
        let layer: Int
    }

    /// Tokens per forward pass the kernels are sized for: a prompt chunk this long fills the GPU (the tensor-core
    /// products run one block per 64 rows and 64 tokens). `ONEBIT_CUDA_CHUNK` overrides it.
    public static let chunkSize: Int = {
        guard let text = getenv("ONEBIT_CUDA_CHUNK"), let value = Int(String(cString: text)), value > 0 else {
            return 512
        }
        return value
    }()

    /// Splits of single-token attention over the cached positions.
    static let attentionSplits = 32
    /// Blocks of the first argmax pass of one row alone (at most 1024, a multiple of 32: the second pass is one
    /// block of as many threads).
    static let argmaxBlocks = 256
    /// Blocks of the first argmax pass per row when several rows are reduced at once (same limits).
    static let argmaxBlocksPerRow = 64
    /// Most decode-step graphs kept (a server whose batch size wanders over 1 to 64 sequences records one for
    /// each); a new one then replaces the one launched longest ago. On an H200, 64 greedy streams of 16 to 142
    /// tokens (a batch shrinking by one every two steps) were served at 7,919-7,945 tokens/s, against 6,381-6,567
    /// when more than 16 graphs started the collection over.
    static let graphLimit = 64

    /// Rotary embeddings not launched yet: a query and key rotation followed by the store of the keys go out as
    /// one launch.
    private var rotations: [PendingRotation] = []

    private struct PendingRotation {
        let x: CUDAActivations
        let tokens: Int
        let heads: Int
        let headDim: Int
        let positions: UInt64
        let theta: Float
    }

    private struct PendingProduct {
        let weights: CUDATernaryWeights
        let input: CUDAQuantizedActivations
        let tokens: Int
        let output: CUDAActivations
        var residual: CUDAActivations?
    }

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

    /// `y = rmsnorm(x) * weight`, one block per token.
    public func rmsNorm(
        _ x: CUDAActivations, weight: CUDAVectorWeights, epsilon: Float, tokens: Int, into y: CUDAActivations
    ) {
        launch(
            .rmsNorm, grid: (tokens, 1), block: 256, .address(x.buffer.address), .address(weight.buffer.address),
            .float(epsilon), .int(x.width), .address(y.buffer.address))
    }

    /// RMSNorm fused with per-token int8 quantization. Single-token steps keep it a launch of its own: done by the
    /// last block of the kernel that wrote the row, it took an H200 from 603 to 400 tokens/s on the 2B-4T shape (its
    /// passes over the row wait on memory one after another), and done by every block of the products that read
    /// the row, from 847 to 546 (BENCHMARKS.md).
    public func rmsNormQuantize(
        _ x: CUDAActivations, weight: CUDAVectorWeights, epsilon: Float, tokens: Int, into q: CUDAQuantizedActivations
    ) {
        if x.width <= KernelSource.wideNormWidth {
            // The fewest threads that hold the row in registers (8 values each): fewer warps to reduce over. On an
            // H200 320 instead of 1,024 threads for 2B-4T's 2,560-wide rows took decode from 666-677 to 711-713
            // tokens/s and a 64-sequence step from 11,053 to 11,573.
            let valuesAWarp = KernelSource.wideNormValues * 32
            let threads = max(128, min(KernelSource.wideNormThreads, (x.width + valuesAWarp - 1) / valuesAWarp * 32))
            let operation = takeRowOperation(of: x, tokens: tokens)
            var product: [Argument] = [.address(0), .address(0), .address(0), .address(0)]
            if let finish = operation?.finish {
                // finish_products' arguments, three a matrix: its scale, output and rows.
                product = [
                    .address(finish.partial), .address(finish.inputScales), finish.arguments[0], finish.arguments[3],
                ]
            }
            launch(
                .rmsNormQuantizeWide, grid: (tokens, 1), block: threads, .address(x.buffer.address),
                .address(weight.buffer.address), .float(epsilon), .int(x.width), .int(q.stride),
                .address(q.values.address), .address(q.scales.address),
                .address(operation?.other.buffer.address ?? 0), .int((operation?.mode ?? .keep).rawValue),
                product[0], product[1], product[2], product[3])
            return
        }
        if takesLongNorm(width: x.width) {
            let operation = takeRowOperation(of: x, tokens: tokens)
            flush()
            // These kernels do not rescale split products: their rescale runs first, as a kernel of its own.
            if let finish = operation?.finish { launchFinish(finish) }
            let arguments: [Argument] = [
                .address(x.buffer.address), .address(weight.buffer.address), .float(epsilon), .int(x.width),
                .int(q.stride), .address(q.values.address), .address(q.scales.address),
                .address(operation?.other.buffer.address ?? 0),
                .int((operation?.mode.withoutProduct ?? .keep).rawValue),
            ]
            if splitsLongNorms && tokens <= Self.splitNormTokens {
                let blocks = KernelSource.splitNormBlocks
                emit(
                    .rmsNormQuantizeSplit, grid: (blocks, tokens), block: KernelSource.splitNormThreads,
                    cluster: blocks, arguments)
            } else {
                emit(
                    .rmsNormQuantizeLong, grid: (tokens, 1), block: KernelSource.longNormThreads,
                    sharedBytes: x.width * 4, arguments)
            }
            return
        }
        launch(
            .rmsNormQuantize, grid: (tokens, 1), block: 256, .address(x.buffer.address),
            .address(weight.buffer.address), .float(epsilon), .int(x.width), .int(q.stride),
            .address(q.values.address), .address(q.scales.address))
    }

    /// `y = W q`. One token, and up to ``KernelSource/tileTokens`` where ``takesFewTokenTiles(_:tokens:)``, wait
    /// for the products after them that read the same activations, and for a residual add or gated activation
    /// they can fold in (``flushProducts(activation:)``). Otherwise the tensor cores for two or more tokens with one
    /// weight scale per tensor (on an H200, a step of 8 sequences decoded 3,190 tokens/s against 1,578 with the
    /// kernel below; 4 sequences 1,561 against 1,205), else a warp per output row, up to 8 tokens per pass over the
    /// weights.
    public func multiply(
        _ w: CUDATernaryWeights, _ q: CUDAQuantizedActivations, tokens: Int, into y: CUDAActivations
    ) {
        precondition(q.width == w.columns && y.width == w.rows, "matrix and buffers disagree")
        if useFusion
            && (tokens == 1 && w.chunks <= KernelSource.singleTokenMaximumChunks
                || takesFewTokenTiles(w, tokens: tokens))
        {
            flushRotations()
            if let first = pending.first, first.input !== q || first.tokens != tokens || pending.count == 3 { flush() }
            pending.append(PendingProduct(weights: w, input: q, tokens: tokens, output: y, residual: nil))
            return
        }
        multiplyUnqueued(w, q, tokens: tokens, into: y)
    }

    /// Whether products of `tokens` tokens (2 or more) with `w` wait in the queue for `ternary_tiles_n`: matrices of
    /// one scale a tensor, at most ``KernelSource/tileTokens`` tokens, and a tile with their activations within its
    /// shared memory. On an H200 steps of the 2B-4T shape decoded 1,743 tokens/s for 2 sequences instead of 1,350 on
    /// the tensor-core kernels of many tokens, 3,425 for 4 instead of 2,786, and 5,851 for 8 instead of 5,438.
    private func takesFewTokenTiles(_ w: CUDATernaryWeights, tokens: Int) -> Bool {
        useTiles && (2...KernelSource.tileTokens).contains(tokens) && w.blockChunks == 0
            && KernelSource.tileSharedBytes(matrices: 1, chunks: w.chunks, tokens: tokens)
                <= KernelSource.tileSharedLimit
    }

    /// `y = W q` launched now, on the tensor cores or a warp per output row (``multiply(_:_:tokens:into:)``).
    private func multiplyUnqueued(
        _ w: CUDATernaryWeights, _ q: CUDAQuantizedActivations, tokens: Int, into y: CUDAActivations
    ) {
        if tokens > 1 && w.blockChunks == 0 && useTensorCores {
            multiplyOnTensorCores([w], q, tokens: tokens, into: [y])
            return
        }
        launch(
            tokens == 1 ? .ternaryMatmulSingle : .ternaryMatmul, grid: ((w.rows + 7) / 8, (tokens + 7) / 8), block: 256,
            .address(w.codes.address),
            .int(w.rows), .int(w.chunks), .address(q.values.address), .address(q.scales.address), .int(tokens),
            .address(w.scales.address), .int(w.blockChunks), .address(y.buffer.address))
    }

    /// `ys[i] = ws[i] q` for matrices of the same width: two or more tokens with one weight scale per tensor go to
    /// the tensor cores in one launch for all of them (query, key and value; gate and up), anything else one product
    /// at a time.
    public func multiply(
        _ ws: [CUDATernaryWeights], _ q: CUDAQuantizedActivations, tokens: Int, into ys: [CUDAActivations]
    ) {
        guard tokens > 1, useTensorCores, (1...3).contains(ws.count),
            ws.allSatisfy({ $0.blockChunks == 0 && $0.chunks == ws[0].chunks }),
            !(useFusion && ws.allSatisfy { takesFewTokenTiles($0, tokens: tokens) })
        else {
            for (w, y) in zip(ws, ys) { multiply(w, q, tokens: tokens, into: y) }
            return
        }
        multiplyOnTensorCores(ws, q, tokens: tokens, into: ys)
    }

    /// The products of up to three matrices with per-tensor scales and the same width on the int8 tensor cores,
    /// one launch. Too few tiles (64 or 128 rows by 64 tokens) to fill the GPU (a prompt chunk, or a step of up to
    /// 64 sequences) split the columns too, into shares of at least 8 chunks, and rescale the summed integers in a
    /// second launch (on an H200 the split took a 64-sequence step of the 2B-4T shape from 7,822 to 10,557
    /// tokens/s); so do products of one to one and a half waves of tiles (on an H200, 512-token prompts of the
    /// 2B-4T shape, whose output and down products have 160 tiles, ran at 61,321-61,361 tokens/s against
    /// 60,601-60,663, and of Falcon3-10B's at 20,302-20,343 against 19,544-19,610).
    private func multiplyOnTensorCores(
        _ ws: [CUDATernaryWeights], _ q: CUDAQuantizedActivations, tokens: Int, into ys: [CUDAActivations]
    ) {
        for (w, y) in zip(ws, ys) {
            precondition(q.width == w.columns && y.width == w.rows, "matrix and buffers disagree")
        }
        let chunks = ws[0].chunks
        let tileRows = useWarpgroups ? KernelSource.warpgroupRows : 64
        let rowTiles = ws.reduce(0) { $0 + ($1.rows + tileRows - 1) / tileRows }
        let totalRows = ws.reduce(0) { $0 + $1.rows }
        let tiles = rowTiles * ((tokens + 63) / 64)
        let splits = Self.columnSplits(tiles: tiles, chunks: chunks, multiprocessors: context.multiprocessors)
        let share = (chunks + splits - 1) / splits
        let parts = (chunks + share - 1) / share
        // A pending rescale reads the sums buffer, which may be replaced (grown) below.
        flush()
        let partial = parts > 1 ? scratch(&partialSums, bytes: tokens * totalRows * 4).address : 0
        var matrices: [Argument] = []
        var scales: [Argument] = []
        for index in 0..<3 {
            if index < ws.count {
                let (w, y) = (ws[index], ys[index])
                matrices += [
                    .address(w.codes.address), .address(w.scales.address), .address(y.buffer.address), .int(w.rows),
                ]
                scales += [.address(w.scales.address), .address(y.buffer.address), .int(w.rows)]
            } else {
                matrices += [.address(0), .address(0), .address(0), .int(0)]
                scales += [.address(0), .address(0), .int(0)]
            }
        }
        emit(
            useWarpgroups ? .ternaryMatmulWarpgroup : .ternaryMatmulTensorCores,
            grid: (rowTiles, (tokens + 63) / 64 * parts), block: 256,
            [
                .int(chunks), .address(q.values.address), .address(q.scales.address), .int(tokens), .int(share),
                .address(partial),
            ] + matrices)
        guard parts > 1 else { return }
        // A residual add or gated activation and the norm after it, or the rotary embedding and cache store, may
        // follow and do the rescale on the way.
        pendingFinish = (
            PendingFinish(
                partial: partial, tokens: tokens, inputScales: q.scales.address, arguments: scales, rows: totalRows),
            ys
        )
    }

    /// Shares of its `chunks` columns a tensor-core product of `tiles` tiles splits into on a GPU of
    /// `multiprocessors`: enough for two blocks a multiprocessor where the tiles are fewer, two where they are one to
    /// one and a half waves (halves of the columns take the last wave from most multiprocessors idle to about as busy
    /// as the others: 1.5 block lengths instead of 2), and shares of at least 8 chunks.
    static func columnSplits(tiles: Int, chunks: Int, multiprocessors: Int) -> Int {
        let splits = max(1, min(2 * multiprocessors / tiles, chunks / 8))
        let lastWaveMostlyIdle = tiles > multiprocessors && 2 * tiles <= 3 * multiprocessors
        return splits == 1 && lastWaveMostlyIdle && chunks >= 16 ? 2 : splits
    }

    /// Rotates the heads of the first `tokens` rows of `x` in place.
    public func applyRoPE(
        _ x: CUDAActivations, tokens: Int, heads: Int, headDim: Int, positions: [Int32], theta: Float
    ) {
        let positions = devicePositions(positions)
        if useFusion {
            flushProducts()
            rotations.append(
                PendingRotation(
                    x: x, tokens: tokens, heads: heads, headDim: headDim, positions: positions, theta: theta))
            return
        }
        launch(
            .rope, grid: (tokens, 1), block: 256, .address(x.buffer.address), .int(heads), .int(headDim),
            .address(positions), .float(theta))
    }

    /// Writes keys and values of `tokens` rows into layer `layer` of the cache.
    public func store(
        keys: CUDAActivations, values: CUDAActivations, tokens: Int, positions: [Int32], layer: Int,
        in cache: CUDAKeyValueCache
    ) {
        let positions = devicePositions(positions)
        let tables = deviceBlockTables([(0..<tokens, cache)], rows: tokens)
        let width = keys.width
        if let (query, key) = queuedRotations(keys: keys, tokens: tokens, positions: positions, width: width) {
            if tokens == 1 {
                flushProducts()
                releaseRopeStore()
                pendingRopeStore = PendingRopeStore(
                    query: query.x, keys: keys, values: values, heads: query.heads, kvHeads: key.heads,
                    headDim: key.headDim, positions: positions, theta: key.theta, blocks: tables.blocks, layer: layer)
                return
            }
            launchRopeStore(query: query, key: key, values: values, tables: tables, layer: layer)
            return
        }
        launch(
            .storeKeyValue, grid: ((width + 255) / 256, tokens), block: 256, .address(keys.buffer.address),
            .address(values.buffer.address), .int(width), .address(positions), .address(tables.blocks),
            .address(tables.rows), .int(layer))
    }

    /// Causal attention of `tokens` queries. One token takes the split single-token kernel; prompt chunks of 16 or
    /// more tokens whose last sees ``prefillTensorCoreKeys`` keys or more the tensor-core kernel where the heads
    /// allow (sm_80 and later, head sizes a multiple of 8 up to 128, up to 256 on sm_90 and sm_100 from
    /// ``prefillWideTensorCoreKeys`` keys), other chunks the CUDA-core prefill kernel for heads up to 128; anything
    /// else one block per head and token.
    public func attention(
        queries: CUDAActivations, tokens: Int, positions: [Int32], layer: Int, cache: CUDAKeyValueCache,
        heads: Int, kvHeads: Int, headDim: Int, into out: CUDAActivations
    ) {
        let lastPosition = positions.max()
        let positions = devicePositions(positions)
        let blocks = deviceBlockTables([(0..<tokens, cache)], rows: tokens).blocks
        let shape = HeadShape(heads: heads, kvHeads: kvHeads, headDim: headDim)
        if tokens == 1 && useFusion && headDim % 4 == 0 {
            var rope: [Argument] = [.address(0), .address(0), .float(0)]
            if let r = pendingRopeStore, r.query === queries, r.blocks == blocks, r.layer == layer,
                r.positions == positions, r.heads == heads, r.kvHeads == kvHeads, r.headDim == headDim
            {
                pendingRopeStore = nil
                rope = [.address(r.keys.buffer.address), .address(r.values.buffer.address), .float(r.theta)]
            }
            let splits = Self.attentionSplits
            let partials = scratch(&attentionPartials, bytes: heads * splits * (headDim + 2) * 4)
            let counters = scratch(&blockCounters, bytes: heads * 4).address
            flush()
            emit(
                headDim <= KernelSource.attentionSplitHeadDim ? .attentionSplit : .attentionSplitWide,
                grid: (heads, splits),
                block: KernelSource.attentionSplitWarps * 32,
                [
                    .address(queries.buffer.address), .address(blocks), .int(layer), .int(heads), .int(kvHeads),
                    .int(headDim), .address(positions), .float(shape.scale), .address(partials.address),
                    .address(out.buffer.address), .address(counters),
                ] + rope)
            return
        }
        let rows = RowAddresses(
            queries: queries.buffer.address, out: out.buffer.address, positions: positions, tables: blocks, rows: 0)
        if launchPrefill(rows, tokens: tokens, lastPosition: Int(lastPosition ?? 0), shape: shape, layer: layer) {
            return
        }
        launchPlainAttention(rows, tokens: tokens, shape: shape, layer: layer)
    }

    /// Where a run of rows' queries, outputs, positions and block tables start on the device (`rows`: each row's
    /// table offset, or 0 where all read the one table at `tables`).
    private struct RowAddresses {
        var queries, out, positions, tables, rows: UInt64

        /// The same run from its `offset`th row on, `width` floats a row of queries and outputs.
        func dropping(_ offset: Int, width: Int) -> RowAddresses {
            RowAddresses(
                queries: queries + UInt64(4 * offset * width), out: out + UInt64(4 * offset * width),
                positions: positions + UInt64(4 * offset), tables: tables,
                rows: rows == 0 ? 0 : rows + UInt64(4 * offset))
        }
    }

    /// A model's attention heads.
    private struct HeadShape {
        var heads, kvHeads, headDim: Int

        /// What scores are scaled by: 1 / sqrt(headDim).
        var scale: Float { 1 / Float(headDim).squareRoot() }
    }

    /// Queues the attention of a prompt chunk of `tokens` rows of one sequence (one table at `rows.tables`) on a
    /// prefill kernel, and says whether one takes it: chunks of 16 or more tokens whose last sees
    /// ``prefillTensorCoreKeys`` keys or more the tensor-core kernel where the heads allow (sm_80 and later, head
    /// sizes a multiple of 8 up to 128; up to 256 on sm_90 and sm_100 from ``prefillWideTensorCoreKeys`` keys; in four
    /// parts on those for chunks of up to ``prefillFourPartTokens``), other chunks the CUDA-core kernel, for head
    /// sizes a multiple of 4 up to 128.
    private func launchPrefill(_ rows: RowAddresses, tokens: Int, lastPosition: Int, shape: HeadShape, layer: Int)
        -> Bool
    {
        let group = shape.heads / shape.kvHeads
        let limit = KernelSource.prefillHeadDimension
        let wide = shape.headDim > limit
        let tensorCores =
            lastPosition >= Self.prefillTensorCoreKeys - 1 && shape.headDim % 8 == 0 && useTensorCores
            && (!wide
                || attendsWideHeadsOnTensorCores && shape.headDim <= 2 * limit
                    && lastPosition >= Self.prefillWideTensorCoreKeys - 1)
        guard tokens >= 16 && shape.headDim % 4 == 0 && group <= 16 && (tensorCores || !wide) else { return false }
        let short = tensorCores && !wide && attendsShortChunksInFourParts && tokens <= Self.prefillFourPartTokens
        let tile = (tensorCores ? KernelSource.prefillTensorCoreRows(parts: short ? 4 : 2) : 16) / group
        let kernel: Kernel =
            if !tensorCores {
                .attentionPrefill
            } else if wide {
                .attentionPrefillTensorCoresWide
            } else {
                short ? .attentionPrefillTensorCoresShort : .attentionPrefillTensorCores
            }
        launch(
            kernel,
            grid: (shape.kvHeads, (tokens + tile - 1) / tile),
            block: tensorCores ? KernelSource.prefillTensorCoreWarps * 32 : 256,
            .address(rows.queries), .address(rows.tables), .int(layer), .int(shape.heads), .int(shape.kvHeads),
            .int(shape.headDim), .address(rows.positions), .int(tokens), .int(tile),
            .float(shape.scale), .address(rows.out))
        return true
    }

    /// Queues attention of `tokens` rows, one block per head and row.
    private func launchPlainAttention(_ rows: RowAddresses, tokens: Int, shape: HeadShape, layer: Int) {
        launch(
            .attention, grid: (shape.heads, tokens), block: 256, .address(rows.queries), .int(shape.heads),
            .int(shape.kvHeads), .int(shape.headDim), .address(rows.positions),
            .float(shape.scale), .address(rows.out), .address(rows.tables),
            .address(rows.rows), .int(layer))
    }

    /// Keys the last token of a prompt chunk sees from which its attention runs on the tensor cores. On an H200, in
    /// 2B-4T's shape, with the two-part kernel: 96-token prompts at 29,802-30,107 tokens/s against 29,385-29,391 on
    /// the CUDA cores, 64-token ones at 24,015-24,413 against 24,642-24,724, 32-token ones at 13,731-14,074 against
    /// 14,231-14,466.
    static let prefillTensorCoreKeys = 96

    /// The most tokens of a chunk whose attention on the tensor cores runs in four parts a block instead of two:
    /// twice the blocks, each warp's chain of instructions half as long. On an H200, in 2B-4T's shape, prompts of 128
    /// tokens ran at 39,223 tokens/s against 36,543, of 192 at 48,003 against 44,509, of 256 at 55,569 against
    /// 51,116, of 384 at 61,009 against 57,718, of 512 at 60,811 against 61,312; 64 prompts of 128 in the server's
    /// steps at 39,299 against 36,706.
    static let prefillFourPartTokens = 384

    /// The same for heads wider than ``KernelSource/prefillHeadDimension``, whose kernel has fewer, larger blocks
    /// (Falcon3-10B's 512-token prompt: 4 kv heads by 25 tiles of 21 tokens). Below it they go to the plain kernel, a
    /// block per head and token. On an H200, in Falcon3-10B's shape, prompts of 384 tokens ran at 17,678 tokens/s
    /// against 15,546, of 256 at 17,737 against 17,675, of 192 at 16,374 against 17,491, of 128 at 14,950 against
    /// 16,987.
    static let prefillWideTensorCoreKeys = 256

    /// Stores and attends the rows of a step of several sequences, each against its own cache: kernels that take per
    /// row the address of its sequence's cache, so no row leaves the GPU. A decoding step (one row per sequence) is
    /// one launch that also rotates the rows and stores them (on an H200 it took `bench -p 128 -n 32 --batch 64` from
    /// 16,018 to 19,075 tokens/s, and `-p 1000 -n 16 --batch 64` from 9,352 to 10,631). Few sequences spread each
    /// one's positions over a cluster of blocks (``attentionRowsSplits(clusters:)``): on an H200, 8 sequences at
    /// 5,311 instead of 4,909 tokens/s, and with 1,000-token prompts 4,197 instead of 2,485. A step that also reads
    /// prompts (the server's, which mixes prompt chunks with generating sequences) stores every row, then gives each
    /// prompt chunk the prefill kernel it would take alone and the other rows the plain kernel.
    public func attendSequences(
        keys: CUDAActivations, values: CUDAActivations, queries: CUDAActivations, positions: [Int32],
        segments: [(rows: Range<Int>, cache: CUDAKeyValueCache)], layer: Int, heads: Int, kvHeads: Int,
        headDim: Int, into out: CUDAActivations
    ) {
        let tokens = positions.count
        let attendsInRows =
            stagesAttentionRows && segments.allSatisfy({ $0.rows.count == 1 }) && headDim == 128 && heads / kvHeads <= 4
        let splits = attendsInRows ? attentionRowsSplits(clusters: kvHeads * tokens) : 1
        let positionAddress = devicePositions(positions)
        let tables = deviceBlockTables(segments, rows: tokens)
        let width = kvHeads * headDim
        let rotations = queuedRotations(keys: keys, tokens: tokens, positions: positionAddress, width: width)
        let shape = HeadShape(heads: heads, kvHeads: kvHeads, headDim: headDim)
        if attendsInRows {
            // One token per sequence: a block (or a cluster of `splits`) per kv head and token rotates and stores its
            // heads, then reads each key and value once for the whole group of query heads.
            var product = Self.noFinish
            if let (query, key) = rotations {
                product = takeFinish(query: query.x, key: key.x, values: values, tokens: tokens)
            }
            let arguments: [Argument] = [
                .address(queries.buffer.address), .int(heads), .address(keys.buffer.address),
                .address(values.buffer.address), .int(kvHeads), .address(positionAddress),
                .float(rotations?.key.theta ?? 0), .int(rotations == nil ? 0 : 1), .float(shape.scale),
                .address(out.buffer.address), .address(tables.blocks), .address(tables.rows), .int(layer),
            ]
            flush()
            if splits > 1 {
                emit(
                    .attentionRowsClustered, grid: (kvHeads * splits, tokens), block: 128, cluster: splits,
                    arguments + product + [.int(splits)])
            } else {
                emit(.attentionRows, grid: (kvHeads, tokens), block: 128, arguments + product)
            }
            return
        }
        if let (query, key) = rotations {
            launchRopeStore(query: query, key: key, values: values, tables: tables, layer: layer)
        } else {
            launch(
                .storeKeyValue, grid: ((width + 255) / 256, tokens), block: 256, .address(keys.buffer.address),
                .address(values.buffer.address), .int(width), .address(positionAddress), .address(tables.blocks),
                .address(tables.rows), .int(layer))
        }
        // Each prompt chunk takes a prefill kernel, as it would alone; the other rows the plain kernel, a launch for
        // each run of consecutive rows.
        let all = RowAddresses(
            queries: queries.buffer.address, out: out.buffer.address, positions: positionAddress,
            tables: tables.blocks, rows: tables.rows)
        var plainRows: [Range<Int>] = []
        for ((rows, _), tableStart) in zip(segments, Self.tableStarts(segments)) where !rows.isEmpty {
            var chunk = all.dropping(rows.lowerBound, width: heads * headDim)
            chunk.tables += UInt64(8 * tableStart)
            chunk.rows = 0
            let last = Int(positions[rows].max() ?? 0)
            if !launchPrefill(chunk, tokens: rows.count, lastPosition: last, shape: shape, layer: layer) {
                plainRows.append(rows)
            }
        }
        for run in Self.consecutiveRuns(plainRows) {
            launchPlainAttention(
                all.dropping(run.lowerBound, width: heads * headDim), tokens: run.count, shape: shape, layer: layer)
        }
    }

    /// Where each segment's block table starts among the tables ``deviceBlockTables(_:rows:)`` lays end to end, in
    /// entries.
    private static func tableStarts(_ segments: [(rows: Range<Int>, cache: CUDAKeyValueCache)]) -> [Int] {
        offsets(ofLengths: segments.map(\.cache.blockAddresses.count))
    }

    /// Where each of runs of `lengths` laid end to end starts.
    static func offsets(ofLengths lengths: [Int]) -> [Int] {
        var start = 0
        return lengths.map { length in
            defer { start += length }
            return start
        }
    }

    /// `ranges` sorted and joined where one ends where the next begins.
    static func consecutiveRuns(_ ranges: [Range<Int>]) -> [Range<Int>] {
        var runs: [Range<Int>] = []
        for range in ranges.sorted(by: { $0.lowerBound < $1.lowerBound }) {
            if let last = runs.last, last.upperBound == range.lowerBound {
                runs[runs.count - 1] = last.lowerBound..<range.upperBound
            } else {
                runs.append(range)
            }
        }
        return runs
    }

    /// Blocks a cluster of ``Kernel/attentionRowsClustered`` for a step of `clusters` kv heads and tokens.
    private func attentionRowsSplits(clusters: Int) -> Int {
        Self.attentionRowsSplits(
            clusters: clusters, multiprocessors: context.multiprocessors, largest: largestAttentionCluster)
    }

    /// Blocks a cluster for `clusters` kv heads and tokens on a GPU of `multiprocessors` whose clusters hold at most
    /// `largest` blocks: doubled while the blocks are no more than the multiprocessors (so they end up at most twice
    /// as many), so one or a few sequences fill the GPU; 1 (no clusters) from more kv heads and tokens than
    /// multiprocessors. On an H200 (2B-4T's 5 kv heads) 8 sequences decoded 5,311 tokens/s in clusters of 4 and 5,213
    /// in clusters of 8.
    static func attentionRowsSplits(clusters: Int, multiprocessors: Int, largest: Int) -> Int {
        var splits = 1
        while splits * 2 <= largest && clusters * splits <= multiprocessors {
            splits *= 2
        }
        return splits
    }

    /// The block tables of the caches of a step's `rows` rows on the device, uploaded when they differ from the last
    /// ones (every layer of a step passes the same), as the kernels read them (`row_blocks`): for one sequence its
    /// table, and `rows` 0; for several, the row offsets (one `Int32` per row, in table entries from `blocks`) and
    /// then every sequence's table, laid end to end from `blocks`. The offsets come first so that `blocks` stays put
    /// for a step of the same rows as tables grow, which a recorded step needs.
    private func deviceBlockTables(
        _ segments: [(rows: Range<Int>, cache: CUDAKeyValueCache)], rows: Int
    ) -> (blocks: UInt64, rows: UInt64) {
        var words: [UInt64] = []
        var offsetWords = 0
        if segments.count == 1 {
            words = segments[0].cache.blockAddresses
        } else {
            var offsets = [Int32](repeating: 0, count: rows + rows % 2)
            for ((range, _), start) in zip(segments, Self.tableStarts(segments)) {
                for row in range { offsets[row] = Int32(start) }
            }
            let tables = segments.flatMap(\.cache.blockAddresses)
            offsetWords = offsets.count / 2
            words = stride(from: 0, to: offsets.count, by: 2).map {
                UInt64(UInt32(bitPattern: offsets[$0])) | UInt64(UInt32(bitPattern: offsets[$0 + 1])) << 32
            }
            words += tables
        }
        let tables: DeviceBuffer
        if let held = blockTableCopy.buffer(holding: words) {
            tables = held
        } else {
            // A queued kernel may still read the tables this upload replaces.
            flush()
            tables = upload(words, into: &blockTableCopy, roundingUp: true)
        }
        let base = tables.address
        return offsetWords == 0 ? (base, 0) : (base + UInt64(8 * offsetWords), base)
    }

    /// `gate = act(gate) * up`.
    public func gatedActivation(
        _ activation: ModelConfig.Activation, gate: CUDAActivations, up: CUDAActivations, tokens: Int
    ) {
        if pending.count == 2, pending[0].tokens == tokens, pending[0].output === gate, pending[1].output === up,
            pending[0].weights.rows == pending[1].weights.rows, pending[0].residual == nil, pending[1].residual == nil
        {
            flushRotations()
            flushProducts(activation: activation == .relu2 ? 1 : 2)
            return
        }
        if tokens > 1 && foldsRowOperation(width: gate.width) {
            var finish: PendingFinish?
            if let (pending, outputs) = pendingFinish, outputs.count == 2, outputs[0] === gate, outputs[1] === up,
                pending.tokens == tokens
            {
                pendingFinish = nil
                finish = pending
            }
            flush()
            let mode: RowOperation =
                switch activation {
                case .relu2: finish == nil ? .relu2 : .relu2Product
                case .silu: finish == nil ? .silu : .siluProduct
                }
            pendingRowOperation = PendingRowOperation(
                target: gate, other: up, tokens: tokens, mode: mode, finish: finish)
            return
        }
        let count = tokens * gate.width
        let kernel: Kernel =
            switch activation {
            case .relu2: .relu2Multiply
            case .silu: .siluMultiply
            }
        launch(
            kernel, grid: ((count + 255) / 256, 1), block: 256, .address(gate.buffer.address),
            .address(up.buffer.address), .int(count))
    }

    /// `x += delta`.
    public func add(_ delta: CUDAActivations, to x: CUDAActivations, tokens: Int) {
        if let last = pending.last, last.tokens == tokens, last.output === delta, last.residual == nil, delta !== x,
            !pending.contains(where: { $0.output === x })
        {
            pending[pending.count - 1].residual = x
            flushProducts()
            return
        }
        if tokens > 1 && foldsRowOperation(width: x.width) {
            if let (finish, outputs) = pendingFinish, outputs.count == 1, outputs[0] === delta, delta !== x,
                finish.tokens == tokens
            {
                pendingFinish = nil
                flush()
                pendingRowOperation = PendingRowOperation(
                    target: x, other: delta, tokens: tokens, mode: .addProduct, finish: finish)
                return
            }
            flush()
            pendingRowOperation = PendingRowOperation(target: x, other: delta, tokens: tokens, mode: .add)
            return
        }
        let count = tokens * x.width
        launch(
            .add, grid: ((count + 255) / 256, 1), block: 256, .address(x.buffer.address),
            .address(delta.buffer.address), .int(count))
    }

    /// The logits of row `row` of `x`: a GEMV over the head on the GPU, then one copy to the host.
    public func logits(_ x: CUDAActivations, row: Int, head: CUDADenseWeights) -> [Float] {
        context.makeCurrent()
        let output = scratch(&logitBuffer, bytes: head.rows * 4)
        launchHead(x, row: row, head: head, into: output.address)
        return download(from: output.address, count: head.rows)
    }

    /// The logits of each of `rows` of `x`: the head is read once for every 8 of them (16 with the int8 head), and
    /// each row's logits are summed in the same order as ``logits(_:row:head:)`` sums them.
    public func logits(_ x: CUDAActivations, rows: [Int], head: CUDADenseWeights) -> [[Float]] {
        guard rows.count > 1 else { return rows.map { logits(x, row: $0, head: head) } }
        context.makeCurrent()
        let output = queueLogits(x, rows: rows, head: head)
        let all: [Float] = download(from: output.address, count: rows.count * head.rows)
        return (0..<rows.count).map { Array(all[$0 * head.rows..<($0 + 1) * head.rows]) }
    }

    /// Queues the logits of each of `rows` of `x` into the logit buffer, `head.rows` floats a row in the order of
    /// `rows`, as ``logits(_:rows:head:)`` computes them, and returns it.
    private func queueLogits(_ x: CUDAActivations, rows: [Int], head: CUDADenseWeights) -> DeviceBuffer {
        let output = scratch(&logitBuffer, bytes: rows.count * head.rows * 4)
        if rows.count > 1 {
            launchHead(x, rows: rows, head: head, into: output.address)
        } else {
            for (index, row) in rows.enumerated() {
                launchHead(x, row: row, head: head, into: output.address + UInt64(index * head.rows * 4))
            }
        }
        return output
    }

    /// Queues the head's products with each of `rows` of `x` into `output` (`head.rows` floats per row, in the
    /// order of `rows`): a bf16 head on the tensor cores (the activations split into two bf16 planes that keep 16
    /// of their 24 significant bits; `onebit selftest` bounds the difference from the CPU's fp32 GEMV), the int8
    /// head as ``launchInt8Head(_:width:rows:count:head:into:)`` computes it, otherwise reading the head once for
    /// every 8 rows. Where the `wgmma` product runs (``usesWarpgroupHead(_:)``),
    /// `argmax` names where it leaves each block's largest logit and row of each token for `argmax_final`, and
    /// `output` may be 0.
    private func launchHead(
        _ x: CUDAActivations, rows: [Int], head: CUDADenseWeights, into output: UInt64,
        argmax: (values: UInt64, indices: UInt64) = (0, 0)
    ) {
        let rowIndices = rows.map { Int32($0) }
        let indices: DeviceBuffer
        if let held = logitRowCopy.buffer(holding: rowIndices) {
            indices = held
        } else {
            // The last forward's kernels may still read the indices this upload replaces.
            flush()
            indices = upload(rowIndices, into: &logitRowCopy)
        }
        if usesInt8Head(head) {
            launchInt8Head(
                x.buffer.address, width: x.width, rows: indices, count: rows.count, head: head, into: output)
            return
        }
        if head.storage == .bfloat16 && useTensorCores && head.columns % 32 == 0 {
            let planes = scratch(&headPlanes, bytes: KernelSource.headPlanes * rows.count * head.columns * 2)
            launch(
                .splitBF16, grid: ((head.columns + 255) / 256, rows.count), block: 256, .address(x.buffer.address),
                .int(x.width), .address(indices.address), .int(rows.count), .int(head.columns),
                .address(planes.address))
            if usesWarpgroupHead(head) {
                launch(
                    .denseGemmBF16Warpgroup, grid: (Self.warpgroupHeadBlocks(head), (rows.count + 63) / 64),
                    block: 256, .address(head.buffer.address), .int(head.rows), .int(head.columns),
                    .address(planes.address), .int(rows.count), .address(output), .address(argmax.values),
                    .address(argmax.indices))
                return
            }
            launch(
                .denseGemmBF16TensorCores, grid: ((head.rows + 127) / 128, (rows.count + 63) / 64), block: 256,
                .address(head.buffer.address), .int(head.rows), .int(head.columns), .address(planes.address),
                .int(rows.count), .address(output))
            return
        }
        let kernel: Kernel =
            switch head.storage {
            case .float32: .denseGemmF32
            case .float16: .denseGemmF16
            case .bfloat16: .denseGemmBF16
            }
        launch(
            kernel, grid: ((head.rows + 7) / 8, (rows.count + 7) / 8), block: 256, .address(head.buffer.address),
            .int(head.rows), .int(head.columns), .address(x.buffer.address), .int(x.width), .address(indices.address),
            .int(rows.count), .address(output))
    }

    /// Whether the head of several rows runs on Hopper's warpgroup tensor cores (`dense_gemm_bf16_wgmma`), which can
    /// also do the argmax's first pass.
    private func usesWarpgroupHead(_ head: CUDADenseWeights) -> Bool {
        !usesInt8Head(head) && head.storage == .bfloat16 && useTensorCores && useWarpgroups && head.columns % 64 == 0
    }

    /// Blocks of `dense_gemm_bf16_wgmma` along the head's rows: 256 rows each.
    private static func warpgroupHeadBlocks(_ head: CUDADenseWeights) -> Int { (head.rows + 255) / 256 }

    /// `count` values at `address`, once everything queued before has run.
    private func download<Value: AdditiveArithmetic & BitwiseCopyable>(from address: UInt64, count: Int) -> [Value] {
        var values = [Value](repeating: .zero, count: count)
        values.withUnsafeMutableBytes { destination in
            context.must(
                context.driver.cuMemcpyDtoHAsync!(destination.baseAddress, address, destination.count, context.stream),
                "cuMemcpyDtoHAsync")
        }
        context.must(context.driver.cuStreamSynchronize!(context.stream), "cuStreamSynchronize")
        return values
    }

    /// Queues the head's product with row `row` of `x` into `output` (`head.rows` floats): the stored precision's
    /// GEMV, or with the int8 head the CPU's int8 arithmetic (the row quantized per token, exact integer dots).
    private func launchHead(_ x: CUDAActivations, row: Int, head: CUDADenseWeights, into output: UInt64) {
        let input = x.buffer.address + UInt64(row * x.width * 4)
        if usesInt8Head(head) {
            launchInt8Head(input, width: x.width, rows: nil, count: 1, head: head, into: output)
            return
        }
        let kernel: Kernel =
            switch head.storage {
            case .float32: .denseGemvF32
            case .float16: .denseGemvF16
            case .bfloat16: .denseGemvBF16
            }
        launch(
            kernel, grid: ((head.rows + 7) / 8, 1), block: 256, .address(head.buffer.address), .int(head.rows),
            .int(head.columns), .address(input), .address(output))
    }

    /// Queues the int8 head's products with `count` rows of the activations at `input` (rows `width` floats apart:
    /// those `rows` names, or the first; `head.columns` of each) into `output`, `head.rows` floats a row in that
    /// order: the rows quantized per token, then exact integer dots; several rows on the int8 tensor cores, the head
    /// read once for every ``KernelSource/int8TensorCoreTokens`` rows (every ``KernelSource/int8HeadTokens`` where
    /// the GPU has none). Each row's logits are bit for bit what it gets alone, as on the CPU.
    private func launchInt8Head(
        _ input: UInt64, width: Int, rows indices: DeviceBuffer?, count: Int, head: CUDADenseWeights,
        into output: UInt64
    ) {
        let rows = int8Rows(of: head)
        // The rows' scales, then their codes from a 16-byte boundary.
        let codesAt = (count * 4 + 15) / 16 * 16
        let quantized = scratch(&quantizedRowBuffer, bytes: codesAt + count * rows.stride)
        let codes = quantized.address + UInt64(codesAt)
        launch(
            .quantizeRows, grid: (count, 1), block: 1024, .address(input), .int(width),
            .address(indices?.address ?? 0), .int(head.columns), .int(rows.stride), .address(codes),
            .address(quantized.address))
        // int8_gemv is int8_gemm for one token, without the token count.
        var arguments: [Argument] = [
            .address(rows.codes.address), .address(rows.scales.address), .int(head.rows), .int(rows.stride),
            .address(codes), .address(quantized.address),
        ]
        if count > 1 { arguments.append(.int(count)) }
        arguments.append(.address(output))
        // quantize_rows' launch flushed the queue.
        if count > 1, Kernel.int8GemmTensorCores.runs(major: context.major, minor: context.minor) {
            let rowsABlock = KernelSource.int8TensorCoreRows, tokensABlock = KernelSource.int8TensorCoreTokens
            emit(
                .int8GemmTensorCores,
                grid: ((head.rows + rowsABlock - 1) / rowsABlock, (count + tokensABlock - 1) / tokensABlock),
                block: 256, arguments)
            return
        }
        let tokensABlock = count == 1 ? 1 : KernelSource.int8HeadTokens
        emit(
            count == 1 ? .int8Gemv : .int8Gemm, grid: ((head.rows + 7) / 8, (count + tokensABlock - 1) / tokensABlock),
            block: 256, arguments)
    }

    /// Whether `head` is computed through its int8 copy.
    private func usesInt8Head(_ head: CUDADenseWeights) -> Bool {
        int8Head && head.storage == .bfloat16
    }

    /// The int8 copy of `head` (`ob_int8_rows_from_bf16`'s rule), made on the GPU at first use.
    private func int8Rows(of head: CUDADenseWeights) -> Int8Rows {
        if let rows = int8Copy, rows.source == head.buffer.address { return rows }
        let stride = (head.columns + 15) / 16 * 16
        let rows = Int8Rows(
            source: head.buffer.address, codes: DeviceBuffer(context, byteCount: head.rows * stride),
            scales: DeviceBuffer(context, byteCount: head.rows * 4), stride: stride)
        launch(
            .int8RowsFromBF16, grid: (head.rows, 1), block: 256, .address(head.buffer.address), .int(head.columns),
            .int(stride), .address(rows.codes.address), .address(rows.scales.address))
        int8Copy = rows
        return rows
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

    /// The index of the largest logit of row `row` of `x` (the lowest on ties): the head's GEMV and the argmax on
    /// the GPU, and only the index comes back.
    public func argmax(_ x: CUDAActivations, row: Int, head: CUDADenseWeights) -> Int {
        context.makeCurrent()
        let index: [Int32] = download(from: queueArgmax(x, rows: [row], head: head), count: 1)
        return Int(index[0])
    }

    /// The index of the largest logit of each of `rows` of `x` (the lowest on ties): the head's products as
    /// ``logits(_:rows:head:)`` computes them, then one argmax per row on the GPU, and only the indices come back.
    public func argmax(_ x: CUDAActivations, rows: [Int], head: CUDADenseWeights) -> [Int] {
        guard rows.count > 1 else { return rows.map { argmax(x, row: $0, head: head) } }
        context.makeCurrent()
        let indices: [Int32] = download(from: queueArgmax(x, rows: rows, head: head), count: rows.count)
        return indices.map { Int($0) }
    }

    /// Queues the head's products of `rows` of `x` (one row alone, or several at once) and the index of each row's
    /// largest logit (the lowest on ties): a first pass of blocks per row (the `wgmma` head's own blocks, where it
    /// runs), a second of one block per row. The indices go to `result` (by default the start of the argmax scratch
    /// buffer), and also to `feed` where not 0; returns where they go.
    private func queueArgmax(
        _ x: CUDAActivations, rows: [Int], head: CUDADenseWeights, into result: UInt64? = nil,
        feeding feed: UInt64 = 0
    ) -> UInt64 {
        let fused = rows.count > 1 && usesWarpgroupHead(head)
        let blocks =
            fused ? Self.warpgroupHeadBlocks(head) : rows.count == 1 ? Self.argmaxBlocks : Self.argmaxBlocksPerRow
        let partials = scratch(&argmaxBuffer, bytes: rows.count * (4 + 8 * blocks))
        let values = partials.address + UInt64(4 * rows.count)
        let indices = values + UInt64(4 * blocks * rows.count)
        if fused {
            // The head's blocks leave each one's largest logit of each row, so no logits are stored and no first
            // argmax pass reads them (on an H200 that pass took 17 us of a 64-sequence step, after 33 MB of logits).
            launchHead(x, rows: rows, head: head, into: 0, argmax: (values, indices))
        } else {
            let output = scratch(&logitBuffer, bytes: rows.count * head.rows * 4)
            if rows.count == 1 {
                launchHead(x, row: rows[0], head: head, into: output.address)
            } else {
                launchHead(x, rows: rows, head: head, into: output.address)
            }
            launch(
                .argmaxPartial, grid: (blocks, rows.count), block: 256, .address(output.address), .int(head.rows),
                .address(values), .address(indices))
        }
        let target = result ?? partials.address
        // At most 256 threads a row: the second pass loops over the first's blocks.
        launch(
            .argmaxFinal, grid: (rows.count, 1), block: min(blocks, 256), .address(values), .address(indices),
            .int(blocks), .address(target), .address(feed))
        return target
    }

    /// ``argmax(_:rows:head:)`` whose indices stay on the GPU: they become the tokens of the next step, which
    /// reads them from the token buffer (``step(tokens:positions:segments:tokensKept:_:)``), and step `index` of
    /// `count` kept for ``keptTokens()``. Returns the indices now where it cannot keep them: before a step has made
    /// the token buffer.
    public func argmaxKept(
        _ x: CUDAActivations, rows: [Int], head: CUDADenseWeights, step index: Int, of count: Int
    ) -> [Int]? {
        guard let (kept, feed) = keptTarget(rows: rows, step: index, of: count) else {
            return argmax(x, rows: rows, head: head)
        }
        _ = queueArgmax(x, rows: rows, head: head, into: kept, feeding: feed)
        return nil
    }

    /// ``drawTokens(_:rows:head:draws:)`` whose tokens stay on the GPU as
    /// ``argmaxKept(_:rows:head:step:of:)``'s do; a row of temperature 0 takes its argmax. Returns the tokens now
    /// before a step has made the token buffer.
    public func drawKept(
        _ x: CUDAActivations, rows: [Int], head: CUDADenseWeights, draws: Draws, step index: Int, of count: Int
    ) -> [Int]? {
        guard let (kept, feed) = keptTarget(rows: rows, step: index, of: count) else {
            return drawTokens(x, rows: rows, head: head, draws: draws)
        }
        _ = queueDraws(x, rows: rows, head: head, draws: draws, into: kept, feeding: feed)
        return nil
    }

    /// Where step `index` of a run of `count` keeps the tokens of `rows` (a slot of the kept buffer, made at the
    /// run's first step), and the token buffer the next step reads them from; nil before a step has made that.
    private func keptTarget(rows: [Int], step index: Int, of count: Int) -> (kept: UInt64, feed: UInt64)? {
        guard let tokens = tokenBuffer, tokens.byteCount >= rows.count * 4 else { return nil }
        context.makeCurrent()
        if index == 0 {
            keptShape = (steps: count, rows: rows.count)
            _ = scratch(&keptBuffer, bytes: count * rows.count * 4)
        }
        precondition(keptShape.rows == rows.count && index < keptShape.steps, "step \(index) outside the kept steps")
        return (keptBuffer!.address + UInt64(index * rows.count * 4), tokens.address)
    }

    /// Queues the copy of the indices the last run of ``argmaxKept(_:rows:head:step:of:)`` kept into page-locked
    /// memory, and marks where it ends: ``keptTokens()`` then waits for the copy alone, not for work queued after
    /// this call.
    public func queueKeptTokens() {
        guard let kept = keptBuffer, keptShape.steps > 0 else { return }
        context.makeCurrent()
        // A copy still on its way lands in the buffer the one below may replace.
        if keptCopy != nil { keptArrival.wait() }
        flush()
        let bytes = keptShape.steps * keptShape.rows * 4
        if (keptHost?.byteCount ?? 0) < bytes { keptHost = HostBuffer(context, byteCount: bytes) }
        keptHost!.queueCopy(from: kept.address, bytes: bytes)
        keptArrival.record()
        keptCopy = (keptShape, kept)
    }

    /// The indices the last run of ``argmaxKept(_:rows:head:step:of:)`` kept, one array a step: one wait for all
    /// of them (for their copy alone, where ``queueKeptTokens()`` queued it).
    public func keptTokens() -> [[Int]] {
        if keptCopy == nil { queueKeptTokens() }
        guard let (shape, _) = keptCopy, let host = keptHost else { return [] }
        context.makeCurrent()
        keptArrival.wait()
        keptCopy = nil
        let all: [Int32] = host.values(count: shape.steps * shape.rows)
        return (0..<shape.steps).map { step in
            all[step * shape.rows..<(step + 1) * shape.rows].map { Int($0) }
        }
    }

    /// Queues the ranking of `rows` rows of `columns` logits at `logits` (`rank_group_minima`, `rank_thresholds`,
    /// `rank_candidates`, `rank_largest`); returns where the `count` smallest ranking keys of each row, most likely
    /// first, end up.
    private func queueRanking(_ logits: UInt64, columns: Int, rows: Int, count: Int) -> UInt64 {
        let group = KernelSource.rankGroup
        let groups = (columns + group - 1) / group
        // The keys that pass a row's threshold lie in at most `count` groups.
        let capacity = group * count
        let (minimaBytes, candidateBytes, rankedBytes) = (rows * groups * 8, rows * capacity * 8, rows * count * 8)
        let buffer = scratch(&rankingBuffer, bytes: minimaBytes + candidateBytes + rankedBytes + rows * 12)
        let minima = buffer.address
        let candidates = minima + UInt64(minimaBytes)
        let ranked = candidates + UInt64(candidateBytes)
        let thresholds = ranked + UInt64(rankedBytes)
        let counters = thresholds + UInt64(rows * 8)
        let spans = (columns + KernelSource.rankSpan - 1) / KernelSource.rankSpan
        launch(
            .rankGroupMinima, grid: (spans, rows), block: KernelSource.rankThreads, .address(logits), .int(columns),
            .address(minima))
        launch(
            .rankThresholds, grid: (rows, 1), block: KernelSource.rankSortThreads, .address(minima), .int(groups),
            .int(count), .address(thresholds), .address(counters))
        launch(
            .rankCandidates, grid: (spans, rows), block: KernelSource.rankThreads, .address(logits), .int(columns),
            .address(thresholds), .address(counters), .int(capacity), .address(candidates))
        launch(
            .rankLargest, grid: (rows, 1), block: KernelSource.rankSortThreads, .address(candidates), .int(capacity),
            .address(counters), .int(count), .address(ranked))
        return ranked
    }

    /// What each row of a draw samples with, one entry a row.
    public struct Draws {
        /// Softmax temperatures; 0 takes the row's argmax.
        public var temperatures: [Float]
        /// Min-p (0 for none).
        public var minPs: [Float]
        /// Top-k (0 draws from the whole row), at most ``CUDABackend/candidateLimit``.
        public var topKs: [Int]
        /// Top-p: among the top-k, or over the whole row where top-k is 0 (1 for none).
        public var topPs: [Float]
        /// The random numbers in [0, 1).
        public var units: [Double]

        /// The draws of `units.count` rows.
        public init(temperatures: [Float], minPs: [Float], topKs: [Int], topPs: [Float], units: [Double]) {
            precondition(
                [temperatures.count, minPs.count, topKs.count, topPs.count].allSatisfy { $0 == units.count },
                "one entry a row")
            precondition(topKs.allSatisfy { (0...CUDABackend.candidateLimit).contains($0) }, "top-k within the limit")
            self.temperatures = temperatures
            self.minPs = minPs
            self.topKs = topKs
            self.topPs = topPs
            self.units = units
        }

        /// Whether each row draws from a top-p nucleus of its whole row.
        var drawsNucleus: [Bool] {
            (0..<units.count).map { temperatures[$0] > 0 && topKs[$0] == 0 && topPs[$0] < 1 }
        }
    }

    /// The most top-k a draw samples from where the logits are (`draw_candidates` takes a candidate a thread).
    public static let candidateLimit = KernelSource.candidateThreads

    /// The token drawn from each of `rows` of `x` as the host's sampler draws with the same parameters and random
    /// number: the head's products as ``logits(_:rows:head:)`` computes them, then the draw over the whole row, or
    /// among its top-k, on the GPU, and only the token ids come back.
    public func drawTokens(_ x: CUDAActivations, rows: [Int], head: CUDADenseWeights, draws: Draws) -> [Int] {
        context.makeCurrent()
        let tokens = queueDraws(x, rows: rows, head: head, draws: draws)
        let drawn: [Int32] = download(from: tokens, count: rows.count)
        return drawn.map { Int($0) }
    }

    /// Queues the head's products of `rows` of `x` and the launches of a draw: over the whole row, three
    /// (`draw_chunk_tops`, `draw_chunk_masses`, `draw_pick`), with the rounds that find each top-p nucleus between
    /// the first two where a row has one; among the top-k, the ranking passes and
    /// `draw_candidates`, which overwrites the whole-row draw's tokens of its rows where a step has both. The
    /// tokens go to `result` (by default after the draws' inputs in their scratch buffer), and also to `feed` where
    /// not 0. Returns where they go.
    private func queueDraws(
        _ x: CUDAActivations, rows: [Int], head: CUDADenseWeights, draws: Draws, into result: UInt64? = nil,
        feeding feed: UInt64 = 0
    ) -> UInt64 {
        precondition(draws.units.count == rows.count, "one draw a row")
        let output = queueLogits(x, rows: rows, head: head)
        // The random numbers (8 bytes a row), then the temperatures, the min-p, the tokens, the top-k and the top-p
        // (4 bytes a row each).
        let inputs = scratch(&drawBuffer, bytes: rows.count * 28)
        // A queued kernel may still read the inputs this upload replaces.
        flush()
        let words = draws.units.flatMap { [UInt32(truncatingIfNeeded: $0.bitPattern), UInt32($0.bitPattern >> 32)] }
        let tokenSlots = [UInt32](repeating: 0, count: rows.count)
        inputs.upload(
            words + draws.temperatures.map(\.bitPattern) + draws.minPs.map(\.bitPattern) + tokenSlots
                + draws.topKs.map { UInt32($0) } + draws.topPs.map(\.bitPattern))
        let base = inputs.address
        let row = UInt64(rows.count * 4)
        let tokens = result ?? base + 4 * row
        let (temperatureInput, minPInput) = (base + 2 * row, base + 3 * row)
        let (topKInput, topPInput) = (base + 5 * row, base + 6 * row)
        // Rows of temperature 0 take the whole-row draw's argmax, whatever their top-k.
        let candidates = zip(draws.topKs, draws.temperatures).map { $0 > 0 && $1 > 0 }
        if candidates.contains(false) {
            let (chunk, count) = Self.drawChunks(columns: head.rows)
            let chunks = scratch(&drawChunkBuffer, bytes: rows.count * count * KernelSource.drawChunkBytes).address
            launch(
                .drawChunkTops, grid: (count, rows.count), block: KernelSource.drawThreads, .address(output.address),
                .int(head.rows), .int(chunk), .address(chunks))
            let nuclei =
                draws.drawsNucleus.contains(true)
                ? queueNuclei(
                    output.address, columns: head.rows, chunk: chunk, chunks: (chunks, count), rows: rows.count,
                    temperatures: temperatureInput, topKs: topKInput, topPs: topPInput) : 0
            launch(
                .drawChunkMasses, grid: (count, rows.count), block: KernelSource.drawThreads,
                .address(output.address), .int(head.rows), .int(chunk), .address(temperatureInput),
                .address(minPInput), .address(nuclei), .address(chunks))
            launch(
                .drawPick, grid: (rows.count, 1), block: KernelSource.drawThreads, .address(output.address),
                .int(head.rows), .int(chunk), .int(count), .address(temperatureInput), .address(minPInput),
                .address(base), .address(nuclei), .address(chunks), .address(tokens), .address(feed))
        }
        if candidates.contains(true), let largest = draws.topKs.max() {
            let keys = queueRanking(output.address, columns: head.rows, rows: rows.count, count: largest)
            launch(
                .drawCandidates, grid: (rows.count, 1), block: KernelSource.candidateThreads, .address(keys),
                .int(largest), .address(temperatureInput), .address(topKInput), .address(topPInput),
                .address(minPInput), .address(base), .address(tokens), .address(feed))
        }
        return tokens
    }

    /// Queues the rounds that find the limit of each top-p nucleus (`nucleus_round`, after `draw_chunk_tops` has
    /// filled `chunks`); returns where the rows' `Nucleus` records are.
    private func queueNuclei(
        _ logits: UInt64, columns: Int, chunk: Int, chunks: (address: UInt64, count: Int), rows: Int,
        temperatures: UInt64, topKs: UInt64, topPs: UInt64
    ) -> UInt64 {
        // ModelConfig.validate() refuses vocabularies over 2^22 tokens, so every model's rows fit.
        precondition(columns < 1 << 24, "the nucleus's rounds count token ids of 24 bits")
        // Row r's sums and record sit at the same place whatever the number of rows, and each round leaves them zero
        // where the next one needs it.
        let sums = scratch(&nucleusSums, bytes: rows * KernelSource.nucleusBuckets * 8).address
        let nuclei = scratch(&nucleusRecords, bytes: rows * KernelSource.nucleusBytes).address
        for round in 0..<KernelSource.nucleusRounds {
            launch(
                .nucleusRound, grid: (chunks.count, rows), block: KernelSource.drawThreads, .address(logits),
                .int(columns), .int(chunk), .address(chunks.address), .address(temperatures), .address(topKs),
                .address(topPs), .address(nuclei), .address(sums), .int(round))
        }
        return nuclei
    }

    /// The tokens a block of a draw's first two launches takes from a row of `columns` logits, and the number of such
    /// chunks a row: 2,048 (63 chunks for 2B-4T's 128,256-token vocabulary), longer where a row would have more than
    /// `draw_pick` holds.
    static func drawChunks(columns: Int) -> (chunk: Int, count: Int) {
        let longest = KernelSource.drawMaximumChunks
        let chunk = max(2048, ((columns + longest - 1) / longest + 255) / 256 * 256)
        return (chunk, (columns + chunk - 1) / chunk)
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
    private func flush() {
        flushRowOperation()
        flushRotations()
        flushProducts()
        flushRowOperation()
        releaseRopeStore()
    }

    /// Rescales the summed integers of a split tensor-core product into its outputs.
    private func launchFinish(_ finish: PendingFinish) {
        emit(
            .finishProducts, grid: ((finish.tokens * finish.rows + 255) / 256, 1), block: 256,
            [.address(finish.partial), .int(finish.tokens), .address(finish.inputScales)] + finish.arguments)
    }

    /// Launches the pending residual add or gated activation as a kernel of its own, and the rescale of a split
    /// product before it.
    private func flushRowOperation() {
        if let (finish, _) = pendingFinish {
            pendingFinish = nil
            launchFinish(finish)
        }
        guard let p = pendingRowOperation else { return }
        pendingRowOperation = nil
        if let finish = p.finish { launchFinish(finish) }
        let count = p.tokens * p.target.width
        let kernel: Kernel
        switch p.mode {
        case .keep: return
        case .add, .addProduct: kernel = .add
        case .relu2, .relu2Product: kernel = .relu2Multiply
        case .silu, .siluProduct: kernel = .siluMultiply
        }
        emit(
            kernel, grid: ((count + 255) / 256, 1), block: 256,
            [.address(p.target.buffer.address), .address(p.other.buffer.address), .int(count)])
    }

    /// Launches the pending rotary embedding and cache store as a kernel of its own.
    private func releaseRopeStore() {
        guard let r = pendingRopeStore else { return }
        pendingRopeStore = nil
        emit(
            .ropeStoreRows, grid: (1, 1), block: 256,
            [
                .address(r.query.buffer.address), .int(r.heads), .address(r.keys.buffer.address),
                .address(r.values.buffer.address), .int(r.kvHeads), .int(r.headDim), .address(r.positions),
                .float(r.theta), .address(r.blocks), .address(0), .int(r.layer),
            ] + Self.noFinish)
    }

    /// The queued rotations of a step's queries and of `keys`, taken off the queue, when they are the two queued
    /// and the keys of `tokens` rows at `positions` are `width` wide: the cache store of those keys can then do
    /// them (``Kernel/ropeStoreRows``, ``Kernel/attentionSplit``).
    private func queuedRotations(
        keys: CUDAActivations, tokens: Int, positions: UInt64, width: Int
    ) -> (query: PendingRotation, key: PendingRotation)? {
        guard rotations.count == 2 else { return nil }
        let (query, key) = (rotations[0], rotations[1])
        guard key.x === keys, query.x !== keys, query.tokens == tokens, key.tokens == tokens,
            query.headDim == key.headDim, query.theta == key.theta, query.positions == positions,
            key.positions == positions, key.heads * key.headDim == width, keys.width == width
        else { return nil }
        rotations = []
        return (query, key)
    }

    /// The arguments `sums`, `sum_scales`, `sum_rows`, `s_q`, `s_k` and `s_v` of a kernel with no rescale to do.
    private static let noFinish: [Argument] = [
        .address(0), .address(0), .int(0), .address(0), .address(0), .address(0),
    ]

    /// The pending rescale of a split query, key and value product of `tokens` tokens into `query`, `key` and
    /// `values`, taken off the queue for the kernel that rotates and stores them to do: that kernel's arguments
    /// `sums` ... `s_v` (``noFinish`` where no such rescale is pending).
    private func takeFinish(
        query: CUDAActivations, key: CUDAActivations, values: CUDAActivations, tokens: Int
    ) -> [Argument] {
        guard let (finish, outputs) = pendingFinish, outputs.count == 3, outputs[0] === query, outputs[1] === key,
            outputs[2] === values, finish.tokens == tokens
        else { return Self.noFinish }
        pendingFinish = nil
        // finish_products' arguments: scale, output and rows of each matrix.
        return [
            .address(finish.partial), .address(finish.inputScales), .int(finish.rows), finish.arguments[0],
            finish.arguments[3], finish.arguments[6],
        ]
    }

    /// Rotates the queries and keys of `query` and `key` and stores keys and values in layer `layer` of the caches
    /// whose block tables are `tables`.
    private func launchRopeStore(
        query: PendingRotation, key: PendingRotation, values: CUDAActivations, tables: (blocks: UInt64, rows: UInt64),
        layer: Int
    ) {
        let product = takeFinish(query: query.x, key: key.x, values: values, tokens: key.tokens)
        launch(
            .ropeStoreRows, grid: (key.tokens, 1), block: 256, .address(query.x.buffer.address), .int(query.heads),
            .address(key.x.buffer.address), .address(values.buffer.address), .int(key.heads), .int(key.headDim),
            .address(key.positions), .float(key.theta), .address(tables.blocks), .address(tables.rows), .int(layer),
            product[0], product[1], product[2], product[3], product[4], product[5])
    }

    /// Launches the queued rotations one by one.
    private func flushRotations() {
        let queued = rotations
        rotations = []
        for r in queued {
            emit(
                .rope, grid: (r.tokens, 1), block: 256,
                [.address(r.x.buffer.address), .int(r.heads), .int(r.headDim), .address(r.positions), .float(r.theta)])
        }
    }

    /// Launches the queued products: as one list, or (`activation` 1 for relu², 2 for SiLU) as a gate and up pair
    /// with the activation applied; on the tensor cores where ``launchTiles(_:activation:)`` takes them, else a group
    /// of lanes a row.
    private func flushProducts(activation: Int = 0) {
        guard !pending.isEmpty else { return }
        let products = pending
        pending = []
        if launchTiles(products, activation: activation) { return }
        if products[0].tokens > 1 {
            launchUntiled(products, activation: activation)
            return
        }
        let input = products[0].input
        let chunks = products[0].weights.chunks
        let rows = activation == 0 ? products.reduce(0) { $0 + $1.weights.rows } : products[0].weights.rows
        let (lanes, blocks) = Self.singleTokenGeometry(
            rows: rows, chunks: chunks, blockScaled: products.contains { $0.weights.blockChunks != 0 },
            multiprocessors: context.multiprocessors)
        var arguments: [Argument] = [
            .address(input.values.address), .address(input.scales.address), .int(chunks), .int(activation),
            .int(lanes),
        ]
        for index in 0..<3 {
            if index < products.count {
                let p = products[index]
                arguments += [
                    .address(p.weights.codes.address), .address(p.weights.scales.address), .int(p.weights.blockChunks),
                    .int(p.weights.rows), .address(p.output.buffer.address), .address(p.residual?.buffer.address ?? 0),
                ]
            } else {
                arguments += [.address(0), .address(0), .int(0), .int(0), .address(0), .address(0)]
            }
        }
        emit(
            .ternaryFusedSingle, grid: (blocks, 1), block: 256,
            sharedBytes: KernelSource.singleTokenSharedBytes(chunks: chunks), arguments)
    }

    /// Launches `products` (``flushProducts(activation:)``'s) as `ternary_tiles_1`, or `ternary_tiles_n` for several
    /// tokens, a block for each 16 rows, and returns true; false, launching nothing, where the kernel does not take
    /// them: matrices of per-block scales, rows too wide for its shared memory, a GPU before Ampere, or more tiles
    /// than the GPU holds at once. One token's tiles go to ``launchStreamedTiles(_:activation:blocks:)`` instead
    /// wherever that kernel runs and they are more than its blocks, more than one wave of `ternary_tiles_1`, or a
    /// gate and up pair to which `ternary_tiles_1` would give no more warps a block than it has. On an H200
    /// one sequence of the 2B-4T shape decoded 1,000-1,004 tokens/s with `ternary_tiles_1` against 988-993 with
    /// `ternary_fused_1`, the bitnet-3b shape 603 against 592 (BENCHMARKS.md).
    private func launchTiles(_ products: [PendingProduct], activation: Int) -> Bool {
        let chunks = products[0].weights.chunks
        let tokens = products[0].tokens
        let tiles =
            activation == 0
            ? products.reduce(0) { $0 + ($1.weights.rows + 15) / 16 } : (products[0].weights.rows + 15) / 16
        let warps = Self.tileWarps(tiles: tiles, chunks: chunks, multiprocessors: context.multiprocessors)
        // ternary_tiles_n stages one matrix's tile a block (both for an activation); ternary_tiles_1's launches
        // were measured with room for every matrix.
        let bytes =
            tokens == 1
            ? KernelSource.tileSharedBytes(matrices: activation == 0 ? products.count : 2, chunks: chunks)
            : KernelSource.tileSharedBytes(matrices: activation == 0 ? 1 : 2, chunks: chunks, tokens: tokens)
        let staticBytes = tokens == 1 ? KernelSource.tileStaticBytes : KernelSource.fewTokenTileStaticBytes
        guard useTiles, products.allSatisfy({ $0.weights.blockChunks == 0 }), bytes <= KernelSource.tileSharedLimit
        else { return false }
        let fitsOneWave =
            tiles
            <= Self.residentTiles(warps: warps, sharedBytes: bytes, staticBytes: staticBytes) * context.multiprocessors
        let streamed =
            tokens == 1 && streamsTiles
            ? Self.streamedTileBlocks(
                matrices: activation == 0 ? 1 : 2, chunks: chunks, multiprocessors: context.multiprocessors) : 0
        if Self.takesStreamedTiles(
            tiles: tiles, pair: activation != 0, warps: warps, streamedBlocks: streamed, fitsOneWave: fitsOneWave)
        {
            launchStreamedTiles(products, activation: activation, blocks: min(tiles, streamed))
            return true
        }
        guard fitsOneWave else { return false }
        let input = products[0].input
        var arguments: [Argument] = [.address(input.values.address)]
        if tokens > 1 { arguments.append(.int(input.stride)) }
        arguments += [.address(input.scales.address)]
        if tokens > 1 { arguments.append(.int(tokens)) }
        arguments += [.int(chunks), .int(activation)]
        arguments += Self.tileMatrixArguments(products)
        emit(
            tokens == 1 ? .ternaryTilesSingle : .ternaryTilesFew, grid: (tiles, 1), block: 32 * warps,
            sharedBytes: bytes, arguments)
        return true
    }

    /// Launches `products` (``launchTiles(_:activation:)``'s, one token) as `blocks` blocks of
    /// `ternary_tiles_stream_1`. On an H200 the Falcon3-10B shape, whose gate and up product is 1,440 tiles, more
    /// than one wave of `ternary_tiles_1`, decoded 474.4-475.1 tokens/s against 441.1 with `ternary_fused_1`. Within
    /// one wave the kernel also beats `ternary_tiles_1` on products of more tiles than its blocks, and on gate and
    /// up pairs of as few warps a block, whose two sums it takes in one pass: the bitnet-3b shape (600 query, key
    /// and value tiles, 540 gate and up tiles of 4 warps) decoded 953.6-965.9 tokens/s against 916.4-925.8, 2B-4T's
    /// (432 gate and up tiles of 4 warps) 1,005.9-1,010.3 against 1,001.8-1,007.1. bitnet-large's 256 gate and up
    /// tiles of 6 warps streamed at 1,646.7 against 1,661.3, so they keep `ternary_tiles_1` (BENCHMARKS.md).
    private func launchStreamedTiles(_ products: [PendingProduct], activation: Int, blocks: Int) {
        let chunks = products[0].weights.chunks
        let bytes = KernelSource.streamSharedBytes(matrices: activation == 0 ? 1 : 2, chunks: chunks)
        let input = products[0].input
        var arguments: [Argument] = [
            .address(input.values.address), .address(input.scales.address), .int(chunks), .int(activation),
        ]
        arguments += Self.tileMatrixArguments(products)
        emit(
            .ternaryTilesStreamSingle, grid: (blocks, 1), block: 32 * KernelSource.streamWarps, sharedBytes: bytes,
            arguments)
    }

    /// Whether one token's `tiles` tiles (of a gate and up `pair`, or not) take `ternary_tiles_stream_1`, which holds
    /// `streamedBlocks` blocks at once (0 where it does not run), rather than `ternary_tiles_1` in blocks of `warps`
    /// warps, which `fitsOneWave` or not: where there are more tiles than either holds at once, or a pair to which
    /// `ternary_tiles_1` gives no more warps than the streamed kernel, which sums gate and up in one pass.
    static func takesStreamedTiles(tiles: Int, pair: Bool, warps: Int, streamedBlocks: Int, fitsOneWave: Bool) -> Bool {
        streamedBlocks > 0 && (tiles > streamedBlocks || !fitsOneWave || (pair && warps <= KernelSource.streamWarps))
    }

    /// Blocks of `ternary_tiles_stream_1` a GPU of `multiprocessors` holds at once over tiles of `matrices` matrices
    /// (2 for a gate and up pair) of rows of `chunks` chunks; 0 where two stages of them are more shared memory than
    /// a block may have.
    static func streamedTileBlocks(matrices: Int, chunks: Int, multiprocessors: Int) -> Int {
        let bytes = KernelSource.streamSharedBytes(matrices: matrices, chunks: chunks)
        guard bytes <= KernelSource.tileSharedLimit else { return 0 }
        return Self.residentTiles(
            warps: KernelSource.streamWarps, sharedBytes: bytes, staticBytes: KernelSource.streamStaticBytes,
            registers: KernelSource.streamRegisters) * multiprocessors
    }

    /// The tile products' arguments for matrices 0, 1 and 2: each one's weights, scales, rows, output and residual,
    /// zeros past the last of `products`.
    private static func tileMatrixArguments(_ products: [PendingProduct]) -> [Argument] {
        (0..<3).flatMap { index -> [Argument] in
            guard index < products.count else { return [.address(0), .address(0), .int(0), .address(0), .address(0)] }
            let p = products[index]
            return [
                .address(p.weights.codes.address), .address(p.weights.scales.address), .int(p.weights.rows),
                .address(p.output.buffer.address), .address(p.residual?.buffer.address ?? 0),
            ]
        }
    }

    /// Launches queued products of several tokens that ``launchTiles(_:activation:)`` turned down (more tiles than
    /// one wave of blocks, or a gate and up pair whose two tiles and the tokens' activations are more than a block's
    /// shared memory) as ``multiply(_:_:tokens:into:)`` would have without the queue, then the residual add or gated
    /// activation that they were to fold in.
    private func launchUntiled(_ products: [PendingProduct], activation: Int) {
        let tokens = products[0].tokens
        let input = products[0].input
        let weights = products.map(\.weights)
        let outputs = products.map(\.output)
        if useTensorCores && weights.allSatisfy({ $0.blockChunks == 0 && $0.chunks == weights[0].chunks }) {
            multiplyOnTensorCores(weights, input, tokens: tokens, into: outputs)
        } else {
            for (w, y) in zip(weights, outputs) { multiplyUnqueued(w, input, tokens: tokens, into: y) }
        }
        if activation != 0 {
            gatedActivation(activation == 1 ? .relu2 : .silu, gate: outputs[0], up: outputs[1], tokens: tokens)
        }
        for product in products {
            if let residual = product.residual { add(product.output, to: residual, tokens: tokens) }
        }
    }

    /// Warps a block of a `ternary_tiles_1` launch of `tiles` blocks over rows of `chunks` chunks: about a dozen
    /// warps a multiprocessor, in blocks of 2, 4 or 8 warps, and no more warps than quads of chunks.
    static func tileWarps(tiles: Int, chunks: Int, multiprocessors: Int) -> Int {
        let wanted = (12 * multiprocessors + tiles - 1) / max(1, tiles)
        let warps = wanted <= 2 ? 2 : wanted <= 4 ? 4 : KernelSource.tileWarps
        return max(1, min(warps, (chunks + 3) / 4))
    }

    /// Blocks of `warps` warps and `sharedBytes` of dynamic shared memory of a tile product (`staticBytes` of static
    /// memory with the driver's share a block) a multiprocessor holds at once, counting `registers` a thread (a test
    /// holds the kernels to that) and 227 KB of shared memory. A launch of more tiles than one wave of
    /// `ternary_tiles_1` takes `ternary_tiles_stream_1` (one token, sm_90 and later), `ternary_fused_1` (one token,
    /// before) or the kernels for many tokens (``launchUntiled(_:activation:)``): blocks that wait for a free slot
    /// copy none of their weights before the wait. With every product on `ternary_tiles_1`, the Falcon3-10B shape,
    /// whose 1,440 gate and up tiles are more than one wave, decoded 203 tokens/s against 216 on an H200; with this
    /// rule, 218 against 216.
    static func residentTiles(warps: Int, sharedBytes: Int, staticBytes: Int, registers: Int = 64) -> Int {
        let threads = 32 * warps
        return max(
            0, min(32, 2048 / threads, 65_536 / (registers * threads), 227 * 1024 / (sharedBytes + staticBytes)))
    }

    /// Lanes a row and blocks of 256 threads of a `ternary_fused_1` launch over `rows` rows of `chunks` chunks.
    ///
    /// Rows of up to 64 chunks take 16 lanes each, longer rows and rows of per-block scales (`blockScaled`) a warp:
    /// on an H200 a 2B-4T step (rows of 40 chunks but the down product's 108) decoded 809-833 tokens/s against
    /// 791-796 with 32 lanes a row and 801-811 with 8. A launch has at most four blocks a multiprocessor, all
    /// resident at once (48 registers a thread allow five), so every lane's first weights are requested while the
    /// kernel before still runs; on an H200 809-825 tokens/s with four, 808-809 with five and 798-800 with three.
    static func singleTokenGeometry(
        rows: Int, chunks: Int, blockScaled: Bool, multiprocessors: Int
    ) -> (lanes: Int, blocks: Int) {
        let lanes = blockScaled || chunks > 64 ? 32 : 16
        let warps = (rows * lanes + 31) / 32
        return (lanes, max(1, min((warps + 7) / 8, 4 * multiprocessors)))
    }

    // MARK: Plumbing

    /// A kernel argument.
    private enum Argument {
        case address(UInt64)
        case int(Int)
        case float(Float)
    }

    /// Queues `kernel` on the stream with `arguments` in the kernel's parameter order, after the queued products.
    private func launch(_ kernel: Kernel, grid: (Int, Int), block: Int, _ arguments: Argument...) {
        flush()
        emit(kernel, grid: grid, block: block, arguments)
    }

    /// Queues `kernel` on the stream, after the pending rotary embedding and cache store, with `sharedBytes` of
    /// dynamic shared memory (by default the kernel's ``Kernel/dynamicSharedBytes``) and clusters of `cluster`
    /// blocks.
    private func emit(
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
    private func devicePositions(_ positions: [Int32]) -> UInt64 {
        if let held = positionCopy.buffer(holding: positions) { return held.address }
        return upload(positions, into: &positionCopy).address
    }

    /// Copies `values` into `copy`'s buffer, replaced by a larger one where needed (``scratch(_:bytes:roundingUp:)``),
    /// and records them as what it holds.
    private func upload<Value: Equatable>(
        _ values: [Value], into copy: inout DeviceCopy<Value>, roundingUp: Bool = false
    ) -> DeviceBuffer {
        let buffer = scratch(&copy.buffer, bytes: values.count * MemoryLayout<Value>.stride, roundingUp: roundingUp)
        buffer.upload(values)
        copy.values = values
        return buffer
    }

    /// `buffer`, replaced by a larger one when it holds fewer than `bytes` bytes; `roundingUp` sizes the new one to
    /// the next power of two, for a buffer that grows a little at a time.
    private func scratch(_ buffer: inout DeviceBuffer?, bytes: Int, roundingUp: Bool = false) -> DeviceBuffer {
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
