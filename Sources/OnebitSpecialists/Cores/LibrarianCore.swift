import OnebitModel

/// Drafts a changelog section from the history between two refs, grouped by Conventional Commit type with breaking
/// changes first.
///
/// Input: `repository` with `from` (exclusive; absent: from the first commit) and `to` (default `HEAD`), or
/// `commits`, a list of `{"hash", "message"}` objects (newest first, as `git log` lists them).
struct LibrarianCore: SpecialistCore {
    /// Section titles in the order a changelog shows them; commits of other types go under "Other changes".
    static let sections: [(type: String, title: String)] = [
        ("feat", "Features"), ("fix", "Bug fixes"), ("perf", "Performance"), ("revert", "Reverts"),
        ("refactor", "Refactoring"), ("docs", "Documentation"), ("test", "Tests"), ("build", "Build"),
        ("ci", "Continuous integration"), ("style", "Style"), ("chore", "Chores"),
    ]

    func run(_ input: JSONValue, tools: ToolBox) async throws(SpecialistError) -> CoreResult {
        var history: [GitHistory.Commit] = []
        var range = "given commits"
        if let repository = input["repository"]?.stringValue {
            let to = input["to"]?.stringValue ?? "HEAD"
            range = input["from"]?.stringValue.map { "\($0)..\(to)" } ?? to
            history = GitHistory.commits(try await GitHistory.log(range: range, in: repository, tools: tools))
        }
        for item in input["commits"]?.arrayValue ?? [] {
            history.append(
                GitHistory.Commit(
                    hash: item["hash"]?.stringValue ?? "", message: item["message"]?.stringValue ?? ""))
        }
        let changelog = Self.changelog(history.map { ConventionalCommit(message: $0.message, commit: $0.hash) })
        let breaking = changelog.first?.title == "Breaking changes" ? changelog[0].entries.count : 0
        let counts = changelog.map { "\($0.entries.count) \($0.title.lowercased())" }.joined(separator: ", ")
        let facts = "\(history.count) commits in \(range): \(counts.isEmpty ? "none" : counts)."
        return CoreResult(
            fields: [
                "range": .string(range), "commits": .integer(history.count), "breaking_changes": .integer(breaking),
                "sections": .array(changelog.map(\.json)), "markdown": .string(Self.markdown(changelog)),
            ], textField: "summary", facts: facts, fallbackText: facts)
    }

    /// One section of the changelog.
    struct Section: Equatable {
        var title: String
        var entries: [ConventionalCommit]

        var json: JSONValue {
            .object([
                "title": .string(title),
                "entries": .array(
                    entries.map { entry in
                        .object([
                            "commit": .string(String(entry.commit.prefix(12))), "type": .string(entry.type ?? ""),
                            "scope": .string(entry.scope ?? ""), "subject": .string(entry.subject),
                            "breaking": .bool(entry.breaking),
                        ])
                    }),
            ])
        }
    }

    /// The commits grouped: breaking changes first (whatever their type), then one section per type in
    /// ``sections`` order, then the rest; empty sections are left out and commits keep their order.
    static func changelog(_ commits: [ConventionalCommit]) -> [Section] {
        var result = [Section(title: "Breaking changes", entries: commits.filter(\.breaking))]
        let rest = commits.filter { !$0.breaking }
        for (type, title) in sections {
            result.append(Section(title: title, entries: rest.filter { $0.type == type }))
        }
        let known = Set(sections.map(\.type))
        result.append(Section(title: "Other changes", entries: rest.filter { !known.contains($0.type ?? "") }))
        return result.filter { !$0.entries.isEmpty }
    }

    /// The changelog as Markdown (`### Title` and one bullet per commit, `**scope:**` before the subject).
    static func markdown(_ sections: [Section]) -> String {
        sections.map { section in
            "### \(section.title)\n\n"
                + section.entries.map { entry in
                    let scope = entry.scope.map { "**\($0):** " } ?? ""
                    let id = entry.commit.isEmpty ? "" : " (\(entry.commit.prefix(7)))"
                    return "- \(scope)\(entry.subject)\(id)"
                }.joined(separator: "\n")
        }.joined(separator: "\n\n")
    }
}
