import CCUDA

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// The kernels of ``KernelSource``, by the names they are declared with.
enum Kernel: Int, CaseIterable {
    case rmsNorm, rmsNormQuantize, ternaryMatmulSingle, ternaryMatmul
    case denseGemvF32, denseGemvF16, denseGemvBF16
    case embedF32, embedF16, embedBF16
    case rope, storeKeyValue, attention, relu2Multiply, siluMultiply, add
    case ternaryFusedSingle, attentionSplit, attentionSplitWide, argmaxPartial, argmaxFinal, rmsNormQuantizeWide,
        copyWords, ternaryMatmulTensorCores, attentionPrefill, denseGemmF32, denseGemmF16,
        denseGemmBF16, int8RowsFromBF16, quantizeRows, int8Gemv, finishProducts, splitBF16, denseGemmBF16TensorCores,
        ropeStoreRows, attentionRows, attentionRowsClustered, rankGroupMinima, rankThresholds, rankCandidates,
        rankLargest, drawChunkTops, nucleusRound, drawChunkMasses, drawPick, drawCandidates, ternaryMatmulWarpgroup,
        denseGemmBF16Warpgroup, ternaryTilesSingle, ternaryTilesFew, attentionPrefillTensorCores,
        attentionPrefillTensorCoresWide, rmsNormQuantizeLong, rmsNormQuantizeSplit, attentionPrefillTensorCoresShort,
        ternaryTilesStreamSingle, int8Gemm, int8GemmTensorCores

    /// Bytes of dynamic shared memory a launch gets (more than the 48 KB a kernel may declare statically).
    var dynamicSharedBytes: Int {
        switch self {
        case .attentionRows, .attentionRowsClustered: KernelSource.attentionRowsSharedBytes
        case .ternaryMatmulTensorCores: KernelSource.mmaSharedBytes
        case .ternaryMatmulWarpgroup: KernelSource.warpgroupSharedBytes
        case .denseGemmBF16Warpgroup: KernelSource.headWarpgroupSharedBytes
        case .ternaryFusedSingle: KernelSource.singleTokenSharedBytes(chunks: KernelSource.singleTokenMaximumChunks)
        case .ternaryTilesSingle, .ternaryTilesFew, .ternaryTilesStreamSingle: KernelSource.tileSharedLimit
        case .attentionPrefillTensorCores: KernelSource.prefillTensorCoreSharedBytes(wide: false)
        case .attentionPrefillTensorCoresWide: KernelSource.prefillTensorCoreSharedBytes(wide: true)
        case .attentionPrefillTensorCoresShort: KernelSource.prefillTensorCoreSharedBytes(wide: false, parts: 4)
        case .rmsNormQuantizeLong: KernelSource.longNormWidth * 4
        default: 0
        }
    }

    /// Whether a GPU of compute capability `major.minor` runs the kernel: the `wgmma` kernels only on 9.0, the
    /// `mma.sync` and `cp.async` ones and the long rows' norm (96 KB of shared memory) from 8.0 (Ampere) on, those of
    /// thread block clusters or bulk copies from 9.0 (Hopper) on, the wide and short prompt attention only on 9.x and
    /// 10.x, whose blocks may have their 195 and 148.5 KB of shared memory,
    /// the others everywhere. Elsewhere a kernel compiles to an empty body or copies nothing and is never launched,
    /// and its shared memory may be more than such a GPU allows a block (64 KB on sm_75, 99 KB on sm_86, sm_89 and
    /// sm_120, 163 KB on sm_80, 227 KB on sm_90).
    func runs(major: Int, minor: Int) -> Bool {
        switch self {
        case .ternaryMatmulWarpgroup, .denseGemmBF16Warpgroup: KernelBuild.hasWarpgroups(major: major, minor: minor)
        case .ternaryMatmulTensorCores, .denseGemmBF16TensorCores, .splitBF16, .attentionRows, .ternaryTilesSingle,
            .ternaryTilesFew, .attentionPrefillTensorCores, .rmsNormQuantizeLong, .int8GemmTensorCores:
            major >= 8
        case .attentionRowsClustered, .rmsNormQuantizeSplit, .ternaryTilesStreamSingle: major >= 9
        case .attentionPrefillTensorCoresWide, .attentionPrefillTensorCoresShort: major == 9 || major == 10
        default: true
        }
    }

    /// Whether a launch may start before the kernel before it ends, where the backend overlaps launches: all but
    /// prompt attention's. Overlapped, `attention_prefill_mma` took 512-token prompts to 49,051 tokens/s on an H200
    /// where the same build gave 50,621 with it alone left out.
    var overlapsPredecessor: Bool {
        ![
            .attentionPrefill, .attentionPrefillTensorCores, .attentionPrefillTensorCoresWide,
            .attentionPrefillTensorCoresShort,
        ].contains(self)
    }

    /// Whether the kernel runs in thread block clusters, of up to ``KernelSource/attentionRowsMaximumSplits`` blocks:
    /// more than the eight every GPU that has clusters allows.
    var clusters: Bool { self == .attentionRowsClustered }

    /// The `extern "C"` name in the source.
    var name: String {
        switch self {
        case .rmsNorm: "rms_norm"
        case .rmsNormQuantize: "rms_norm_quantize"
        case .ternaryMatmulSingle: "ternary_matmul_1"
        case .ternaryMatmul: "ternary_matmul_8"
        case .denseGemvF32: "dense_gemv_f32"
        case .denseGemvF16: "dense_gemv_f16"
        case .denseGemvBF16: "dense_gemv_bf16"
        case .embedF32: "embed_f32"
        case .embedF16: "embed_f16"
        case .embedBF16: "embed_bf16"
        case .rope: "rope_neox"
        case .storeKeyValue: "store_kv"
        case .attention: "attention"
        case .relu2Multiply: "relu2_mul"
        case .siluMultiply: "silu_mul"
        case .add: "add_rows"
        case .ternaryFusedSingle: "ternary_fused_1"
        case .ternaryTilesSingle: "ternary_tiles_1"
        case .ternaryTilesFew: "ternary_tiles_n"
        case .ternaryTilesStreamSingle: "ternary_tiles_stream_1"
        case .attentionSplit: "attention_split"
        case .attentionSplitWide: "attention_split_wide"
        case .argmaxPartial: "argmax_partial"
        case .argmaxFinal: "argmax_final"
        case .rmsNormQuantizeWide: "rms_norm_quantize_wide"
        case .copyWords: "copy_words"
        case .ternaryMatmulTensorCores: "ternary_matmul_mma"
        case .ternaryMatmulWarpgroup: "ternary_matmul_wgmma"
        case .denseGemmBF16Warpgroup: "dense_gemm_bf16_wgmma"
        case .attentionPrefill: "attention_prefill"
        case .attentionPrefillTensorCores: "attention_prefill_mma"
        case .attentionPrefillTensorCoresWide: "attention_prefill_mma_wide"
        case .attentionPrefillTensorCoresShort: "attention_prefill_mma_short"
        case .rmsNormQuantizeLong: "rms_norm_quantize_long"
        case .rmsNormQuantizeSplit: "rms_norm_quantize_split"
        case .denseGemmF32: "dense_gemm_f32"
        case .denseGemmF16: "dense_gemm_f16"
        case .denseGemmBF16: "dense_gemm_bf16"
        case .int8RowsFromBF16: "int8_rows_from_bf16"
        case .quantizeRows: "quantize_rows"
        case .int8Gemv: "int8_gemv"
        case .int8Gemm: "int8_gemm"
        case .int8GemmTensorCores: "int8_gemm_mma"
        case .finishProducts: "finish_products"
        case .splitBF16: "split_bf16"
        case .denseGemmBF16TensorCores: "dense_gemm_bf16_mma"
        case .ropeStoreRows: "rope_store_rows"
        case .attentionRows: "attention_rows"
        case .attentionRowsClustered: "attention_rows_clustered"
        case .rankGroupMinima: "rank_group_minima"
        case .rankThresholds: "rank_thresholds"
        case .rankCandidates: "rank_candidates"
        case .rankLargest: "rank_largest"
        case .nucleusRound: "nucleus_round"
        case .drawChunkTops: "draw_chunk_tops"
        case .drawChunkMasses: "draw_chunk_masses"
        case .drawPick: "draw_pick"
        case .drawCandidates: "draw_candidates"
        }
    }
}

/// The compiled kernels, loaded into the context.
final class KernelModule {
    private let context: CUDAContext
    private let module: CUmodule
    private let functions: [CUfunction]

    /// Loads the cached module for this GPU, or compiles it with NVRTC and caches it.
    init(_ context: CUDAContext) throws(CUDAError) {
        self.context = context
        guard KernelBuild.compiles(major: context.major, minor: context.minor) else {
            throw .unsupportedGPU(name: context.name, major: context.major, minor: context.minor)
        }
        let options = KernelBuild.options(major: context.major, minor: context.minor)
        let key = KernelBuild.key(source: KernelSource.text, options: options)
        let file = KernelBuild.fileName(key: key, major: context.major, minor: context.minor)
        let directory = KernelBuild.cacheDirectory()
        var module: CUmodule?
        // A cached image the driver rejects (a newer driver, a damaged file) is simply rebuilt.
        if let directory, let image = KernelBuild.read(directory + "/" + file) {
            module = Self.load(context, image)
        }
        if module == nil {
            let image = try Self.compile(options: options).image
            module = Self.load(context, image)
            guard module != nil else {
                throw .compilation("the driver rejected the compiled module for sm_\(context.major)\(context.minor)")
            }
            if let directory { KernelBuild.write(image, directory: directory, file: file) }
        }
        let loaded = module!
        self.module = loaded
        var functions: [CUfunction] = []
        for kernel in Kernel.allCases {
            var function: CUfunction?
            try CUDAContext.check(
                context.driver, context.driver.cuModuleGetFunction!(&function, loaded, kernel.name),
                "cuModuleGetFunction(\(kernel.name))")
            // A GPU refuses more shared memory than it has, even for a kernel it will not run.
            if kernel.dynamicSharedBytes > 0 && kernel.runs(major: context.major, minor: context.minor) {
                try CUDAContext.check(
                    context.driver,
                    context.driver.cuFuncSetAttribute!(
                        function, Int32(OB_CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES),
                        Int32(kernel.dynamicSharedBytes)),
                    "cuFuncSetAttribute(\(kernel.name))")
            }
            if kernel.clusters && kernel.runs(major: context.major, minor: context.minor) {
                // Not every GPU with clusters takes more than eight blocks: one that refuses keeps the portable size,
                // which largestCluster(of:block:) then reports, rather than losing the GPU.
                _ = context.driver.cuFuncSetAttribute!(
                    function, Int32(OB_CU_FUNC_ATTRIBUTE_NON_PORTABLE_CLUSTER_SIZE_ALLOWED), 1)
            }
            functions.append(function!)
        }
        self.functions = functions
    }

    deinit {
        _ = context.driver.cuModuleUnload!(module)
    }

    subscript(kernel: Kernel) -> CUfunction { functions[kernel.rawValue] }

    /// The most blocks of `block` threads a cluster of `kernel` can hold on this GPU, as the driver works it out from
    /// the kernel's registers and shared memory and the GPU's partition (a slice of a GPU may have fewer
    /// multiprocessors together than a cluster needs); 1 where the driver cannot say.
    func largestCluster(of kernel: Kernel, block: Int) -> Int {
        var config = ob_cu_launch_config()
        config.gridDimX = UInt32(KernelSource.attentionRowsMaximumSplits)
        (config.gridDimY, config.gridDimZ) = (1, 1)
        (config.blockDimX, config.blockDimY, config.blockDimZ) = (UInt32(block), 1, 1)
        config.sharedMemBytes = UInt32(kernel.dynamicSharedBytes)
        var size: Int32 = 0
        let result = context.driver.cuOccupancyMaxPotentialClusterSize!(&size, self[kernel], &config)
        return result == Int32(OB_CUDA_SUCCESS) ? max(1, Int(size)) : 1
    }

    private static func load(_ context: CUDAContext, _ image: [UInt8]) -> CUmodule? {
        var module: CUmodule?
        let result = image.withUnsafeBytes { context.driver.cuModuleLoadData!(&module, $0.baseAddress) }
        return result == Int32(OB_CUDA_SUCCESS) ? module : nil
    }

    /// Library names tried for NVRTC: the loader path first, then the usual toolkit folder.
    static let compilerLibraries = ["libnvrtc.so.13", "libnvrtc.so", "/usr/local/cuda/lib64/libnvrtc.so.13"]

    /// Compiles ``KernelSource`` with `options`: the CUBIN and what the compiler said of it (its notes, such as
    /// `--ptxas-options=-v`'s, where asked for).
    static func compile(options: [String]) throws(CUDAError) -> (image: [UInt8], log: String) {
        var nvrtc = ob_nvrtc()
        var message = [CChar](repeating: 0, count: 512)
        let names = compilerLibraries.map { strdup($0) }
        defer { names.forEach { free($0) } }
        let opened = names.map { UnsafePointer($0) }.withUnsafeBufferPointer {
            ob_cuda_open_nvrtc($0.baseAddress, $0.count, &nvrtc, &message, message.count)
        }
        guard opened == 0 else { throw .compilerUnavailable(cString(message)) }

        func check(_ result: nvrtcResult, _ function: String) throws(CUDAError) {
            guard result != 0 else { return }
            throw .compilation(
                "\(function): \(nvrtc.nvrtcGetErrorString!(result).map { String(cString: $0) } ?? "error \(result)")")
        }
        var program: nvrtcProgram?
        try check(
            nvrtc.nvrtcCreateProgram!(&program, KernelSource.text, "onebit_kernels.cu", 0, nil, nil),
            "nvrtcCreateProgram")
        defer { _ = nvrtc.nvrtcDestroyProgram!(&program) }
        let arguments = options.map { strdup($0) }
        defer { arguments.forEach { free($0) } }
        let compiled = arguments.map { UnsafePointer($0) }.withUnsafeBufferPointer {
            nvrtc.nvrtcCompileProgram!(program, Int32($0.count), $0.baseAddress)
        }
        var logSize = 0
        _ = nvrtc.nvrtcGetProgramLogSize!(program, &logSize)
        var log = [CChar](repeating: 0, count: logSize + 1)
        _ = nvrtc.nvrtcGetProgramLog!(program, &log)
        if compiled != 0 { throw .compilation(cString(log)) }
        var size = 0
        try check(nvrtc.nvrtcGetCUBINSize!(program, &size), "nvrtcGetCUBINSize")
        var image = [UInt8](repeating: 0, count: size)
        try check(
            image.withUnsafeMutableBytes {
                nvrtc.nvrtcGetCUBIN!(program, $0.baseAddress!.assumingMemoryBound(to: CChar.self))
            },
            "nvrtcGetCUBIN")
        return (image, cString(log))
    }
}
