// The output head: logits from the bf16 head (on the tensor cores for several rows) or its int8 copy.
extension CUDABackend {
    /// A head's rows in int8 with one scale per row; `stride` bytes per row.
    struct Int8Rows {
        let source: UInt64
        let codes: DeviceBuffer
        let scales: DeviceBuffer
        let stride: Int
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
    func queueLogits(_ x: CUDAActivations, rows: [Int], head: CUDADenseWeights) -> DeviceBuffer {
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
    func launchHead(
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
        launch(
            Self.denseKernels(head.storage).severalRows, grid: ((head.rows + 7) / 8, (rows.count + 7) / 8), block: 256,
            .address(head.buffer.address), .int(head.rows), .int(head.columns), .address(x.buffer.address),
            .int(x.width), .address(indices.address), .int(rows.count), .address(output))
    }

    /// Whether the head of several rows runs on Hopper's warpgroup tensor cores (`dense_gemm_bf16_wgmma`), which can
    /// also do the argmax's first pass.
    func usesWarpgroupHead(_ head: CUDADenseWeights) -> Bool {
        !usesInt8Head(head) && head.storage == .bfloat16 && useTensorCores && useWarpgroups && head.columns % 64 == 0
    }

    /// The kernels that read a head stored in `precision` as it is: the GEMV of one row and the GEMM of several.
    private static func denseKernels(_ precision: CUDADenseWeights.Precision) -> (oneRow: Kernel, severalRows: Kernel) {
        switch precision {
        case .float32: (.denseGemvF32, .denseGemmF32)
        case .float16: (.denseGemvF16, .denseGemmF16)
        case .bfloat16: (.denseGemvBF16, .denseGemmBF16)
        }
    }

    /// Blocks of `dense_gemm_bf16_wgmma` along the head's rows: 256 rows each.
    static func warpgroupHeadBlocks(_ head: CUDADenseWeights) -> Int { (head.rows + 255) / 256 }

    /// Queues the head's product with row `row` of `x` into `output` (`head.rows` floats): the stored precision's
    /// GEMV, or with the int8 head the CPU's int8 arithmetic (the row quantized per token, exact integer dots).
    func launchHead(_ x: CUDAActivations, row: Int, head: CUDADenseWeights, into output: UInt64) {
        let input = x.buffer.address + UInt64(row * x.width * 4)
        if usesInt8Head(head) {
            launchInt8Head(input, width: x.width, rows: nil, count: 1, head: head, into: output)
            return
        }
        launch(
            Self.denseKernels(head.storage).oneRow, grid: ((head.rows + 7) / 8, 1), block: 256,
            .address(head.buffer.address), .int(head.rows), .int(head.columns), .address(input), .address(output))
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
}
