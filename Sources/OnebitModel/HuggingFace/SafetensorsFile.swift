/// One `.safetensors` file: a little-endian u64 header length, a JSON header naming each tensor's dtype, shape
/// and byte range, then the raw data.
///
/// Written here because no available package reads the format; it is small and checked against the file size at
/// every step, so a truncated or lying file is an error, not a crash.
public struct SafetensorsFile: Sendable {
    /// Where a tensor lives in the file.
    public struct TensorInfo: Sendable, Equatable {
        /// Element type as the header spells it (`BF16`, `F16`, `F32`, `U8`, `I8`...).
        public var dtype: String
        /// Dimensions, outermost first.
        public var shape: [Int]
        /// Absolute byte offset of the first element in the file.
        public var offset: Int
        /// Bytes the tensor occupies.
        public var byteCount: Int

        /// Number of elements.
        public var elementCount: Int { shape.reduce(1, *) }
    }

    /// The mapped file.
    public let file: MappedFile
    /// Tensors by name.
    public let tensors: [String: TensorInfo]

    /// Largest header accepted; real headers are well under a megabyte.
    static let maximumHeaderSize = 100 << 20

    /// Maps and indexes `path`.
    public init(path: String) throws(ModelLoadError) {
        try self.init(file: try MappedFile(path: path))
    }

    /// Indexes an already mapped file.
    public init(file: MappedFile) throws(ModelLoadError) {
        let path = file.path
        self.file = file
        let headerLength: Int
        do {
            headerLength = try file.withBytes(offset: 0, count: 8, what: "the header length") { raw in
                Int(truncatingIfNeeded: raw.loadUnaligned(as: UInt64.self).littleEndian)
            }
        } catch {
            throw error as? ModelLoadError ?? .malformed(path: path, detail: "\(error)")
        }
        guard headerLength > 1, headerLength <= Self.maximumHeaderSize else {
            throw .malformed(
                path: path, detail: "header length \(headerLength) is implausible; not a safetensors file?")
        }
        let header: JSONValue
        do {
            let bytes = try file.bytes(offset: 8, count: headerLength, what: "the JSON header")
            header = try JSONValue(parsing: bytes)
        } catch let error as ModelLoadError {
            throw error
        } catch {
            throw .malformed(path: path, detail: "header: \(error)")
        }
        guard case .object(let entries) = header else {
            throw .malformed(path: path, detail: "the header is not a JSON object")
        }
        let dataStart = 8 + headerLength
        var tensors: [String: TensorInfo] = [:]
        for (name, entry) in entries where name != "__metadata__" {
            tensors[name] = try Self.tensorInfo(name: name, entry: entry, dataStart: dataStart, file: file)
        }
        self.tensors = tensors
    }

    private static func tensorInfo(
        name: String, entry: JSONValue, dataStart: Int, file: MappedFile
    ) throws(ModelLoadError) -> TensorInfo {
        func fail(_ detail: String) -> ModelLoadError {
            .malformed(path: file.path, detail: "tensor \(name): \(detail)")
        }
        guard let dtype = entry["dtype"]?.stringValue else { throw fail("no dtype") }
        guard let dims = entry["shape"]?.arrayValue else { throw fail("no shape") }
        var shape: [Int] = []
        var elements = 1
        for dim in dims {
            guard let d = dim.intValue, d >= 0 else { throw fail("bad dimension \(dim.jsonText)") }
            let (product, overflow) = elements.multipliedReportingOverflow(by: d)
            guard !overflow else { throw fail("shape \(JSONValue.array(dims).jsonText) overflows") }
            elements = product
            shape.append(d)
        }
        guard let range = entry["data_offsets"]?.arrayValue, range.count == 2,
            let begin = range[0].intValue, let end = range[1].intValue, begin >= 0, end >= begin
        else { throw fail("bad data_offsets") }
        guard file.contains(offset: dataStart + begin, count: end - begin) else {
            throw .truncated(
                path: file.path,
                detail: "tensor \(name) needs bytes up to \(dataStart + end), the file has \(file.count)")
        }
        if let size = elementSize(dtype), size * elements != end - begin {
            throw fail(
                "\(elements) elements of \(dtype) need \(size * elements) bytes, the header gives \(end - begin)")
        }
        return TensorInfo(dtype: dtype, shape: shape, offset: dataStart + begin, byteCount: end - begin)
    }

    /// Bytes per element of a safetensors dtype, `nil` for types onebit never reads.
    static func elementSize(_ dtype: String) -> Int? {
        switch dtype {
        case "F64", "I64", "U64": 8
        case "F32", "I32", "U32": 4
        case "F16", "BF16", "I16", "U16": 2
        case "U8", "I8", "BOOL": 1
        default: nil
        }
    }

    /// The elements of a floating-point tensor (`F32`, `F16` or `BF16`) converted to `Float`.
    public func floats(_ name: String) throws(ModelLoadError) -> [Float] {
        let info = try self.info(name)
        do {
            return try file.withBytes(offset: info.offset, count: info.byteCount, what: name) {
                raw throws(ModelLoadError) -> [Float] in
                let n = info.elementCount
                switch info.dtype {
                case "F32":
                    return (0..<n).map { Float(bitPattern: raw.loadUnaligned(fromByteOffset: $0 * 4, as: UInt32.self)) }
                case "F16":
                    return (0..<n).map {
                        Float(Float16(bitPattern: raw.loadUnaligned(fromByteOffset: $0 * 2, as: UInt16.self)))
                    }
                case "BF16":
                    return (0..<n).map {
                        Float(bfloat16Bits: raw.loadUnaligned(fromByteOffset: $0 * 2, as: UInt16.self))
                    }
                default:
                    throw .unsupportedTensorType(tensor: name, type: info.dtype)
                }
            }
        } catch let error as ModelLoadError {
            throw error
        } catch {
            throw .malformed(path: file.path, detail: "\(error)")
        }
    }

    /// A floating-point tensor as a ``DenseMatrix`` in its stored precision.
    public func denseMatrix(_ name: String) throws(ModelLoadError) -> DenseMatrix {
        let info = try self.info(name)
        guard info.shape.count == 2 else {
            throw .shapeMismatch(tensor: name, expected: [-1, -1], found: info.shape)
        }
        let (rows, columns) = (info.shape[0], info.shape[1])
        let halves: () throws -> [UInt16] = {
            try file.withBytes(offset: info.offset, count: info.byteCount, what: name) { raw in
                (0..<rows * columns).map { raw.loadUnaligned(fromByteOffset: $0 * 2, as: UInt16.self) }
            }
        }
        do {
            switch info.dtype {
            case "BF16": return DenseMatrix(rows: rows, columns: columns, storage: .bfloat16(try halves()))
            case "F16": return DenseMatrix(rows: rows, columns: columns, storage: .float16(try halves()))
            case "F32": return DenseMatrix(rows: rows, columns: columns, storage: .float32(try floats(name)))
            default: throw ModelLoadError.unsupportedTensorType(tensor: name, type: info.dtype)
            }
        } catch let error as ModelLoadError {
            throw error
        } catch {
            throw .malformed(path: file.path, detail: "\(error)")
        }
    }

    /// The raw bytes of a `U8` tensor.
    public func bytes(_ name: String) throws(ModelLoadError) -> [UInt8] {
        let info = try self.info(name)
        guard info.dtype == "U8" || info.dtype == "I8" else {
            throw .unsupportedTensorType(tensor: name, type: info.dtype)
        }
        do {
            return try file.bytes(offset: info.offset, count: info.byteCount, what: name)
        } catch {
            throw error as? ModelLoadError ?? .malformed(path: file.path, detail: "\(error)")
        }
    }

    /// The header entry of `name`, or ``ModelLoadError/missingTensor(_:)``.
    public func info(_ name: String) throws(ModelLoadError) -> TensorInfo {
        guard let info = tensors[name] else { throw .missingTensor(name) }
        return info
    }
}
