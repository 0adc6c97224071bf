import OnebitModel

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// A secret found in a diff or a text.
public struct SecretFinding: Sendable, Equatable {
    /// Which rule matched (`aws-access-key-id`, `private-key`, `high-entropy-string`, ...).
    public var rule: String
    /// `high` for a known credential format, `medium` for a high-entropy string.
    public var severity: String
    /// The file of the diff it was added to; empty for plain text.
    public var file: String
    /// Its line in the new version of the file (or in the text), from 1.
    public var line: Int
    /// The commit that added it, when the text came from `git log -p`.
    public var commit: String
    /// The matched text with all but its first characters hidden, so the report does not spread the secret.
    public var excerpt: String

    /// The finding as JSON.
    public var json: JSONValue {
        .object([
            "rule": .string(rule), "severity": .string(severity), "file": .string(file), "line": .integer(line),
            "commit": .string(commit), "excerpt": .string(excerpt),
        ])
    }
}

/// Finds credentials in the added lines of a unified diff (or in every line of a plain text).
///
/// Known formats are matched exactly: PEM private keys, AWS access key ids and secret keys, GitHub, Slack, Google
/// and OpenAI-style tokens, JWTs. Other secrets are caught by their Shannon entropy: a base64-looking word of 20 or
/// more characters with upper case, lower case and a digit, at least 3.5 bits per character, and a character class
/// (lower, upper, digit) that changes at 45% or more of its steps, which random text does (about 65%) and
/// camel-case identifiers such as `greedyTokenIDsFloat64` do not (about 35%); or a hex word of 32 or more characters
/// on a line that talks about keys, tokens or passwords. Hex words elsewhere (git SHAs, checksums, object ids) are
/// left alone, as are words on lines that name a hash.
public enum SecretScanner {
    /// Finds the secrets in `text`.
    public static func scan(_ text: String) -> [SecretFinding] {
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false)
        let isDiff = lines.contains { $0.hasPrefix("@@ ") || $0.hasPrefix("diff --git ") }
        var findings: [SecretFinding] = []
        let rules = rules()
        var commit = ""
        var file = ""
        var newLine = 0
        var inHunk = false
        // The body of a private key is one finding (its BEGIN line), not one per high-entropy line.
        var inKeyBlock = false
        func content(_ line: Substring, _ number: Int) {
            if inKeyBlock {
                if line.contains("-----END") { inKeyBlock = false }
                return
            }
            let found = scan(line: line, rules: rules, file: file, number: number, commit: commit)
            if found.contains(where: { $0.rule == "private-key" }), !line.contains("-----END") { inKeyBlock = true }
            findings += found
        }
        for (index, raw) in lines.enumerated() {
            var line = Substring(raw)
            if line.hasSuffix("\r") { line = line.dropLast() }
            guard isDiff else {
                content(line, index + 1)
                continue
            }
            if line.hasPrefix("commit ") {
                commit = String(line.dropFirst(7).prefix { !$0.isWhitespace })
                inHunk = false
            } else if line.hasPrefix("diff --git ") {
                inHunk = false
                inKeyBlock = false
                file = ""
            } else if line.hasPrefix("+++ ") {
                let path = line.dropFirst(4)
                file = path.hasPrefix("b/") ? String(path.dropFirst(2)) : String(path)
            } else if line.hasPrefix("@@ ") {
                inHunk = true
                newLine = hunkStart(line) ?? 1
            } else if inHunk {
                if line.hasPrefix("+") {
                    content(line.dropFirst(), newLine)
                    newLine += 1
                } else if line.hasPrefix(" ") || line.isEmpty {
                    newLine += 1
                } else if !line.hasPrefix("-") && !line.hasPrefix("\\") {
                    inHunk = false
                }
            }
        }
        return findings
    }

    /// The new file's first line number from `@@ -a,b +c,d @@`.
    private static func hunkStart(_ line: Substring) -> Int? {
        guard let plus = line.split(separator: " ").first(where: { $0.hasPrefix("+") }) else { return nil }
        return Int(plus.dropFirst().prefix { $0 != "," })
    }

    /// A rule for a known credential format; the pattern runs only on lines holding one of the anchors (regular
    /// expressions are slow, and almost no line holds any anchor).
    struct Rule {
        let name: String
        let anchors: [String]
        let pattern: Regex<Substring>
    }

    static func rules() -> [Rule] {
        [
            Rule(
                name: "private-key", anchors: ["PRIVATE KEY"], pattern: /-----BEGIN[A-Z ]* PRIVATE KEY(?: BLOCK)?-----/),
            Rule(
                name: "aws-access-key-id",
                anchors: ["AKIA", "ASIA", "ABIA", "ACCA", "AGPA", "AIDA", "AIPA", "ANPA", "ANVA", "AROA", "APKA"],
                pattern: /\b(?:AKIA|ASIA|ABIA|ACCA|AGPA|AIDA|AIPA|ANPA|ANVA|AROA|APKA)[A-Z0-9]{16}\b/),
            Rule(
                name: "github-token", anchors: ["ghp_", "gho_", "ghu_", "ghs_", "ghr_"],
                pattern: /\b(?:ghp|gho|ghu|ghs|ghr)_[A-Za-z0-9]{36,}\b/),
            Rule(name: "github-token", anchors: ["github_pat_"], pattern: /\bgithub_pat_[A-Za-z0-9_]{22,}/),
            Rule(name: "slack-token", anchors: ["xox"], pattern: /\bxox[abposr]-[A-Za-z0-9-]{10,}/),
            Rule(name: "google-api-key", anchors: ["AIza"], pattern: /\bAIza[0-9A-Za-z_\-]{35}/),
            Rule(
                name: "openai-api-key", anchors: ["sk-"],
                pattern: /\bsk-(?:proj-|svcacct-|admin-)?[A-Za-z0-9_\-]{20,}/),
            Rule(
                name: "jwt", anchors: ["eyJ"],
                pattern: /\beyJ[A-Za-z0-9_\-]{5,}\.eyJ[A-Za-z0-9_\-]{5,}\.[A-Za-z0-9_\-]{5,}/),
        ]
    }

    /// Words on a line that make a long hex word likely to be a secret.
    private static let secretWords = [
        "secret", "token", "password", "passwd", "api_key", "apikey", "credential", "auth",
    ]
    /// Words on a line that make a long word likely to be a hash rather than a secret.
    private static let hashWords = [
        "sha1", "sha256", "sha512", "sha-", "checksum", "digest", "integrity", "commit", "hash", "revision",
    ]

    private static func scan(
        line: Substring, rules: [Rule], file: String, number: Int, commit: String
    ) -> [SecretFinding] {
        var findings: [SecretFinding] = []
        var matched: [Range<Substring.Index>] = []
        func add(_ rule: String, _ severity: String, _ text: Substring) {
            findings.append(
                SecretFinding(
                    rule: rule, severity: severity, file: file, line: number, commit: commit,
                    excerpt: rule == "private-key" ? String(text) : redacted(text)))
        }
        for rule in rules where rule.anchors.contains(where: { line.contains($0) }) {
            for match in line.matches(of: rule.pattern) where !matched.contains(where: { $0.overlaps(match.range) }) {
                matched.append(match.range)
                add(rule.name, "high", line[match.range])
            }
        }
        // Every rule below needs 20 characters or more; the line's context is read only for such words.
        let long = words(of: line).filter { line.distance(from: $0.lowerBound, to: $0.upperBound) >= 20 }
        guard !long.isEmpty else { return findings }
        let lowered = line.lowercased()
        let hashContext = hashWords.contains { lowered.contains($0) }
        let secretContext = secretWords.contains { lowered.contains($0) }
        let awsContext = lowered.contains("aws") || lowered.contains("secret")
        for word in long where !matched.contains(where: { $0.overlaps(word) }) {
            let text = line[word]
            let bits = entropy(text)
            if awsContext, text.count == 40, isBase64(text), hasMixedCase(text) {
                add("aws-secret-access-key", "high", text)
            } else if text.allSatisfy(\.isHexDigit) {
                if text.count >= 32, secretContext, !hashContext, bits >= 3.0 {
                    add("high-entropy-string", "medium", text)
                }
            } else if text.count >= 20, !hashContext, !isCode(text, before: line[word.upperBound...]), isBase64(text),
                hasMixedCase(text),
                text.contains(where: \.isNumber), bits >= 3.5, classChangeRate(text) >= 0.45
            {
                add("high-entropy-string", "medium", text)
            }
        }
        return findings
    }

    /// Ranges of the runs of characters that can make up a token (base64, base64url, hex).
    private static func words(of line: Substring) -> [Range<Substring.Index>] {
        var ranges: [Range<Substring.Index>] = []
        var start: Substring.Index?
        for index in line.indices {
            let c = line[index]
            let inWord =
                c.isASCII && (c.isLetter || c.isNumber || c == "+" || c == "/" || c == "=" || c == "_" || c == "-")
            if inWord, start == nil { start = index }
            if !inWord, let begin = start {
                ranges.append(begin..<index)
                start = nil
            }
        }
        if let start { ranges.append(start..<line.endIndex) }
        return ranges
    }

    private static func isBase64(_ text: Substring) -> Bool {
        text.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || "+/_-".contains($0)) }
    }

    private static func hasMixedCase(_ text: Substring) -> Bool {
        text.contains(where: \.isUppercase) && text.contains(where: \.isLowercase)
    }

    /// Whether `word` reads as code rather than data: a number literal (`0x9E37_79B9_7F4A_7C15`) or a name that is
    /// called or declared (followed by `(`).
    static func isCode(_ word: Substring, before rest: Substring) -> Bool {
        word.hasPrefix("0x") || word.hasPrefix("0X") || rest.first == "("
    }

    /// The share of steps between consecutive letters and digits of `text` where the class (lower case, upper case,
    /// digit) changes; other characters are skipped.
    static func classChangeRate(_ text: some StringProtocol) -> Double {
        let classes = text.compactMap { c -> Int? in
            c.isLowercase ? 0 : c.isUppercase ? 1 : c.isNumber ? 2 : nil
        }
        guard classes.count > 1 else { return 0 }
        let changes = zip(classes, classes.dropFirst()).filter { $0 != $1 }.count
        return Double(changes) / Double(classes.count - 1)
    }

    /// Shannon entropy of the characters of `text`, in bits per character.
    public static func entropy(_ text: some StringProtocol) -> Double {
        var counts: [Character: Int] = [:]
        for c in text { counts[c, default: 0] += 1 }
        let total = Double(text.count)
        guard total > 0 else { return 0 }
        return counts.values.reduce(0) { sum, count in
            let p = Double(count) / total
            return sum - p * log2(p)
        }
    }

    /// The first four characters, then how many are hidden.
    static func redacted(_ text: Substring) -> String {
        "\(text.prefix(4))… (\(text.count) characters)"
    }
}
