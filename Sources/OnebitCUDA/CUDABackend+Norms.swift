import OnebitModel

// RMSNorm + quantize, residual adds and gated activations, and the row operations the norms fold in.
extension CUDABackend {
    /// What ``pendingRowOperation`` does: `mode` to the first `tokens` rows of `target`, with `other`.
    struct PendingRowOperation {
        let target: CUDAActivations
        let other: CUDAActivations
        let tokens: Int
        let mode: RowOperation
        /// The rescale that makes `other`, the output of a split product, when it is pending too.
        var finish: PendingFinish? = nil
    }

    /// What ``Kernel/rmsNormQuantizeWide`` does to its row first (`ROW_KEEP` ... `ROW_SILU_PRODUCT` in the source).
    enum RowOperation: Int {
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

    /// A split product's rescale as ``Kernel/finishProducts`` takes it: the summed integers, the input's token
    /// scales, and each matrix's scale, output and rows.
    struct PendingFinish {
        let partial: UInt64
        let tokens: Int
        let inputScales: UInt64
        /// Scale, output and rows of each matrix, as ``Kernel/finishProducts`` takes them.
        let arguments: [Argument]
        let rows: Int
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

    /// Rescales the summed integers of a split tensor-core product into its outputs.
    private func launchFinish(_ finish: PendingFinish) {
        emit(
            .finishProducts, grid: ((finish.tokens * finish.rows + 255) / 256, 1), block: 256,
            [.address(finish.partial), .int(finish.tokens), .address(finish.inputScales)] + finish.arguments)
    }

    /// Launches the pending residual add or gated activation as a kernel of its own, and the rescale of a split
    /// product before it.
    func flushRowOperation() {
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
}
