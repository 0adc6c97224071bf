/// Why a specialist could not be loaded or run.
public enum SpecialistError: Error, Equatable, CustomStringConvertible {
    /// A definition file is malformed: `file` names it, `key` the TOML key at fault (empty for the whole file).
    case invalidDefinition(file: String, key: String, reason: String)
    /// Two files of the config directory define the same name (a user file may replace a built-in of its name).
    case duplicateName(name: String, files: [String])
    /// No specialist has this name.
    case unknownSpecialist(name: String, known: [String])
    /// The input does not follow the specialist's input schema; `path` names the field (`input.diff`).
    case invalidInput(path: String, reason: String)
    /// The deterministic core produced output its own schema refuses (a bug in the definition or the core).
    case invalidOutput(path: String, reason: String)
    /// The core needs a local tool the definition does not list under `tools`.
    case toolNotAllowed(specialist: String, tool: String)
    /// A local tool (git, a build command, an HTTP probe, a file) failed.
    case toolFailed(tool: String, reason: String)
    /// The model could not be asked (the scheduler refused or failed).
    case generationFailed(reason: String)
    /// A report could not be written or read.
    case storage(path: String, reason: String)

    /// A message that names the problem and says what to do.
    public var description: String {
        switch self {
        case .invalidDefinition(let file, let key, let reason):
            key.isEmpty
                ? "\(file): \(reason)"
                : "\(file): key '\(key)': \(reason)"
        case .duplicateName(let name, let files):
            "the specialist name '\(name)' is defined more than once (\(files.joined(separator: ", "))); "
                + "rename one of them"
        case .unknownSpecialist(let name, let known):
            "no specialist is named '\(name)'; known: \(known.joined(separator: ", ")) "
                + "(`onebit specialists list` shows them)"
        case .invalidInput(let path, let reason):
            "\(path): \(reason)"
        case .invalidOutput(let path, let reason):
            "the specialist produced invalid output at \(path): \(reason); check its output_schema"
        case .toolNotAllowed(let specialist, let tool):
            "the specialist '\(specialist)' needs the local tool '\(tool)'; add \"\(tool)\" to its `tools` list"
        case .toolFailed(let tool, let reason):
            "\(tool) failed: \(reason)"
        case .generationFailed(let reason):
            "the model could not write the report's text: \(reason)"
        case .storage(let path, let reason):
            "\(path): \(reason)"
        }
    }
}
