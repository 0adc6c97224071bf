import ArgumentParser
import OnebitEngine
import OnebitModel

#if canImport(Glibc)
    import Glibc
#endif

/// Options every command that opens a model shares.
struct ModelOptions: ParsableArguments {
    @Option(
        name: .long,
        help: ArgumentHelp(
            "A Hugging Face model directory or a .gguf file (default: the built-in demo model).", valueName: "path"))
    var model: String?

    @Option(help: "Threads for the CPU kernels (default: the physical cores).")
    var threads: Int?

    func validate() throws {
        if let threads, threads < 1 { throw ValidationError("--threads must be at least 1") }
    }

    @Option(
        help: ArgumentHelp(
            "Where to run the model: cpu, cuda, or auto (the GPU when a driver and GPU are present, else the CPU).",
            valueName: "device"))
    var device: ComputeDevice = .auto

    /// Loads the model the options name, showing what is being loaded on a terminal.
    func load() throws -> LoadedModel {
        let status = StatusLine()
        status.show("loading \(model ?? EmbeddedModel.name)")
        defer { status.clear() }
        guard let model else { return try EmbeddedModel.load() }
        return try ModelLoader.load(path: model)
    }

    /// Prepares `model` for the device the options name; a fallback to the CPU is reported on standard error.
    /// Loads the model and hands its tensors to the backend; only the backend's prepared copy stays in memory.
    func loadPrepared(int8Head: Bool = false) throws -> LanguageModel {
        let language = try prepare(load(), int8Head: int8Head)
        returnFreedMemory()
        return language
    }

    func prepare(_ model: LoadedModel, int8Head: Bool = false) throws -> LanguageModel {
        try LanguageModel(model, device: device, threads: threads, int8Head: int8Head) { writeError("onebit: \($0)\n") }
    }
}

extension ComputeDevice: ExpressibleByArgument {}

/// Gives freed heap pages back to the system. The canonical tensors (gigabytes for a 2B model) are freed once a
/// backend has prepared them, but glibc keeps freed pages for reuse unless asked; `malloc_trim` is a glibc extension
/// the Swift C module does not import, so it is looked up at run time.
private func returnFreedMemory() {
    #if canImport(Glibc)
        typealias MallocTrim = @convention(c) (Int) -> Int32
        guard let program = dlopen(nil, RTLD_NOW), let symbol = dlsym(program, "malloc_trim") else { return }
        _ = unsafeBitCast(symbol, to: MallocTrim.self)(0)
    #endif
}
