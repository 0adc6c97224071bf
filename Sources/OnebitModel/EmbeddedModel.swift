import CDemoModel

/// The small BitNet b1.58 model built into the executable (`Models/onebit-demo`): every command's default, so
/// onebit does something real on a machine with no model files and no network.
public enum EmbeddedModel {
    /// How the embedded model is named in messages and by `onebit info`.
    public static let name = "onebit-demo (built in)"
    /// The embedded model's id where an API names models (`/v1/models`).
    public static let id = "onebit-demo"

    /// The embedded files as a model directory; they live in the executable's read-only data, so nothing is copied.
    public static var directory: ModelDirectory {
        var count = 0
        let files = ob_demo_model_files(&count)!
        var mapped: [String: MappedFile] = [:]
        for file in UnsafeBufferPointer(start: files, count: count) {
            let name = String(cString: file.name)
            mapped[name] = MappedFile(
                staticBytes: UnsafeRawBufferPointer(start: file.bytes, count: file.count), name: name)
        }
        return ModelDirectory(name: name, files: mapped)
    }

    /// Loads the embedded model.
    public static func load() throws(ModelLoadError) -> LoadedModel {
        try LoadedModel(contents: HuggingFaceCheckpointLoader.load(directory: directory), origin: name)
    }
}
