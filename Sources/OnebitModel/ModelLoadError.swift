/// Why a model could not be loaded. Every case names the file or tensor at fault and, where there is one, the fix.
public enum ModelLoadError: Error, CustomStringConvertible, Equatable {
    /// The path does not exist or cannot be read.
    case unreadable(path: String, reason: String)
    /// A directory lacks a file a checkpoint needs.
    case missingFile(String)
    /// The file is not in a format onebit knows.
    case unknownFormat(path: String)
    /// The file ends before the data it announces.
    case truncated(path: String, detail: String)
    /// A header, offset or size in the file is inconsistent.
    case malformed(path: String, detail: String)
    /// The configuration is invalid or contradicts the tensors.
    case invalidConfig(String)
    /// The model is valid but uses something onebit does not run.
    case unsupported(String)
    /// A tensor the architecture needs is absent.
    case missingTensor(String)
    /// A tensor has the wrong shape.
    case shapeMismatch(tensor: String, expected: [Int], found: [Int])
    /// A tensor is stored in an element type onebit cannot read for that role.
    case unsupportedTensorType(tensor: String, type: String)
    /// A weight that must be ternary holds another value.
    case notTernary(tensor: String)

    /// A message that names the problem and, where there is one, the fix.
    public var description: String {
        switch self {
        case .unreadable(let path, let reason): "cannot read \(path): \(reason)"
        case .missingFile(let name): "missing \(name); a Hugging Face model directory needs it"
        case .unknownFormat(let path):
            "\(path) is neither a GGUF file nor a Hugging Face model directory (config.json + *.safetensors)"
        case .truncated(let path, let detail): "\(path) is truncated: \(detail); download it again"
        case .malformed(let path, let detail): "\(path) is malformed: \(detail)"
        case .invalidConfig(let detail): "invalid model configuration: \(detail)"
        case .unsupported(let detail): "unsupported model: \(detail)"
        case .missingTensor(let name): "the checkpoint has no tensor \(name)"
        case .shapeMismatch(let tensor, let expected, let found):
            "tensor \(tensor) has shape \(found), expected \(expected)"
        case .unsupportedTensorType(let tensor, let type):
            "tensor \(tensor) is stored as \(type), which onebit cannot read there"
        case .notTernary(let tensor): "tensor \(tensor) holds values other than -1, 0 and +1"
        }
    }
}
