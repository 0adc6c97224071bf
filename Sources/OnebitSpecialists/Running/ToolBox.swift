import FoundationEssentials

/// The local tools one run of a specialist may use: only those its definition lists under `tools`.
public struct ToolBox: Sendable {
    /// The specialist being run (named in refusals).
    public let specialist: String
    /// The tools it may use.
    public let allowed: Set<String>
    /// The base URL of the server the specialists run in (`http://127.0.0.1:8080`), when they run in one.
    public let serverURL: String?

    /// A tool box of `allowed` tools.
    public init(specialist: String, allowed: Set<String>, serverURL: String? = nil) {
        self.specialist = specialist
        self.allowed = allowed
        self.serverURL = serverURL
    }

    /// Throws unless the definition lists `tool`.
    public func require(_ tool: String) throws(SpecialistError) {
        guard allowed.contains(tool) else { throw .toolNotAllowed(specialist: specialist, tool: tool) }
    }

    /// Most bytes of git output read; a longer history must be asked for in smaller ranges.
    public static let gitOutputLimit = 64 << 20

    /// Runs `git -C repository arguments...` and returns its standard output; a non-zero exit is an error, and so
    /// is output beyond ``gitOutputLimit`` (a scan of part of a history would silently miss the rest).
    public func git(_ arguments: [String], in repository: String, timeout: Double = 120) async throws(SpecialistError)
        -> String
    {
        try require("git")
        let outcome = try await ProcessRunner.run(
            ["git", "-C", repository] + arguments, timeout: timeout, outputLimit: Self.gitOutputLimit,
            separateErrors: true)
        guard !outcome.truncated else {
            throw .toolFailed(
                tool: "git",
                reason: "git \(arguments.joined(separator: " ")) in \(repository) wrote more than "
                    + "\(Self.gitOutputLimit >> 20) MiB; ask for a smaller range")
        }
        guard outcome.status == 0, !outcome.timedOut else {
            let detail = outcome.errors.split(separator: "\n").suffix(3).joined(separator: " / ")
            throw .toolFailed(
                tool: "git",
                reason: "git \(arguments.joined(separator: " ")) in \(repository) exited with "
                    + "status \(outcome.status)\(outcome.timedOut ? " (timed out)" : ""): \(detail)")
        }
        return outcome.output
    }

    /// Runs `command` with `/bin/sh -c` in `directory`, killed after `timeout` seconds.
    public func shell(_ command: String, in directory: String, timeout: Double) async throws(SpecialistError)
        -> ProcessOutcome
    {
        try require("shell")
        return try await ProcessRunner.run(
            ["/bin/sh", "-c", "cd -- \(ProcessRunner.shellQuoted(directory)) && \(command)"], timeout: timeout)
    }

    /// `GET url`.
    public func get(_ url: String, timeout: Double = 5) async throws(SpecialistError) -> HTTPProbeResponse {
        try require("http")
        return try await HTTPProbe.get(url, timeout: timeout)
    }

    /// The text of the file at `path` (at most `limit` bytes are accepted).
    public func readFile(_ path: String, limit: Int = 4 << 20) throws(SpecialistError) -> String {
        try require("files")
        let data: Data
        do {
            data = try Data(contentsOf: URL(filePath: path))
        } catch {
            throw .toolFailed(tool: "files", reason: "cannot read \(path): \(error)")
        }
        guard data.count <= limit else {
            throw .toolFailed(tool: "files", reason: "\(path) is \(data.count) bytes; at most \(limit) are read")
        }
        return String(decoding: data, as: UTF8.self)
    }
}
