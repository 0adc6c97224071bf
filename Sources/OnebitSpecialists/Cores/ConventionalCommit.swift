import OnebitModel

/// A commit message read as a Conventional Commit (`type(scope)!: subject`, a blank line, a body, footers).
public struct ConventionalCommit: Sendable, Equatable {
    /// The types the specification and its common configurations use.
    public static let knownTypes = [
        "feat", "fix", "docs", "style", "refactor", "perf", "test", "build", "ci", "chore", "revert",
    ]
    /// Longest header accepted (type, scope and subject together).
    public static let maximumHeaderLength = 72

    /// The commit id, when known.
    public var commit: String
    /// The first line.
    public var header: String
    /// `feat`, `fix`, ...; `nil` when the header does not follow the format.
    public var type: String?
    /// The scope in parentheses.
    public var scope: String?
    /// The subject after `: ` (the whole header when the format is not followed).
    public var subject: String
    /// A `!` before the colon or a `BREAKING CHANGE:` footer.
    public var breaking: Bool
    /// What is wrong with the message; empty when it follows the rules.
    public var problems: [String]

    /// Reads `message`.
    public init(message: String, commit: String = "") {
        self.commit = commit
        let lines = message.split(separator: "\n", omittingEmptySubsequences: false).map {
            $0.hasSuffix("\r") ? $0.dropLast() : $0
        }
        header = lines.first.map(String.init) ?? ""
        var problems: [String] = []
        if let match = header.wholeMatch(of: /([A-Za-z]+)(?:\(([^()]+)\))?(!)?: (.*)/) {
            type = String(match.1)
            scope = match.2.map(String.init)
            subject = String(match.4)
            breaking = match.3 != nil
            if !Self.knownTypes.contains(String(match.1)) {
                problems.append(
                    "unknown type '\(match.1)'; use one of \(Self.knownTypes.joined(separator: ", "))")
            }
            if subject.trimmed.isEmpty {
                problems.append("the subject after ': ' is empty")
            } else if subject.first?.isWhitespace == true {
                problems.append("the subject starts with a space; write one space after the colon")
            } else if subject.hasSuffix(".") {
                problems.append("the subject ends with a period")
            }
            if scope?.isEmpty == false, scope!.contains(where: \.isWhitespace) {
                problems.append("the scope contains spaces")
            }
        } else {
            type = nil
            scope = nil
            subject = header
            breaking = false
            problems.append("the header does not follow 'type(scope)!: subject' (for example 'fix(server): ...')")
        }
        if header.count > Self.maximumHeaderLength {
            problems.append("the header has \(header.count) characters; keep it within \(Self.maximumHeaderLength)")
        }
        if lines.count > 1, !lines[1].allSatisfy(\.isWhitespace) {
            problems.append("the body must be separated from the header by a blank line")
        }
        if lines.dropFirst().contains(where: { $0.hasPrefix("BREAKING CHANGE:") || $0.hasPrefix("BREAKING-CHANGE:") }) {
            breaking = true
        }
        self.problems = problems
    }

    /// Whether the message follows every rule.
    public var isValid: Bool { problems.isEmpty }

    /// The check as JSON.
    public var json: JSONValue {
        .object([
            "commit": .string(commit), "header": .string(header), "ok": .bool(isValid),
            "problems": .strings(problems),
        ])
    }
}

extension StringProtocol {
    /// The text without leading and trailing whitespace.
    var trimmed: String {
        guard let first = firstIndex(where: { !$0.isWhitespace }), let last = lastIndex(where: { !$0.isWhitespace })
        else { return "" }
        return String(self[first...last])
    }
}
