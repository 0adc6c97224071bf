import OnebitModel

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Triages an issue: its type, severity and likely component by keyword rules, and its possible duplicates among
/// given issues by TF-IDF cosine similarity.
///
/// Input: `title`, `body`, optional `components` (`[{"name", "keywords"}]`; default: onebit's own) and `issues`
/// (`[{"id", "title", "body"}]`) to rank as duplicates.
struct QuartermasterCore: SpecialistCore {
    /// Issue types and the phrases that point to them, strongest type first on a tie.
    static let typeRules: [(type: String, phrases: [String])] = [
        (
            "bug",
            [
                "crash", "error", "fail", "broken", "exception", "panic", "segfault", "regression", "wrong",
                "incorrect", "doesn't work", "does not work", "bug", "unexpected",
            ]
        ),
        ("security", ["security", "vulnerab", "cve", "leak", "exploit", "injection"]),
        ("performance", ["slow", "latency", "performance", "speed", "throughput", "memory usage", "tokens/s"]),
        (
            "feature",
            [
                "feature", "support for", "would be nice", "please add", "request", "proposal", "allow",
                "could we", "add a", "add an",
            ]
        ),
        ("docs", ["documentation", "readme", "docs", "typo", "example", "tutorial"]),
        ("question", ["how do", "how can", "how to", "is it possible", "why does", "question", "?"]),
    ]
    /// Severities and the phrases that raise an issue to them, most severe first.
    static let severityRules: [(severity: String, phrases: [String])] = [
        ("critical", ["crash", "data loss", "security", "segfault", "panic", "corrupt", "vulnerab", "cve"]),
        ("high", ["fail", "broken", "regression", "cannot", "can't", "error", "hang", "wrong"]),
        ("low", ["typo", "cosmetic", "minor", "docs", "documentation", "nice to have"]),
    ]
    /// The components of onebit, used when the input names none.
    static let defaultComponents: [(name: String, keywords: [String])] = [
        ("server", ["server", "http", "endpoint", "api", "sse", "stream", "openai", "request"]),
        ("engine", ["scheduler", "sampling", "sampler", "batch", "kv cache", "constraint", "json schema"]),
        ("cpu", ["cpu", "avx", "kernel", "simd", "thread"]),
        ("cuda", ["cuda", "gpu", "nvrtc", "nvidia"]),
        ("model", ["gguf", "safetensors", "tokenizer", "template", "load"]),
        ("cli", ["command", "cli", "flag", "option", "terminal"]),
        ("specialists", ["specialist", "magistrate", "librarian", "quartermaster", "anvil", "sentinel", "scribe"]),
    ]

    func run(_ input: JSONValue, tools: ToolBox) async throws(SpecialistError) -> CoreResult {
        let title = input["title"]?.stringValue ?? ""
        let text = (title + "\n" + (input["body"]?.stringValue ?? "")).lowercased()
        var components = Self.defaultComponents
        if let given = input["components"]?.arrayValue {
            components = given.compactMap { item in
                guard let name = item["name"]?.stringValue else { return nil }
                let keywords = item["keywords"]?.arrayValue?.compactMap(\.stringValue) ?? []
                return (name, [name.lowercased()] + keywords.map { $0.lowercased() })
            }
        }
        var signals: [String] = []
        let type = Self.best(Self.typeRules.map { ($0.type, $0.phrases) }, in: text, signals: &signals) ?? "question"
        let severity =
            Self.severityRules.first { rule in rule.phrases.contains { text.containsPhrase($0) } }?.severity ?? "medium"
        let component = Self.best(components, in: text, signals: &signals) ?? "unknown"
        let candidates = (input["issues"]?.arrayValue ?? []).map { issue in
            (
                id: issue["id"].map { $0.stringValue ?? $0.jsonText } ?? "",
                title: issue["title"]?.stringValue ?? "",
                text: (issue["title"]?.stringValue ?? "") + "\n" + (issue["body"]?.stringValue ?? "")
            )
        }
        let scores = Similarity.cosine(query: text, documents: candidates.map(\.text))
        let ranked = zip(candidates, scores).filter { $0.1 > 0 }.sorted { $0.1 > $1.1 }.prefix(5)
        let duplicates: [JSONValue] = ranked.map { candidate, score in
            .object([
                "id": .string(candidate.id), "title": .string(candidate.title),
                "score": .number((score * 1000).rounded() / 1000),
            ])
        }
        var facts = "A \(severity)-severity \(type) about the \(component) component."
        if let top = ranked.first { facts += " Closest existing issue: \(top.0.id) '\(top.0.title)'." }
        return CoreResult(
            fields: [
                "type": .string(type), "severity": .string(severity), "component": .string(component),
                "signals": .strings(signals), "duplicates": .array(duplicates),
            ], textField: "explanation", facts: facts, fallbackText: facts)
    }

    /// The label whose phrases occur most often in `text` (the first on a tie); `nil` when none occurs.
    static func best(_ rules: [(String, [String])], in text: String, signals: inout [String]) -> String? {
        var best: (label: String, count: Int)?
        for (label, phrases) in rules {
            let hits = phrases.filter { text.containsPhrase($0) }
            let count = hits.reduce(0) { $0 + text.occurrences(of: $1) }
            if count > (best?.count ?? 0) { best = (label, count) }
            if count > 0 { signals += hits.map { "\(label): \($0)" } }
        }
        return best?.label
    }
}

/// TF-IDF cosine similarity between short texts.
enum Similarity {
    /// Words too common to tell issues apart.
    static let stopWords: Set<String> = [
        "the", "and", "for", "with", "that", "this", "from", "are", "was", "not", "but", "when", "what", "have", "has",
        "can", "does", "how", "its", "into", "our", "you", "your", "it", "is", "in", "on", "of", "to", "a", "an", "be",
        "or", "as", "at", "by", "if", "we", "i", "my", "me", "do", "so", "no", "all", "any", "there", "after", "before",
    ]

    /// Lowercased words of two or more letters or digits, stop words left out.
    static func tokens(_ text: String) -> [String] {
        text.lowercased().split { !($0.isLetter || $0.isNumber) }.map(String.init).filter {
            $0.count >= 2 && !stopWords.contains($0)
        }
    }

    /// The cosine similarity of `query` to each of `documents`, with IDF weights over all of them.
    static func cosine(query: String, documents: [String]) -> [Double] {
        let bags = ([query] + documents).map { tokens($0) }
        var documentFrequency: [String: Int] = [:]
        for bag in bags { for word in Set(bag) { documentFrequency[word, default: 0] += 1 } }
        let total = Double(bags.count)
        func vector(_ bag: [String]) -> [String: Double] {
            var counts: [String: Double] = [:]
            for word in bag { counts[word, default: 0] += 1 }
            return counts.reduce(into: [:]) { result, entry in
                let idf = log((total + 1) / Double(documentFrequency[entry.key, default: 0] + 1)) + 1
                result[entry.key] = entry.value * idf
            }
        }
        let vectors = bags.map(vector)
        let queryVector = vectors[0]
        let queryNorm = norm(queryVector)
        return vectors.dropFirst().map { document in
            let dot = queryVector.reduce(0) { $0 + $1.value * (document[$1.key] ?? 0) }
            let denominator = queryNorm * norm(document)
            return denominator > 0 ? dot / denominator : 0
        }
    }

    private static func norm(_ vector: [String: Double]) -> Double {
        vector.values.reduce(0) { $0 + $1 * $1 }.squareRoot()
    }
}

extension String {
    /// How many times `needle` occurs, not overlapping, at the start of a word when it starts with a letter (so
    /// "hang" is not found in "change", while "fail" is found in "failed").
    func occurrences(of needle: String) -> Int {
        guard let first = needle.first else { return 0 }
        var count = 0
        var rest = self[...]
        while let range = rest.firstRange(of: needle) {
            let atWordStart =
                !first.isLetter || range.lowerBound == startIndex || !self[index(before: range.lowerBound)].isLetter
            if atWordStart { count += 1 }
            rest = rest[range.upperBound...]
        }
        return count
    }

    /// Whether `phrase` occurs as ``occurrences(of:)`` counts it.
    func containsPhrase(_ phrase: String) -> Bool { occurrences(of: phrase) > 0 }
}
