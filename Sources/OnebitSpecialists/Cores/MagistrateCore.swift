import OnebitModel

/// Scans a diff or a commit range for secrets and checks commit messages against Conventional Commits.
///
/// Input: `diff` (a unified diff or any text), and/or `repository` with an optional `range` (default `HEAD`, the
/// whole history), and/or `messages` (commit messages to check).
struct MagistrateCore: SpecialistCore {
    func run(_ input: JSONValue, tools: ToolBox) async throws(SpecialistError) -> CoreResult {
        var findings: [SecretFinding] = []
        var commits: [ConventionalCommit] = []
        if let diff = input["diff"]?.stringValue { findings += SecretScanner.scan(diff) }
        for message in input["messages"]?.arrayValue?.compactMap(\.stringValue) ?? [] {
            commits.append(ConventionalCommit(message: message))
        }
        if let repository = input["repository"]?.stringValue {
            let range = input["range"]?.stringValue ?? "HEAD"
            let patches = try await tools.git(
                ["log", "-p", "--no-merges", "--no-color", "--no-ext-diff", "--format=commit %H", range, "--"],
                in: repository)
            findings += SecretScanner.scan(patches)
            commits += GitHistory.commits(try await GitHistory.log(range: range, in: repository, tools: tools)).map {
                ConventionalCommit(message: $0.message, commit: $0.hash)
            }
        }
        let bad = commits.filter { !$0.isValid }
        var facts =
            "\(findings.count) possible secrets; \(bad.count) of \(commits.count) commit messages break the rules."
        for finding in findings.prefix(5) {
            facts += "\n- \(finding.rule) in \(finding.file.isEmpty ? "the text" : finding.file) line \(finding.line)"
        }
        for commit in bad.prefix(3) { facts += "\n- commit '\(commit.header)': \(commit.problems[0])" }
        let fallback =
            findings.isEmpty && bad.isEmpty
            ? "Nothing to report: no secrets found and every commit message follows Conventional Commits."
            : "Found \(findings.count) possible secrets and \(bad.count) commit messages that break the rules."
        return CoreResult(
            fields: [
                "clean": .bool(findings.isEmpty && bad.isEmpty), "secrets_found": .integer(findings.count),
                "findings": .array(findings.map(\.json)), "bad_commits": .integer(bad.count),
                "commits": .array(commits.map(\.json)),
            ], textField: "explanation", facts: facts, fallbackText: fallback)
    }
}

/// Reading commits from git.
enum GitHistory {
    /// A commit's id and full message.
    struct Commit: Sendable, Equatable {
        var hash: String
        var message: String
    }

    /// `git log` of `range` without merges, as records `hash NUL message RS`.
    static func log(range: String, in repository: String, tools: ToolBox) async throws(SpecialistError) -> String {
        try await tools.git(["log", "--no-merges", "--format=%H%x00%B%x1e", range, "--"], in: repository)
    }

    /// The commits of a ``log(range:in:tools:)`` output, newest first.
    static func commits(_ log: String) -> [Commit] {
        log.split(separator: "\u{1e}").compactMap { record in
            let parts = record.split(separator: "\0", maxSplits: 1, omittingEmptySubsequences: false)
            guard parts.count == 2 else { return nil }
            let hash = parts[0].trimmed
            guard !hash.isEmpty else { return nil }
            var message = String(parts[1])
            while message.last?.isNewline == true { message.removeLast() }
            return Commit(hash: hash, message: message)
        }
    }
}
