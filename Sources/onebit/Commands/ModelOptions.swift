import ArgumentParser
import OnebitEngine
import OnebitModel

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
    func prepare(_ model: LoadedModel, int8Head: Bool = false) throws -> LanguageModel {
        try LanguageModel(model, device: device, threads: threads, int8Head: int8Head) { writeError("onebit: \($0)\n") }
    }
}

extension ComputeDevice: ExpressibleByArgument {}
