import Testing

@testable import OnebitModel

@Suite struct GGUFReaderTests {
    static let everyValueType: [(key: String, value: GGUFValue)] = [
        ("t.u8", .uint8(200)), ("t.i8", .int8(-100)), ("t.u16", .uint16(60000)), ("t.i16", .int16(-30000)),
        ("t.u32", .uint32(4_000_000_000)), ("t.i32", .int32(-2_000_000_000)), ("t.f32", .float32(1e-5)),
        ("t.bool", .bool(true)), ("t.string", .string("héllo, ☃")), ("t.empty", .string("")),
        ("t.u64", .uint64(1 << 60)), ("t.i64", .int64(-(1 << 60))), ("t.f64", .float64(-2.5e300)),
        ("t.ints", .array([.int32(1), .int32(-2), .int32(3)])),
        ("t.strings", .array([.string("a b"), .string(""), .string("Ġthe")])),
        ("t.nested", .array([.array([.uint8(1), .uint8(2)]), .array([.uint8(3)])])),
    ]

    /// A small valid file: metadata of every type and two tensors.
    static func sampleFile(version: UInt32 = 3) -> GGUFBuilder {
        var builder = GGUFBuilder(version: version, metadata: everyValueType)
        builder.tensors = [
            TestTensor(name: "a", dimensions: [4, 2], type: 0, data: TestEncoding.f32((0..<8).map(Float.init))),
            TestTensor(name: "b", dimensions: [3], type: 1, data: TestEncoding.f16([1, 2, 3])),
        ]
        return builder
    }

    @Test(arguments: [UInt32(2), 3])
    func readsEveryValueType(version: UInt32) throws {
        let gguf = try parseGGUF(Self.sampleFile(version: version).bytes)
        #expect(gguf.version == Int(version))
        #expect(gguf.metadata.keys.elementsEqual(Self.everyValueType.map(\.key)))
        for (key, value) in Self.everyValueType {
            #expect(gguf.metadata[key] == value, "\(key)")
        }
        #expect(gguf.metadata["t.u32"]?.integer == 4_000_000_000)
        #expect(gguf.metadata["t.f32"]?.floatingPoint == Double(Float(1e-5)))
    }

    @Test func describesTensorsAndAlignsData() throws {
        var builder = Self.sampleFile()
        builder.alignment = 64
        builder.metadata.append(("general.alignment", .uint32(64)))
        let gguf = try parseGGUF(builder.bytes)
        #expect(gguf.alignment == 64)
        #expect(gguf.dataOffset % 64 == 0)
        let a = try #require(gguf.tensor(named: "a"))
        let b = try #require(gguf.tensor(named: "b"))
        #expect(a.dimensions == [4, 2] && a.type == .f32 && a.byteCount == 32 && a.offset == gguf.dataOffset)
        #expect(b.dimensions == [3] && b.type == .f16 && b.byteCount == 6 && b.offset == gguf.dataOffset + 64)
        #expect(gguf.tensors.map(\.name) == ["a", "b"])
        #expect(try GGUFTensorDecoder(gguf: gguf).vector(b) == [1, 2, 3])
    }

    @Test func rejectsWrongMagic() {
        var bytes = Self.sampleFile().bytes
        bytes[0] = UInt8(ascii: "X")
        guard case .unknownFormat = parseError(bytes) else {
            Issue.record("expected unknownFormat")
            return
        }
    }

    @Test(arguments: [UInt32(1), 4, 0x0300_0000])
    func rejectsUnsupportedVersions(version: UInt32) {
        let error = parseError(Self.sampleFile(version: version).bytes)
        guard case .unsupported(let detail) = error else {
            Issue.record("expected unsupported, got \(String(describing: error))")
            return
        }
        #expect(detail.contains(version == 0x0300_0000 ? "big-endian" : "version \(version)"))
    }

    /// Cutting the file anywhere (header, metadata, tensor infos, padding, data) is a clean truncation error.
    @Test func rejectsEveryTruncation() {
        let bytes = Self.sampleFile().bytes
        for length in 0..<bytes.count {
            let error = parseError(Array(bytes[..<length]))
            guard case .truncated = error else {
                Issue.record("cut at \(length) of \(bytes.count): \(String(describing: error))")
                return
            }
        }
    }

    @Test func rejectsLyingLengths() {
        // A key whose announced length is 2^60 bytes.
        var writer = ByteWriter()
        writer.integer(UInt32(0x4655_4747))
        writer.integer(UInt32(3))
        writer.integer(UInt64(0))
        writer.integer(UInt64(1))
        writer.integer(UInt64(1) << 60)
        writer.bytes += Array("key".utf8)
        guard case .truncated = parseError(writer.bytes) else {
            Issue.record("a 2^60-byte key must be a truncation error")
            return
        }
        // An array announcing 2^62 u64 elements, and a string value announcing 2^63 - 1 bytes.
        for (elementType, count) in [(UInt32(10), UInt64(1) << 62), (UInt32(0), UInt64(1) << 40)] {
            var array = ByteWriter()
            array.bytes = Array(writer.bytes[..<24])
            array.string("k")
            array.integer(UInt32(9))
            array.integer(elementType)
            array.integer(count)
            array.bytes += [UInt8](repeating: 0, count: 64)
            guard case .truncated = parseError(array.bytes) else {
                Issue.record("an array of \(count) elements must be a truncation error")
                return
            }
        }
        var string = ByteWriter()
        string.bytes = Array(writer.bytes[..<24])
        string.string("k")
        string.integer(UInt32(8))
        string.integer(UInt64(Int64.max))
        guard case .truncated = parseError(string.bytes) else {
            Issue.record("a string of 2^63 - 1 bytes must be a truncation error")
            return
        }
        // A tensor count that the remaining bytes cannot hold.
        var tensors = ByteWriter()
        tensors.bytes = Array(writer.bytes[..<8])
        tensors.integer(UInt64.max)
        tensors.integer(UInt64(0))
        guard case .truncated = parseError(tensors.bytes) else {
            Issue.record("2^64 - 1 tensors must be a truncation error")
            return
        }
    }

    @Test func rejectsTensorDataOutsideTheFileOrMisaligned() {
        let (bytes, offsetFields) = Self.sampleFile().build()
        var beyond = bytes
        beyond.replaceSubrange(offsetFields[1]..<offsetFields[1] + 8, with: TestEncoding.littleEndian(UInt64(1 << 20)))
        guard case .truncated(_, let detail) = parseError(beyond) else {
            Issue.record("an offset beyond the end must be a truncation error")
            return
        }
        #expect(detail.contains("tensor b"))
        var huge = bytes
        huge.replaceSubrange(offsetFields[1]..<offsetFields[1] + 8, with: TestEncoding.littleEndian(UInt64.max - 31))
        #expect(parseError(huge) != nil)
        var misaligned = bytes
        misaligned.replaceSubrange(offsetFields[1]..<offsetFields[1] + 8, with: TestEncoding.littleEndian(UInt64(4)))
        guard case .malformed(_, let detail) = parseError(misaligned) else {
            Issue.record("a misaligned offset must be malformed")
            return
        }
        #expect(detail.contains("tensor b") && detail.contains("multiple of 32"))
    }

    @Test(arguments: [UInt32(99), 37, 31])
    func rejectsUnknownTensorTypes(type: UInt32) {
        var builder = Self.sampleFile()
        builder.tensors[1].type = type
        #expect(parseError(builder.bytes) == .unsupportedTensorType(tensor: "b", type: "unknown ggml type \(type)"))
    }

    @Test func rejectsUnknownValueTypes() {
        var writer = ByteWriter()
        writer.integer(UInt32(0x4655_4747))
        writer.integer(UInt32(3))
        writer.integer(UInt64(0))
        writer.integer(UInt64(1))
        let header = writer.bytes
        writer.string("general.odd")
        writer.integer(UInt32(13))
        writer.bytes += [UInt8](repeating: 0, count: 16)
        guard case .malformed(_, let detail) = parseError(writer.bytes) else {
            Issue.record("value type 13 must be malformed")
            return
        }
        #expect(detail.contains("general.odd") && detail.contains("13"))
        var array = ByteWriter(bytes: header)
        array.string("general.list")
        array.integer(UInt32(9))
        array.integer(UInt32(77))
        array.integer(UInt64(1))
        array.bytes += [UInt8](repeating: 0, count: 16)
        guard case .malformed(_, let arrayDetail) = parseError(array.bytes) else {
            Issue.record("array element type 77 must be malformed")
            return
        }
        #expect(arrayDetail.contains("general.list") && arrayDetail.contains("77"))
    }

    @Test func rejectsDuplicates() {
        var tensors = Self.sampleFile()
        tensors.tensors[1].name = "a"
        guard case .malformed(_, let detail) = parseError(tensors.bytes) else {
            Issue.record("duplicate tensor names must be malformed")
            return
        }
        #expect(detail.contains("tensor a appears twice"))
        var keys = Self.sampleFile()
        keys.metadata.append(("t.u8", .uint8(1)))
        guard case .malformed(_, let keyDetail) = parseError(keys.bytes) else {
            Issue.record("duplicate keys must be malformed")
            return
        }
        #expect(keyDetail.contains("t.u8"))
    }

    @Test func rejectsImpossibleShapesAndAlignment() {
        var dimensions = Self.sampleFile()
        dimensions.tensors[1].dimensions = [1, 1, 1, 1, 3]
        #expect(parseError(dimensions.bytes) != nil)
        var blocks = Self.sampleFile()
        // Q8_0 rows must hold whole 32-element blocks.
        blocks.tensors[0] = TestTensor(name: "a", dimensions: [20, 1], type: 8, data: [UInt8](repeating: 0, count: 34))
        guard case .malformed(_, let detail) = parseError(blocks.bytes) else {
            Issue.record("a Q8_0 row of 20 must be malformed")
            return
        }
        #expect(detail.contains("q8_0"))
        var alignment = Self.sampleFile()
        alignment.metadata.append(("general.alignment", .uint32(24)))
        #expect(parseError(alignment.bytes) != nil)
        var nesting = GGUFBuilder()
        var value = GGUFValue.uint8(0)
        for _ in 0..<10 { value = .array([value]) }
        nesting.metadata = [("deep", value)]
        guard case .malformed(_, let nestingDetail) = parseError(nesting.bytes) else {
            Issue.record("deep nesting must be malformed")
            return
        }
        #expect(nestingDetail.contains("deep"))
    }
}
