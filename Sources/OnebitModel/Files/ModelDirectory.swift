/// The files of a Hugging Face checkpoint: a directory on disk, or a set of named files held in memory (the model
/// embedded in the executable).
public struct ModelDirectory: Sendable {
    private enum Storage: Sendable {
        case disk(String)
        case memory([String: MappedFile])
    }

    private let storage: Storage
    /// How the directory is named in messages: its path, or the embedded model's name.
    public let name: String

    /// The directory at `path`.
    public init(path: String) {
        storage = .disk(path)
        name = path
    }

    /// Files held in memory, by file name.
    public init(name: String, files: [String: MappedFile]) {
        storage = .memory(files)
        self.name = name
    }

    /// Whether the directory holds `file`.
    public func contains(_ file: String) -> Bool {
        switch storage {
        case .disk(let path): fileExists(path + "/" + file)
        case .memory(let files): files[file] != nil
        }
    }

    /// The file named `file`, mapped.
    public func open(_ file: String) throws(ModelLoadError) -> MappedFile {
        switch storage {
        case .disk(let path):
            return try MappedFile(path: path + "/" + file)
        case .memory(let files):
            guard let mapped = files[file] else { throw .missingFile(file) }
            return mapped
        }
    }

    /// The whole content of `file`.
    func bytes(_ file: String) throws(ModelLoadError) -> [UInt8] {
        let mapped = try open(file)
        do {
            return try mapped.bytes(offset: 0, count: mapped.count, what: "the file")
        } catch {
            throw .unreadable(path: mapped.path, reason: "\(error)")
        }
    }

    /// `file` parsed as JSON.
    func json(_ file: String) throws(ModelLoadError) -> JSONValue {
        do {
            return try JSONValue(parsing: try bytes(file))
        } catch let error as JSONError {
            throw .malformed(path: name + "/" + file, detail: error.description)
        } catch {
            throw error as? ModelLoadError ?? .malformed(path: name + "/" + file, detail: "\(error)")
        }
    }
}
