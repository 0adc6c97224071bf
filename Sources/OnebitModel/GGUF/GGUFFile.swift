import OrderedCollections

/// Where one tensor of a GGUF file lies and how it is stored.
public struct GGUFTensorInfo: Sendable, Equatable {
    /// The tensor's name, e.g. `blk.0.attn_q.weight`.
    public let name: String
    /// Dimensions in ggml order: `dimensions[0]` is the row length (the input features of a weight matrix).
    public let dimensions: [Int]
    /// Element type.
    public let type: GGMLType
    /// Absolute byte offset of the tensor's data in the file.
    public let offset: Int
    /// Bytes the data occupies.
    public let byteCount: Int

    /// Number of elements (1 for a tensor without dimensions).
    public var elementCount: Int { dimensions.reduce(1, *) }
}

/// The parsed header of a GGUF file (versions 2 and 3, little-endian), over its memory mapping.
///
/// Parsing reads only the header; tensor data stays in the mapping until a decoder converts it. Every count,
/// length and offset is checked against the file size before it is used, so a damaged or hostile file produces a
/// ``ModelLoadError`` that says what is wrong, never a crash, a huge allocation or a long loop.
public struct GGUFFile: Sendable {
    /// The mapped file.
    public let file: MappedFile
    /// Format version (2 or 3).
    public let version: Int
    /// Metadata in file order.
    public let metadata: OrderedDictionary<String, GGUFValue>
    /// Tensor descriptions in file order.
    public let tensors: [GGUFTensorInfo]
    /// Alignment of tensor data (`general.alignment`, 32 when absent).
    public let alignment: Int
    /// Absolute offset of the data section.
    public let dataOffset: Int
    private let tensorIndex: [String: Int]

    /// The versions this reader understands; v1 used 32-bit counts and has not been written since 2023.
    public static let supportedVersions: ClosedRange<Int> = 2...3
    /// ggml stores at most four dimensions.
    static let maximumDimensions = 4
    /// Arrays of arrays are legal but no writer nests them deeply; a limit keeps recursion bounded.
    static let maximumArrayNesting = 4

    /// Parses the header of `file`.
    public init(file: MappedFile) throws(ModelLoadError) {
        self.file = file
        var reader = GGUFByteReader(file: file)
        let magic = try reader.read(UInt32.self, what: "the GGUF magic")
        // "GGUF" read as a little-endian u32.
        guard magic == 0x4655_4747 else { throw .unknownFormat(path: file.path) }
        let rawVersion = try reader.read(UInt32.self, what: "the GGUF version")
        guard Self.supportedVersions.contains(Int(rawVersion)) else {
            let detail =
                Self.supportedVersions.contains(Int(rawVersion.byteSwapped))
                ? "it is a big-endian GGUF file; onebit reads little-endian files"
                : "GGUF version \(rawVersion); onebit reads versions 2 and 3"
            throw .unsupported("\(file.path): \(detail)")
        }
        version = Int(rawVersion)
        let tensorCount = try reader.readCount(minimumItemSize: 24, what: "the tensor count")
        let keyCount = try reader.readCount(minimumItemSize: 13, what: "the metadata count")

        var metadata = OrderedDictionary<String, GGUFValue>()
        for index in 0..<keyCount {
            let key = try reader.readString(what: "the key of metadata entry \(index)")
            let rawType = try reader.read(UInt32.self, what: "the type of \(key)")
            let value = try Self.readValue(typeID: rawType, key: key, depth: 0, reader: &reader)
            guard metadata.updateValue(value, forKey: key) == nil else {
                throw .malformed(path: file.path, detail: "metadata key \(key) appears twice")
            }
        }
        self.metadata = metadata

        alignment = try Self.alignment(in: metadata, path: file.path)
        var infos: [(name: String, dimensions: [Int], type: GGMLType, relativeOffset: UInt64)] = []
        var tensorIndex: [String: Int] = [:]
        for index in 0..<tensorCount {
            let name = try reader.readString(what: "the name of tensor \(index)")
            let dimensionCount = try reader.read(UInt32.self, what: "the dimension count of \(name)")
            guard dimensionCount <= Self.maximumDimensions else {
                throw .malformed(path: file.path, detail: "tensor \(name) has \(dimensionCount) dimensions")
            }
            var dimensions: [Int] = []
            for axis in 0..<Int(dimensionCount) {
                let extent = try reader.read(UInt64.self, what: "dimension \(axis) of \(name)")
                guard let extent = Int(exactly: extent) else {
                    throw .malformed(path: file.path, detail: "tensor \(name) has dimension \(extent)")
                }
                dimensions.append(extent)
            }
            let rawType = try reader.read(UInt32.self, what: "the type of \(name)")
            guard let type = GGMLType(rawValue: rawType) else {
                throw .unsupportedTensorType(tensor: name, type: "unknown ggml type \(rawType)")
            }
            let relativeOffset = try reader.read(UInt64.self, what: "the offset of \(name)")
            guard tensorIndex.updateValue(index, forKey: name) == nil else {
                throw .malformed(path: file.path, detail: "tensor \(name) appears twice")
            }
            infos.append((name, dimensions, type, relativeOffset))
        }
        self.tensorIndex = tensorIndex
        reader.align(to: alignment)
        dataOffset = reader.offset

        var tensors: [GGUFTensorInfo] = []
        tensors.reserveCapacity(infos.count)
        for info in infos {
            tensors.append(
                try Self.locate(
                    name: info.name, dimensions: info.dimensions, type: info.type, relativeOffset: info.relativeOffset,
                    dataOffset: dataOffset, alignment: alignment, file: file))
        }
        self.tensors = tensors
    }

    /// The description of the tensor called `name`, if the file has one.
    public func tensor(named name: String) -> GGUFTensorInfo? {
        tensorIndex[name].map { tensors[$0] }
    }

    /// Reads one metadata value of type `typeID`.
    private static func readValue(
        typeID: UInt32, key: String, depth: Int, reader: inout GGUFByteReader
    ) throws(ModelLoadError) -> GGUFValue {
        guard let type = GGUFValueType(rawValue: typeID) else {
            throw .malformed(path: reader.file.path, detail: "metadata \(key) has unknown value type \(typeID)")
        }
        switch type {
        case .uint8: return .uint8(try reader.read(UInt8.self, what: key))
        case .int8: return .int8(Int8(bitPattern: try reader.read(UInt8.self, what: key)))
        case .uint16: return .uint16(try reader.read(UInt16.self, what: key))
        case .int16: return .int16(Int16(bitPattern: try reader.read(UInt16.self, what: key)))
        case .uint32: return .uint32(try reader.read(UInt32.self, what: key))
        case .int32: return .int32(Int32(bitPattern: try reader.read(UInt32.self, what: key)))
        case .float32: return .float32(Float(bitPattern: try reader.read(UInt32.self, what: key)))
        case .bool: return .bool(try reader.read(UInt8.self, what: key) != 0)
        case .string: return .string(try reader.readString(what: key))
        case .uint64: return .uint64(try reader.read(UInt64.self, what: key))
        case .int64: return .int64(Int64(bitPattern: try reader.read(UInt64.self, what: key)))
        case .float64: return .float64(Double(bitPattern: try reader.read(UInt64.self, what: key)))
        case .array:
            guard depth < maximumArrayNesting else {
                throw .malformed(path: reader.file.path, detail: "metadata \(key) nests arrays too deeply")
            }
            let elementTypeID = try reader.read(UInt32.self, what: "the element type of \(key)")
            guard let elementType = GGUFValueType(rawValue: elementTypeID) else {
                throw .malformed(
                    path: reader.file.path, detail: "metadata \(key) has unknown array element type \(elementTypeID)")
            }
            let count = try reader.readCount(
                minimumItemSize: elementType.minimumByteCount, what: "the element count of \(key)")
            var elements: [GGUFValue] = []
            elements.reserveCapacity(count)
            for _ in 0..<count {
                elements.append(try readValue(typeID: elementTypeID, key: key, depth: depth + 1, reader: &reader))
            }
            return .array(elements)
        }
    }

    /// `general.alignment`, checked: a power of two that a u32 holds.
    private static func alignment(
        in metadata: OrderedDictionary<String, GGUFValue>, path: String
    ) throws(ModelLoadError) -> Int {
        guard let value = metadata["general.alignment"] else { return 32 }
        guard case .uint32(let raw) = value, raw > 0, raw & (raw - 1) == 0 else {
            throw .malformed(path: path, detail: "general.alignment must be a power of two u32, found \(value)")
        }
        return Int(raw)
    }

    /// Computes where a tensor's data lies and checks that it is aligned and inside the file.
    private static func locate(
        name: String, dimensions: [Int], type: GGMLType, relativeOffset: UInt64, dataOffset: Int, alignment: Int,
        file: MappedFile
    ) throws(ModelLoadError) -> GGUFTensorInfo {
        var elementCount = 1
        for extent in dimensions {
            let (product, overflow) = elementCount.multipliedReportingOverflow(by: extent)
            guard !overflow else {
                throw .malformed(path: file.path, detail: "tensor \(name) has shape \(dimensions), too large")
            }
            elementCount = product
        }
        guard let byteCount = type.byteCount(elementCount: elementCount, rowLength: dimensions.first ?? 1) else {
            throw .malformed(
                path: file.path,
                detail:
                    "tensor \(name) of shape \(dimensions) does not hold whole \(type.name) blocks of \(type.blockSize)"
            )
        }
        guard let relative = Int(exactly: relativeOffset), relative % alignment == 0 else {
            throw .malformed(
                path: file.path,
                detail: "tensor \(name) data offset \(relativeOffset) is not a multiple of \(alignment)")
        }
        let (offset, overflow) = dataOffset.addingReportingOverflow(relative)
        guard !overflow, file.contains(offset: offset, count: byteCount) else {
            throw .truncated(
                path: file.path,
                detail: "tensor \(name) needs \(byteCount) bytes at offset \(relativeOffset) of the data section")
        }
        return GGUFTensorInfo(name: name, dimensions: dimensions, type: type, offset: offset, byteCount: byteCount)
    }
}
