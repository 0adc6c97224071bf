#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// A read-only memory mapping of a whole file.
///
/// Weights files are gigabytes; mapping them lets the loader read only what it converts and leaves the page cache
/// to the kernel. Every read is bounds-checked, so a file whose headers lie produces an error, never a crash.
public final class MappedFile: @unchecked Sendable {
    // Sendable: the mapping is read-only and never remapped after init.
    /// Path the file was opened from.
    public let path: String
    /// File size in bytes.
    public let count: Int
    private let base: UnsafeRawPointer?
    private let ownsMapping: Bool

    /// Maps `path` read-only.
    public init(path: String) throws(ModelLoadError) {
        self.path = path
        let fd = open(path, O_RDONLY)
        guard fd >= 0 else { throw .unreadable(path: path, reason: String(cString: strerror(errno))) }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0 else { throw .unreadable(path: path, reason: String(cString: strerror(errno))) }
        guard (info.st_mode & S_IFMT) == S_IFREG else { throw .unreadable(path: path, reason: "not a regular file") }
        count = Int(info.st_size)
        ownsMapping = count > 0
        if count == 0 {
            base = nil
            return
        }
        let mapping = mmap(nil, count, PROT_READ, MAP_PRIVATE, fd, 0)
        guard let mapping, mapping != MAP_FAILED else {
            throw .unreadable(path: path, reason: String(cString: strerror(errno)))
        }
        base = UnsafeRawPointer(mapping)
    }

    /// Wraps bytes that live as long as the process (a model embedded in the executable), under the name `name`.
    public init(staticBytes: UnsafeRawBufferPointer, name: String) {
        path = name
        count = staticBytes.count
        base = staticBytes.baseAddress
        ownsMapping = false
    }

    deinit {
        if ownsMapping, let base { munmap(UnsafeMutableRawPointer(mutating: base), count) }
    }

    /// Whether `count` bytes at `offset` lie inside the file.
    public func contains(offset: Int, count: Int) -> Bool {
        offset >= 0 && count >= 0 && offset <= self.count && count <= self.count - offset
    }

    /// Calls `body` with the bytes `offset ..< offset + count`; throws ``ModelLoadError/truncated(path:detail:)``
    /// when they run past the end of the file.
    public func withBytes<R, E: Error>(
        offset: Int, count: Int, what: @autoclosure () -> String,
        _ body: (UnsafeRawBufferPointer) throws(E) -> R
    ) throws -> R {
        guard contains(offset: offset, count: count) else {
            throw ModelLoadError.truncated(
                path: path, detail: "\(what()) needs bytes \(offset)..<\(offset &+ count) of \(self.count)")
        }
        guard let base else { return try body(UnsafeRawBufferPointer(start: nil, count: 0)) }
        return try body(UnsafeRawBufferPointer(start: base + offset, count: count))
    }

    /// A copy of the bytes `offset ..< offset + count`.
    public func bytes(offset: Int, count: Int, what: @autoclosure () -> String) throws -> [UInt8] {
        try withBytes(offset: offset, count: count, what: what()) { Array($0) }
    }
}
