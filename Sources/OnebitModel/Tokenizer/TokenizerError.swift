/// Why a tokenizer could not be built.
///
/// `path` names the offending place in the source, e.g. `model.merges[12]` in `tokenizer.json` or
/// `tokenizer.ggml.pre` in GGUF metadata, so that a bad file can be fixed without reading this code.
public enum TokenizerError: Error, CustomStringConvertible, Equatable {
    /// `tokenizer.json` is not valid JSON.
    case invalidJSON(String)
    /// A field is missing, has the wrong type or an inconsistent value.
    case malformed(path: String, reason: String)
    /// The source asks for something this tokenizer does not implement.
    case unsupported(path: String, reason: String)

    /// A one-line message naming what is wrong and where.
    public var description: String {
        switch self {
        case .invalidJSON(let reason): "tokenizer.json is not valid JSON: \(reason)"
        case .malformed(let path, let reason): "malformed tokenizer at \(path): \(reason)"
        case .unsupported(let path, let reason): "unsupported tokenizer at \(path): \(reason)"
        }
    }
}
