import OnebitModel

/// Runs a repository's build or test command and reports pass or fail, with the last error lines, the exit status
/// and the duration.
///
/// Input: `repository`, `command` (run with `/bin/sh -c` in the repository), optional `commit` (default: `HEAD`
/// now) and `timeout_seconds` (default 600).
struct AnvilCore: SpecialistCore {
    /// Error lines kept in a report.
    static let errorLineLimit = 12

    func run(_ input: JSONValue, tools: ToolBox) async throws(SpecialistError) -> CoreResult {
        let repository = input["repository"]?.stringValue ?? "."
        let command = input["command"]?.stringValue ?? ""
        let timeout = input["timeout_seconds"]?.doubleValue ?? 600
        let commit: String
        if let given = input["commit"]?.stringValue {
            commit = given
        } else {
            commit = try await tools.git(["rev-parse", "HEAD"], in: repository).trimmed
        }
        let outcome = try await tools.shell(command, in: repository, timeout: timeout)
        let status = outcome.timedOut ? "timeout" : outcome.status == 0 ? "pass" : "fail"
        let errors = status == "pass" ? [] : Self.errorLines(outcome.output)
        let seconds = (outcome.seconds * 1000).rounded() / 1000
        var facts =
            "`\(command)` at commit \(commit.prefix(12)): \(status), exit status \(outcome.status), "
            + "\(seconds) s."
        if let last = errors.last { facts += " Last error: \(last.prefix(200))" }
        return CoreResult(
            fields: [
                "repository": .string(repository), "commit": .string(commit), "command": .string(command),
                "status": .string(status), "exit_status": .integer(Int(outcome.status)),
                "duration_seconds": .number(seconds), "error_lines": .strings(errors),
            ], textField: "explanation", facts: facts, fallbackText: facts)
    }

    /// The last lines that look like errors; without any, the last lines of the output.
    static func errorLines(_ output: String) -> [String] {
        let lines = output.split(separator: "\n").map { String($0.trimmed.prefix(300)) }.filter { !$0.isEmpty }
        let markers = ["error", "fail", "fatal", "panic", "assert", "exception", "undefined", "not found"]
        let errors = lines.filter { line in
            let lowered = line.lowercased()
            return markers.contains { lowered.contains($0) }
        }
        return Array((errors.isEmpty ? lines : errors).suffix(errorLineLimit))
    }
}
