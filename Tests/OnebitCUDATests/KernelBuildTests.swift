import CCUDA
import Testing

@testable import OnebitCUDA

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

@Test func compilerOptionsTargetTheGPUAndKeepCPURounding() {
    let options = KernelBuild.options(major: 9, minor: 0)
    // Hopper's warpgroup instructions need the architecture-specific target.
    #expect(options.contains("--gpu-architecture=sm_90a"))
    #expect(options.contains("--fmad=false"))
    #expect(KernelBuild.options(major: 8, minor: 9).contains("--gpu-architecture=sm_89"))
    #expect(KernelBuild.options(major: 12, minor: 0).contains("--gpu-architecture=sm_120"))
}

@Test func everyKernelAsksForNoMoreSharedMemoryThanTheGPUsThatRunItAllow() {
    // A block's most dynamic shared memory on each compute capability.
    let limits = [(7, 5, 64), (8, 0, 163), (8, 6, 99), (8, 9, 99), (9, 0, 227), (12, 0, 99)]
    for (major, minor, kilobytes) in limits {
        for kernel in Kernel.allCases where kernel.runs(major: major, minor: minor) {
            #expect(
                kernel.dynamicSharedBytes <= kilobytes * 1024,
                "\(kernel.name) asks sm_\(major)\(minor) for \(kernel.dynamicSharedBytes) bytes")
        }
    }
    // The tensor-core kernels leave Turing, the warpgroup ones everything but Hopper.
    #expect(!Kernel.ternaryMatmulTensorCores.runs(major: 7, minor: 5))
    #expect(Kernel.ternaryMatmulTensorCores.runs(major: 8, minor: 6))
    #expect(!Kernel.ternaryMatmulWarpgroup.runs(major: 12, minor: 0))
    #expect(Kernel.ternaryMatmulWarpgroup.runs(major: 9, minor: 0))
}

@Test func gpusOlderThanTuringGetAMessageInsteadOfACompilerLog() {
    #expect(!KernelBuild.compiles(major: 7, minor: 0))
    #expect(KernelBuild.compiles(major: 7, minor: 5))
    #expect(KernelBuild.compiles(major: 12, minor: 0))
    let message = CUDAError.unsupportedGPU(name: "Tesla V100-SXM2-16GB", major: 7, minor: 0).description
    #expect(message.contains("7.0") && message.contains("7.5") && message.contains("--device cpu"))
}

@Test func cacheKeysFollowSourceAndOptions() {
    let key = KernelBuild.key(source: "a", options: ["x"])
    #expect(key.count == 16 && key.allSatisfy(\.isHexDigit))
    #expect(key == KernelBuild.key(source: "a", options: ["x"]))
    #expect(key != KernelBuild.key(source: "b", options: ["x"]))
    #expect(key != KernelBuild.key(source: "a", options: ["y"]))
    // The separator keeps "ab" + [] apart from "a" + ["b"].
    #expect(KernelBuild.key(source: "ab", options: []) != KernelBuild.key(source: "a", options: ["b"]))
    #expect(KernelBuild.fileName(key: key, major: 9, minor: 0) == "kernels-\(key)-sm_90.cubin")
}

@Test func cacheFolderComesFromTheEnvironment() {
    #expect(KernelBuild.cacheDirectory { ["XDG_CACHE_HOME": "/c", "HOME": "/h"][$0] } == "/c/onebit/cuda")
    #expect(KernelBuild.cacheDirectory { ["XDG_CACHE_HOME": "", "HOME": "/h"][$0] } == "/h/.cache/onebit/cuda")
    #expect(KernelBuild.cacheDirectory { _ in nil } == nil)
}

@Test func cachedModulesRoundTripAndUnwritableFoldersAreIgnored() {
    let directory = "/tmp/onebit-cuda-test-\(getpid())/a/b"
    let bytes = (0..<100_000).map { UInt8(truncatingIfNeeded: $0 &* 31) }
    KernelBuild.write(bytes, directory: directory, file: "k.cubin")
    #expect(KernelBuild.read(directory + "/k.cubin") == bytes)
    #expect(KernelBuild.read(directory + "/absent.cubin") == nil)
    // A folder under a file cannot be made: nothing is written and nothing fails.
    KernelBuild.write(bytes, directory: directory + "/k.cubin/sub", file: "k.cubin")
    #expect(KernelBuild.read(directory + "/k.cubin/sub/k.cubin") == nil)
    unlink(directory + "/k.cubin")
}

@Test func everyKernelIsDefinedInTheSource() throws {
    let source = KernelSource.text
    for kernel in Kernel.allCases {
        // Launch bounds may stand between the return type and the name.
        let declaration = try Regex(
            #"extern "C" __global__ void (__launch_bounds__\([^)]*\)\s*)?"# + kernel.name + #"\("#)
        #expect(source.contains(declaration), "\(kernel.name)")
    }
    #expect(Set(Kernel.allCases.map(\.name)).count == Kernel.allCases.count)
    for (open, close) in [("{", "}"), ("(", ")"), ("[", "]")] {
        #expect(source.count { String($0) == open } == source.count { String($0) == close }, "\(open)\(close)")
    }
}

/// Whether NVRTC can be opened here (it needs no GPU, only the library on the loader path).
private let compilerPresent: Bool = {
    var table = ob_nvrtc()
    var message = [CChar](repeating: 0, count: 256)
    let names = KernelModule.compilerLibraries.map { strdup($0) }
    defer { names.forEach { free($0) } }
    return names.map { UnsafePointer($0) }.withUnsafeBufferPointer {
        ob_cuda_open_nvrtc($0.baseAddress, $0.count, &table, &message, message.count) == 0
    }
}()

@Test(.enabled(if: compilerPresent, "NVRTC is not on the library path"))
func theKernelsCompileFromTuringToBlackwell() throws {
    for (major, minor) in [(7, 5), (8, 0), (9, 0), (12, 0)] {
        let (image, log) = try KernelModule.compile(options: KernelBuild.options(major: major, minor: minor))
        // An ELF image, as the driver loads it.
        #expect(Array(image.prefix(4)) == [0x7f, 0x45, 0x4c, 0x46])
        // Nor does the compiler find anything to warn of (a macro defined twice, with two values, went unnoticed
        // while only this log said so).
        let warnings = log.split(separator: "\n").filter { $0.contains("warning") }
        #expect(warnings.isEmpty, "sm_\(major)\(minor): \(warnings)")
    }
}

/// What ptxas says of every kernel compiled for Hopper (`--ptxas-options=-v`), or why it could not be had.
private let hopperLog = Result {
    try KernelModule.compile(options: KernelBuild.options(major: 9, minor: 0) + ["--ptxas-options=-v"]).log
}

/// The registers a thread of `kernel` uses, as ptxas's `-v` log reports them, or nil if it does not.
private func registers(of kernel: String, in log: String) -> Int? {
    let lines = log.split(separator: "\n")
    guard let entry = lines.firstIndex(where: { $0.contains("Compiling entry function '\(kernel)'") }),
        let used = lines[entry...].first(where: { $0.contains("Used ") && $0.contains(" registers") })
    else { return nil }
    let words = used.split(separator: " ")
    return words.firstIndex(of: "registers,").flatMap { $0 > 0 ? Int(words[$0 - 1]) : nil }
}

@Test(.enabled(if: compilerPresent, "NVRTC is not on the library path"))
func theWarpgroupProductsAreIssuedBackToBack() throws {
    // ptxas says so (C7515) where it makes each wgmma wait for the one before: 64 sequences then decoded 6-8% slower
    // on an H200.
    let log = try hopperLog.get()
    #expect(log.contains("ternary_matmul_wgmma"))
    #expect(!log.contains("C7515"), "\(log.split(separator: "\n").filter { $0.contains("C7515") })")
}

@Test(.enabled(if: compilerPresent, "NVRTC is not on the library path"))
func theSingleTokenProductKeepsToFortyEightRegisters() throws {
    // On an H200 two variants of it that took 55 decoded the Falcon3-10B shape 6-8% slower (BENCHMARKS, "Per-tensor
    // weight scales read before the wait").
    let used = try #require(registers(of: "ternary_fused_1", in: try hopperLog.get()))
    #expect(used <= 48)
}

@Test(.enabled(if: compilerPresent, "NVRTC is not on the library path"))
func theTileProductsKeepToTheRegistersTheirGridsAreSizedFor() throws {
    // CUDABackend.residentTiles counts 64 a thread for these two and KernelSource.streamRegisters for the streamed
    // one; capped there by launch bounds ternary_tiles_1 took 64 and lost its gain on an H200 (BENCHMARKS,
    // "Single-token products on the tensor cores"), so the bound is this test, not the source.
    for kernel in ["ternary_tiles_1", "ternary_tiles_n"] {
        let used = try #require(registers(of: kernel, in: try hopperLog.get()))
        #expect(used <= 64, "\(kernel)")
    }
    let streamed = try #require(registers(of: "ternary_tiles_stream_1", in: try hopperLog.get()))
    #expect(streamed <= KernelSource.streamRegisters)
}

/// The bytes of spill stores ptxas reports for `kernel`, or nil if it reports none.
private func spillStores(of kernel: String, in log: String) -> Int? {
    let lines = log.split(separator: "\n")
    guard let entry = lines.firstIndex(where: { $0.contains("Compiling entry function '\(kernel)'") }) else {
        return nil
    }
    let next = lines[(entry + 1)...].firstIndex(where: { $0.contains("Compiling entry function") }) ?? lines.endIndex
    guard let spills = lines[entry..<next].first(where: { $0.contains("bytes spill stores") }) else { return nil }
    let words = spills.split(separator: " ")
    return words.firstIndex(of: "spill").flatMap { $0 > 1 ? Int(words[$0 - 2]) : nil }
}

@Test(.enabled(if: compilerPresent, "NVRTC is not on the library path"))
func thePromptAttentionOnTheTensorCoresKeepsItsSumsInRegisters() throws {
    // Its first version held the queries' fragments in registers too: 255 registers and 216 bytes of spills.
    for kernel in ["attention_prefill_mma", "attention_prefill_mma_wide", "attention_prefill_mma_short"] {
        let spilled = try #require(spillStores(of: kernel, in: try hopperLog.get()))
        #expect(spilled == 0, "\(kernel)")
    }
    #expect(KernelSource.prefillTensorCoreSharedBytes(wide: false) <= 99 * 1024, "more than sm_86 and sm_120 allow")
    #expect(KernelSource.prefillTensorCoreSharedBytes(wide: true) <= 227 * 1024, "more than sm_90 allows")
    #expect(KernelSource.prefillTensorCoreSharedBytes(wide: false, parts: 4) <= 227 * 1024, "more than sm_90 allows")
    #expect(!Kernel.attentionPrefillTensorCoresWide.runs(major: 8, minor: 0), "sm_80 allows a block 163 KB")
    #expect(!Kernel.attentionPrefillTensorCoresWide.runs(major: 12, minor: 0), "sm_120 allows a block 99 KB")
    #expect(!Kernel.attentionPrefillTensorCoresShort.runs(major: 8, minor: 9), "sm_89 allows a block 99 KB")
    #expect(KernelSource.prefillTensorCoreRows(parts: 2) == 64 && KernelSource.prefillTensorCoreRows(parts: 4) == 32)
}

@Test(.enabled(if: compilerPresent, "NVRTC is not on the library path"))
func theLongRowsNormsKeepTheirQuadsInRegisters() throws {
    // 1,024 threads leave the long one 64 registers; a spill would put the row's quads back in memory one by one.
    for kernel in ["rms_norm_quantize_long", "rms_norm_quantize_split"] {
        let spilled = try #require(spillStores(of: kernel, in: try hopperLog.get()))
        #expect(spilled == 0, "\(kernel)")
    }
    #expect(KernelSource.longNormWidth * 4 <= 99 * 1024, "more than sm_86 and sm_120 allow")
    #expect(KernelSource.longNormWidth >= 23_040, "Falcon3-10B's feed-forward")
    let clusterWidth = 4 * KernelSource.splitNormQuads * KernelSource.splitNormThreads * KernelSource.splitNormBlocks
    #expect(clusterWidth >= KernelSource.longNormWidth, "the cluster takes every row the long norm takes")
}

@Test func registerCountsAreReadFromThePTXASLog() {
    let log = """
        ptxas info    : Compiling entry function 'other' for 'sm_90a'
        ptxas info    : Used 72 registers, used 1 barriers, 32 bytes smem
        ptxas info    : Compiling entry function 'ternary_fused_1' for 'sm_90a'
        ptxas info    : Function properties for ternary_fused_1
        ptxas         .     0 bytes stack frame, 0 bytes spill stores, 0 bytes spill loads
        ptxas info    : Used 48 registers, used 1 barriers, 32 bytes smem
        """
    #expect(registers(of: "ternary_fused_1", in: log) == 48)
    #expect(registers(of: "other", in: log) == 72)
    #expect(registers(of: "absent", in: log) == nil)
    #expect(spillStores(of: "ternary_fused_1", in: log) == 0)
    #expect(spillStores(of: "other", in: log) == nil)
}
