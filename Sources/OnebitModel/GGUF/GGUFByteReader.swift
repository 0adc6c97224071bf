extension MappedFile {
    /// Calls `body` with the bytes `offset ..< offset + count` as a bounds-checked span; throws
    /// ``ModelLoadError/truncated(path:detail:)`` when they run past the end of the file.
    ///
    /// This is the one place the GGUF code touches raw memory: everything above it indexes spans, so a wrong
    /// index traps instead of reading foreign memory.
    func withSpan<R>(
        offset: Int, count: Int, what: @autoclosure () -> String,
        _ body: (Span<UInt8>) throws(ModelLoadError) -> R
    ) throws(ModelLoadError) -> R {
        do {
            return try withBytes(offset: offset, count: count, what: what()) {
                (raw: UnsafeRawBufferPointer) throws(ModelLoadError) -> R in
                try raw.withMemoryRebound(to: UInt8.self) { (bytes) throws(ModelLoadError) -> R in
                    try body(bytes.span)
                }
            }
        } catch let error as ModelLoadError {
            throw error
        } catch {
            // withBytes only throws ModelLoadError or what `body` throws, which is typed; kept for the compiler.
            throw .malformed(path: path, detail: "\(error)")
        }
    }
}

extension Span<UInt8> {
    /// The little-endian integer whose first byte is at `index`.
    func littleEndian<T: FixedWidthInteger & UnsignedInteger>(at index: Int, as type: T.Type = T.self) -> T {
        var value: T = 0
        for byte in 0..<MemoryLayout<T>.size {
            value |= T(self[index + byte]) << (8 * byte)
        }
        return value
    }
}

/// Reads the header of a GGUF file front to back: little-endian integers, floats and length-prefixed strings,
/// each checked against the end of the file before it is read.
struct GGUFByteReader {
    /// The file being read.
    let file: MappedFile
    /// Byte offset of the next read.
    private(set) var offset: Int

    /// A reader positioned at `offset` of `file`.
    init(file: MappedFile, offset: Int = 0) {
        self.file = file
        self.offset = offset
    }

    /// Bytes between the read position and the end of the file.
    var remaining: Int { file.count - offset }

    /// Reads one little-endian unsigned integer.
    mutating func read<T: FixedWidthInteger & UnsignedInteger>(
        _ type: T.Type, what: @autoclosure () -> String
    ) throws(ModelLoadError) -> T {
        let size = MemoryLayout<T>.size
        let value = try file.withSpan(offset: offset, count: size, what: what()) { $0.littleEndian(at: 0, as: T.self) }
        offset += size
        return value
    }

    /// Reads a `u64` count or length and checks that `count` items of at least `minimumItemSize` bytes each
    /// can still follow, so that no lying count turns into a huge allocation or a long loop.
    mutating func readCount(minimumItemSize: Int, what: @autoclosure () -> String) throws(ModelLoadError) -> Int {
        let raw = try read(UInt64.self, what: what())
        guard let count = Int(exactly: raw), count <= remaining / minimumItemSize else {
            throw .truncated(
                path: file.path,
                detail:
                    "\(what()) announces \(raw) items of at least \(minimumItemSize) bytes, only \(remaining) bytes remain"
            )
        }
        return count
    }

    /// Reads a GGUF string: a `u64` byte length, then that many bytes of UTF-8.
    mutating func readString(what: @autoclosure () -> String) throws(ModelLoadError) -> String {
        let length = try readCount(minimumItemSize: 1, what: what())
        let text = try file.withSpan(offset: offset, count: length, what: what()) { bytes in
            var utf8: [UInt8] = []
            utf8.reserveCapacity(length)
            for index in bytes.indices { utf8.append(bytes[index]) }
            return String(decoding: utf8, as: UTF8.self)
        }
        offset += length
        return text
    }

    /// Moves the read position to the next multiple of `alignment`.
    mutating func align(to alignment: Int) {
        offset = (offset + alignment - 1) / alignment * alignment
    }
}
