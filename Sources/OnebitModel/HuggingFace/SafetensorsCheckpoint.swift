/// The tensors of a Hugging Face checkpoint, in one `model.safetensors` or sharded behind
/// `model.safetensors.index.json`.
struct SafetensorsCheckpoint {
    private let files: [SafetensorsFile]
    private let owner: [String: Int]

    /// Opens the weights of the checkpoint directory `directory`.
    init(directory: ModelDirectory) throws(ModelLoadError) {
        let single = "model.safetensors"
        let index = "model.safetensors.index.json"
        if directory.contains(single) {
            let file = try SafetensorsFile(file: directory.open(single))
            files = [file]
            owner = file.tensors.mapValues { _ in 0 }
            return
        }
        guard directory.contains(index) else {
            throw .missingFile("model.safetensors (or model.safetensors.index.json)")
        }
        let json = try directory.json(index)
        guard let weightMap = json["weight_map"]?.objectValue else {
            throw .malformed(path: index, detail: "no weight_map object")
        }
        var shardNumbers: [String: Int] = [:]
        var files: [SafetensorsFile] = []
        var owner: [String: Int] = [:]
        for (tensor, shardValue) in weightMap {
            guard let shard = shardValue.stringValue, !shard.contains("/"), !shard.hasPrefix(".") else {
                throw .malformed(path: index, detail: "tensor \(tensor) names an invalid shard \(shardValue.jsonText)")
            }
            if shardNumbers[shard] == nil {
                shardNumbers[shard] = files.count
                files.append(try SafetensorsFile(file: directory.open(shard)))
            }
            let number = shardNumbers[shard]!
            guard files[number].tensors[tensor] != nil else {
                throw .malformed(path: index, detail: "tensor \(tensor) is not in its shard \(shard)")
            }
            owner[tensor] = number
        }
        self.files = files
        self.owner = owner
    }

    /// Whether the checkpoint holds `name`.
    func contains(_ name: String) -> Bool { owner[name] != nil }

    /// The file that holds `name`.
    func file(for name: String) throws(ModelLoadError) -> SafetensorsFile {
        guard let number = owner[name] else { throw .missingTensor(name) }
        return files[number]
    }

    /// All tensor names.
    var tensorNames: [String] { Array(owner.keys) }
}
