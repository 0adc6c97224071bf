/// Why a tool call failed; the registry answers it as a tool result with `isError: true` and this message, so the
/// calling model can read it and try again.
public enum ToolError: Error, CustomStringConvertible, Equatable {
    /// An argument is missing, has the wrong type or is out of range; `name` is its path (`messages[0].role`).
    case invalidArgument(name: String, message: String)
    /// The tool could not do its work (the server is busy or shutting down, the engine failed).
    case failed(String)

    /// A message that names the problem and what to do.
    public var description: String {
        switch self {
        case .invalidArgument(let name, let message): "invalid argument '\(name)': \(message)"
        case .failed(let message): message
        }
    }
}
