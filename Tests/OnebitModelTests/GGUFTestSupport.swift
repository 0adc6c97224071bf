import OnebitModel

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Appends little-endian GGUF primitives to a byte array.
struct ByteWriter {
    var bytes: [UInt8] = []

    mutating func integer<T: FixedWidthInteger>(_ value: T) {
        for index in 0..<MemoryLayout<T>.size { bytes.append(UInt8(truncatingIfNeeded: value >> (8 * index))) }
    }

    mutating func string(_ text: String) {
        integer(UInt64(text.utf8.count))
        bytes.append(contentsOf: text.utf8)
    }

    /// A metadata value without its type id.
    mutating func payload(_ value: GGUFValue) {
        switch value {
        case .uint8(let v): integer(v)
        case .int8(let v): integer(v)
        case .uint16(let v): integer(v)
        case .int16(let v): integer(v)
        case .uint32(let v): integer(v)
        case .int32(let v): integer(v)
        case .float32(let v): integer(v.bitPattern)
        case .bool(let v): integer(UInt8(v ? 1 : 0))
        case .string(let v): string(v)
        case .array(let elements):
            integer(elements.first.map(Self.typeID) ?? 0)
            integer(UInt64(elements.count))
            for element in elements { payload(element) }
        case .uint64(let v): integer(v)
        case .int64(let v): integer(v)
        case .float64(let v): integer(v.bitPattern)
        }
    }

    static func typeID(_ value: GGUFValue) -> UInt32 {
        switch value {
        case .uint8: 0
        case .int8: 1
        case .uint16: 2
        case .int16: 3
        case .uint32: 4
        case .int32: 5
        case .float32: 6
        case .bool: 7
        case .string: 8
        case .array: 9
        case .uint64: 10
        case .int64: 11
        case .float64: 12
        }
    }
}

/// One tensor to write: dimensions in ggml order, the raw ggml type id and the encoded data.
struct TestTensor {
    var name: String
    var dimensions: [Int]
    var type: UInt32
    var data: [UInt8]
}

/// Writes a GGUF file byte by byte, the way gguf-py lays it out.
struct GGUFBuilder {
    var version: UInt32 = 3
    var metadata: [(key: String, value: GGUFValue)] = []
    var tensors: [TestTensor] = []
    var alignment = 32

    /// The file, and the offset of each tensor's relative-offset field (for tests that corrupt it).
    func build() -> (bytes: [UInt8], offsetFields: [Int]) {
        var writer = ByteWriter()
        writer.integer(UInt32(0x4655_4747))
        writer.integer(version)
        writer.integer(UInt64(tensors.count))
        writer.integer(UInt64(metadata.count))
        for (key, value) in metadata {
            writer.string(key)
            writer.integer(ByteWriter.typeID(value))
            writer.payload(value)
        }
        var relative = 0
        var offsetFields: [Int] = []
        var relativeOffsets: [Int] = []
        for tensor in tensors {
            writer.string(tensor.name)
            writer.integer(UInt32(tensor.dimensions.count))
            for extent in tensor.dimensions { writer.integer(UInt64(extent)) }
            writer.integer(tensor.type)
            offsetFields.append(writer.bytes.count)
            writer.integer(UInt64(relative))
            relativeOffsets.append(relative)
            relative = (relative + tensor.data.count + alignment - 1) / alignment * alignment
        }
        var bytes = writer.bytes
        let dataStart = (bytes.count + alignment - 1) / alignment * alignment
        for (tensor, offset) in zip(tensors, relativeOffsets) {
            bytes += [UInt8](repeating: 0, count: dataStart + offset - bytes.count)
            bytes += tensor.data
        }
        return (bytes, offsetFields)
    }

    var bytes: [UInt8] { build().bytes }
}

/// Writes `bytes` to a fresh temporary file, maps it, and removes the file after `body`.
func withMappedFile<R>(_ bytes: [UInt8], _ body: (MappedFile) throws -> R) throws -> R {
    let directory = getenv("TMPDIR").map { String(cString: $0) } ?? "/tmp"
    let path = "\(directory)/onebit-gguf-test-\(getpid())-\(UInt64.random(in: 0...UInt64.max)).gguf"
    let descriptor = open(path, O_WRONLY | O_CREAT | O_EXCL, 0o600)
    precondition(descriptor >= 0, "cannot create \(path)")
    let written = bytes.withUnsafeBytes { write(descriptor, $0.baseAddress, $0.count) }
    close(descriptor)
    defer { unlink(path) }
    precondition(written == bytes.count, "short write to \(path)")
    return try body(try MappedFile(path: path))
}

/// Parses `bytes` as a GGUF file.
func parseGGUF(_ bytes: [UInt8]) throws -> GGUFFile {
    try withMappedFile(bytes) { try GGUFFile(file: $0) }
}

/// The error parsing `bytes` throws, or `nil` when it parses.
func parseError(_ bytes: [UInt8]) -> ModelLoadError? {
    do {
        _ = try parseGGUF(bytes)
        return nil
    } catch let error as ModelLoadError {
        return error
    } catch {
        return .unsupported("unexpected error \(error)")
    }
}

/// A deterministic generator, so a failing case can be replayed.
struct SplitMix64: RandomNumberGenerator {
    var state: UInt64

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// Random ternary values.
func randomTernary(_ count: Int, _ generator: inout SplitMix64) -> [Int8] {
    (0..<count).map { _ in Int8.random(in: -1...1, using: &generator) }
}

/// Encoders written from the format descriptions, independent of the decoders under test.
enum TestEncoding {
    static func littleEndian<T: FixedWidthInteger>(_ value: T) -> [UInt8] {
        var writer = ByteWriter()
        writer.integer(value)
        return writer.bytes
    }

    /// I2_S: 128-weight blocks of 32 bytes, byte g holding weights g, 32+g, 64+g, 96+g from the top bits down;
    /// a trailing short block of r weights interleaves at stride r/4. Then the f32 scale in a 32-byte tail.
    static func i2S(_ values: [Int8], scale: Float) -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: values.count / 4)
        var start = 0
        while start < values.count {
            let width = min(128, values.count - start) / 4
            for index in 0..<width * 4 {
                let code = UInt8(values[start + index] + 1)
                bytes[start / 4 + index % width] |= code << (6 - 2 * (index / width))
            }
            start += width * 4
        }
        return bytes + littleEndian(scale.bitPattern) + [UInt8](repeating: 0, count: 28)
    }

    /// TQ2_0: per 256 weights, qs[32c + m] holds weights 128c + 32l + m in bits 2l; then the fp16 scale.
    static func tq2(_ values: [Int8], scales: [Float16]) -> [UInt8] {
        var bytes: [UInt8] = []
        for (block, scale) in scales.enumerated() {
            var qs = [UInt8](repeating: 0, count: 64)
            for c in 0..<2 {
                for l in 0..<4 {
                    for m in 0..<32 {
                        qs[32 * c + m] |= UInt8(values[256 * block + 128 * c + 32 * l + m] + 1) << (2 * l)
                    }
                }
            }
            bytes += qs + littleEndian(scale.bitPattern)
        }
        return bytes
    }

    /// TQ1_0: base-3 digits, most significant first, scaled to a byte by ceil(v * 256 / 243).
    static func tq1(_ values: [Int8], scales: [Float16]) -> [UInt8] {
        func pack(_ digits: [Int]) -> UInt8 {
            var v = digits.reduce(0) { $0 * 3 + $1 }
            if digits.count == 4 { v *= 3 }
            return UInt8((v * 256 + 242) / 243)
        }
        var bytes: [UInt8] = []
        for (block, scale) in scales.enumerated() {
            let t = (0..<256).map { Int(values[256 * block + $0]) + 1 }
            let first = (0..<32).map { m in pack((0..<5).map { t[m + 32 * $0] }) }
            let second = (0..<16).map { m in pack((0..<5).map { t[160 + m + 16 * $0] }) }
            let third = (0..<4).map { j in pack((0..<4).map { t[240 + j + 4 * $0] }) }
            bytes += first + second + third + littleEndian(scale.bitPattern)
        }
        return bytes
    }

    static func f32(_ values: [Float]) -> [UInt8] { values.flatMap { littleEndian($0.bitPattern) } }
    static func f16(_ values: [Float]) -> [UInt8] { values.flatMap { littleEndian(Float16($0).bitPattern) } }
    static func bf16(_ values: [Float]) -> [UInt8] {
        values.flatMap { littleEndian(UInt16(truncatingIfNeeded: $0.bitPattern >> 16)) }
    }
}
