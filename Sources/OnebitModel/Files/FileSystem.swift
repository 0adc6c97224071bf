#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Whether `path` names an existing regular file.
func fileExists(_ path: String) -> Bool {
    var info = stat()
    return stat(path, &info) == 0 && (info.st_mode & S_IFMT) == S_IFREG
}

/// Whether `path` names an existing directory.
func directoryExists(_ path: String) -> Bool {
    var info = stat()
    return stat(path, &info) == 0 && (info.st_mode & S_IFMT) == S_IFDIR
}

/// The whole content of a small file (configs, tokenizers).
func readFile(_ path: String) throws(ModelLoadError) -> [UInt8] {
    let file = try MappedFile(path: path)
    do {
        return try file.bytes(offset: 0, count: file.count, what: "the file")
    } catch {
        throw .unreadable(path: path, reason: "\(error)")
    }
}

/// Reads small text inputs the command line names (prompts, message lists, perplexity corpora).
public enum TextFile {
    /// The contents of `path` as UTF-8 text (invalid sequences become U+FFFD).
    public static func read(_ path: String) throws(ModelLoadError) -> String {
        guard fileExists(path) else { throw .unreadable(path: path, reason: "no such file") }
        return String(decoding: try readFile(path), as: UTF8.self)
    }
}
