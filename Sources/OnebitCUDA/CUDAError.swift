/// Why the CUDA backend could not start or run.
public enum CUDAError: Error, CustomStringConvertible, Equatable {
    /// The CUDA driver library could not be opened or lacks a function we need.
    case driverUnavailable(String)
    /// The driver loaded but reports no GPU.
    case noDevice
    /// NVRTC, the run-time compiler, could not be opened.
    case compilerUnavailable(String)
    /// A driver call failed.
    case driverCall(function: String, code: Int32, message: String)
    /// NVRTC rejected the kernel source or failed.
    case compilation(String)
    /// The GPU is older than the oldest one NVRTC compiles the kernels for.
    case unsupportedGPU(name: String, major: Int, minor: Int)
    /// The model has a shape the kernels do not handle.
    case unsupportedShape(String)
    /// The GPU has less free memory than the model needs.
    case insufficientMemory(needed: Int, free: Int)

    /// A message that names the problem and what to do about it.
    public var description: String {
        switch self {
        case .driverUnavailable(let reason):
            "the CUDA driver could not be loaded (\(reason)); install the NVIDIA driver or use --device cpu"
        case .noDevice:
            "the CUDA driver reports no GPU; check nvidia-smi or use --device cpu"
        case .compilerUnavailable(let reason):
            "NVRTC could not be loaded (\(reason)); put libnvrtc.so.13 on the library path (LD_LIBRARY_PATH) "
                + "or use --device cpu"
        case .driverCall(let function, let code, let message):
            "\(function) failed with CUDA error \(code) (\(message))"
        case .compilation(let log):
            "compiling the CUDA kernels failed:\n\(log)"
        case .unsupportedGPU(let name, let major, let minor):
            "the \(name) has compute capability \(major).\(minor); the kernels need \(KernelBuild.oldestGPU.major)."
                + "\(KernelBuild.oldestGPU.minor) (Turing) or later, the oldest CUDA 13 compiles for; use --device cpu"
        case .unsupportedShape(let reason):
            "the CUDA kernels do not handle this model: \(reason); use --device cpu"
        case .insufficientMemory(let needed, let free):
            "the model needs about \(gigabytes(needed)) GB of GPU memory and the GPU has \(gigabytes(free)) GB free; "
                + "free memory on the GPU (nvidia-smi lists what holds it) or use --device cpu"
        }
    }
}

/// `bytes` in GB with two decimals.
private func gigabytes(_ bytes: Int) -> String {
    let hundredths = (bytes + 5_000_000) / 10_000_000
    let fraction = hundredths % 100
    return "\(hundredths / 100).\(fraction < 10 ? "0" : "")\(fraction)"
}
