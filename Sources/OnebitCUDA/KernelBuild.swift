#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// How the kernels are compiled and where compiled kernels are kept between runs.
///
/// A compiled module is cached as `kernels-<hash>-sm_<arch>.cubin`, the hash covering the source and the compiler
/// options, under `$XDG_CACHE_HOME/onebit/cuda` (or `~/.cache/onebit/cuda`). A cache that cannot be read or written
/// only costs a recompilation.
enum KernelBuild {
    /// NVRTC options for a GPU of compute capability `major.minor`: machine code for exactly that GPU (with its
    /// architecture-specific instructions on 9.0, where the products use `wgmma`), and no fused multiply-add
    /// contraction, so products and sums round as on the CPU.
    static func options(major: Int, minor: Int) -> [String] {
        let suffix = hasWarpgroups(major: major, minor: minor) ? "a" : ""
        return ["--gpu-architecture=sm_\(major)\(minor)\(suffix)", "--std=c++17", "--fmad=false"]
    }

    /// The oldest compute capability CUDA 13's NVRTC compiles for (7.5, Turing): what a GPU needs to run the kernels.
    static let oldestGPU = (major: 7, minor: 5)

    /// Whether the kernels compile for a GPU of compute capability `major.minor`.
    static func compiles(major: Int, minor: Int) -> Bool { (major, minor) >= oldestGPU }

    /// Whether a GPU of compute capability `major.minor` runs the `wgmma` kernels (``Kernel/runs(major:minor:)``):
    /// 9.0, for which the module is compiled with its architecture-specific instructions.
    static func hasWarpgroups(major: Int, minor: Int) -> Bool { major == 9 && minor == 0 }

    /// A 64-bit FNV-1a hash of the source and options, as 16 hex digits.
    static func key(source: String, options: [String]) -> String {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in ([source] + options).joined(separator: "\u{0}").utf8 {
            hash = (hash ^ UInt64(byte)) &* 0x100_0000_01b3
        }
        let digits = String(hash, radix: 16)
        return String(repeating: "0", count: 16 - digits.count) + digits
    }

    /// The cache folder from the environment `variable` reads, or `nil` when neither variable is set.
    static func cacheDirectory(variable: (String) -> String? = { getenv($0).map { String(cString: $0) } }) -> String? {
        if let base = variable("XDG_CACHE_HOME"), !base.isEmpty { return base + "/onebit/cuda" }
        if let home = variable("HOME"), !home.isEmpty { return home + "/.cache/onebit/cuda" }
        return nil
    }

    /// The cache file name for a module.
    static func fileName(key: String, major: Int, minor: Int) -> String {
        "kernels-\(key)-sm_\(major)\(minor).cubin"
    }

    /// The contents of `path`, or `nil` if it cannot be read.
    static func read(_ path: String) -> [UInt8]? {
        guard let file = fopen(path, "rb") else { return nil }
        defer { fclose(file) }
        var bytes: [UInt8] = []
        var block = [UInt8](repeating: 0, count: 1 << 16)
        while true {
            let count = block.withUnsafeMutableBytes { fread($0.baseAddress, 1, $0.count, file) }
            if count == 0 { break }
            bytes += block[0..<count]
        }
        return ferror(file) == 0 && !bytes.isEmpty ? bytes : nil
    }

    /// Writes `bytes` to `file` in `directory`, creating the folders; whole or not at all (written beside the file,
    /// then renamed). Failures are ignored: the cache is an optimisation.
    static func write(_ bytes: [UInt8], directory: String, file: String) {
        var path = directory.hasPrefix("/") ? "" : "."
        for part in directory.split(separator: "/") {
            path += "/" + part
            mkdir(path, 0o755)
        }
        let final = directory + "/" + file
        let temporary = final + ".\(getpid()).tmp"
        guard let handle = fopen(temporary, "wb") else { return }
        let written = bytes.withUnsafeBytes { fwrite($0.baseAddress, 1, $0.count, handle) }
        let closed = fclose(handle) == 0
        if written == bytes.count && closed && rename(temporary, final) == 0 { return }
        unlink(temporary)
    }
}
