import Testing

@testable import OnebitSpecialists

@Suite struct MagistrateTests {
    /// Fake credentials in the documented formats (AWS's own example key pair among them).
    static let awsKeyID = "AKIAIOSFODNN7EXAMPLE"
    static let awsSecret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
    static let pem = """
        -----BEGIN RSA PRIVATE KEY-----
        MIIEowIBAAKCAQEA7bq3Vz3l0Jb2Jz9f0iN0dUa9Qk7xM2q8mWcT1L5pYxR3sE6k
        -----END RSA PRIVATE KEY-----
        """

    static func diff(adding lines: [String], file: String = "config/settings.env") -> String {
        """
        commit 4b825dc642cb6eb9a060e54bf8d69288fbee4904
        diff --git a/\(file) b/\(file)
        index 3f2a9c1..e5b1d07 100644
        --- a/\(file)
        +++ b/\(file)
        @@ -1,2 +1,\(lines.count + 2) @@
         # settings
        \(lines.map { "+" + $0 }.joined(separator: "\n"))
         end = true
        -removed_line = AKIAABCDEFGHIJKLMNOP
        """
    }

    @Test func plantedAWSKeysAndAPrivateKeyAreFoundWithTheirLines() {
        let lines =
            ["aws_access_key_id = \(Self.awsKeyID)", "aws_secret_access_key = \(Self.awsSecret)"]
            + Self.pem.split(separator: "\n").map(String.init)
        let findings = SecretScanner.scan(Self.diff(adding: lines))
        #expect(findings.map(\.rule) == ["aws-access-key-id", "aws-secret-access-key", "private-key"])
        #expect(findings.map(\.line) == [2, 3, 4])
        #expect(findings.allSatisfy { $0.file == "config/settings.env" })
        #expect(findings.allSatisfy { $0.commit == "4b825dc642cb6eb9a060e54bf8d69288fbee4904" })
        // The report never repeats a secret in full.
        #expect(!findings.contains { $0.excerpt.contains(Self.awsSecret) || $0.excerpt.contains(Self.awsKeyID) })
    }

    @Test func removedLinesAndContextAreNotScanned() {
        let findings = SecretScanner.scan(Self.diff(adding: ["name = demo"]))
        #expect(findings.isEmpty, "\(findings)")
    }

    @Test func aCleanDiffWithHashesGivesNoFinding() {
        let lines = [
            "let sha = \"4b825dc642cb6eb9a060e54bf8d69288fbee4904\"  // commit of the fixture",
            "checksum: e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
            "integrity sha512-Vt4nBNQ1vTqA7Ww5c6J3sJp2bD7jM1Z0eOQ4c8mJtLGdP3s8J9kq==",
            "import OnebitSpecialists",
            "path = Sources/OnebitSpecialists/Cores/SecretScanner.swift",
            "let identifier = makeConstraintSpeedTestsRunner(with: configuration)",
            "uuid = 123e4567-e89b-12d3-a456-426614174000",
            "ours == Array(prompt.greedyTokenIDsFloat64.prefix(8))",
            "return parts.joined(separator: \"/\") + \"/Fixtures/models/hf-256\"",
            "@Test func loadsTQ2_0AndTQ1_0FilesWithScales() {",
            "@Test func loadsBitNetB158InI2S() throws {",
            "state = seed &+ 0x9E37_79B9_7F4A_7C15",
        ]
        let findings = SecretScanner.scan(Self.diff(adding: lines, file: "Sources/App.swift"))
        #expect(findings.isEmpty, "\(findings)")
    }

    @Test func tokenFormatsAreRecognised() {
        let cases: [(String, String)] = [
            ("github-token", "token: ghp_" + String(repeating: "aB3", count: 12)),
            ("github-token", "GH=github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuv"),
            ("slack-token", "hook = xoxb-1234567890-abcdefghijkl"),
            ("google-api-key", "key=AIzaSyA1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q"),
            ("openai-api-key", "OPENAI_API_KEY=sk-proj-abcdEFGH1234ijklMNOP5678"),
            (
                "jwt",
                "Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U"
            ),
            ("high-entropy-string", "password = \"9f8e7d6c5b4a39281706f5e4d3c2b1a0ffeeddcc\""),
            ("high-entropy-string", "value: Zx8Qm2Lr7Tn4Vb9Kp3Wd6Hs1Jf5Gc0Ya"),
        ]
        for (rule, line) in cases {
            let findings = SecretScanner.scan(line)
            #expect(findings.map(\.rule) == [rule], "\(line): \(findings)")
        }
    }

    @Test func entropyIsShannonsInBitsPerCharacter() {
        #expect(SecretScanner.entropy("aaaa") == 0)
        #expect(SecretScanner.entropy("abcd") == 2)
        #expect(abs(SecretScanner.entropy("aab") - 0.9182958340544896) < 1e-12)
        #expect(SecretScanner.classChangeRate("aA1") == 1)
        #expect(SecretScanner.classChangeRate("ab_cD") == 1.0 / 3)
    }

    @Test func conventionalCommitsPassAndBadMessagesAreFlagged() {
        let good = [
            "feat(server): add the specialists routes",
            "fix!: refuse empty prompts\n\nBREAKING CHANGE: an empty prompt is now a 400",
            "docs: describe the TOML format",
        ]
        for message in good {
            let commit = ConventionalCommit(message: message)
            #expect(commit.isValid, "\(message): \(commit.problems)")
        }
        #expect(ConventionalCommit(message: good[1]).breaking)
        let bad: [(String, String)] = [
            ("Fixed the bug", "does not follow"),
            ("feature: add a thing", "unknown type 'feature'"),
            ("fix: handle it.", "period"),
            ("fix(engine): " + String(repeating: "x", count: 70), "characters"),
            ("fix: first line\nsecond line without a blank", "blank line"),
            ("fix: ", "empty"),
        ]
        for (message, problem) in bad {
            let commit = ConventionalCommit(message: message)
            #expect(!commit.isValid)
            #expect(commit.problems.contains { $0.contains(problem) }, "\(message): \(commit.problems)")
        }
    }

    @Test func theCoreScansAGitRepositoryWithItsMessages() async throws {
        let repository = try await TemporaryRepository()
        try await repository.commit("feat: start", files: ["README.md": "hello\n"])
        try await repository.commit(
            "Add credentials", files: ["deploy.env": "AWS_ACCESS_KEY_ID=\(Self.awsKeyID)\nregion = eu\n"])
        let tools = ToolBox(specialist: "magistrate", allowed: ["git"])
        let result = try await MagistrateCore().run(.object(["repository": .string(repository.path)]), tools: tools)
        #expect(result.fields["secrets_found"] == .integer(1))
        let finding = try #require(result.fields["findings"]?.arrayValue?.first)
        #expect(finding["file"] == .string("deploy.env") && finding["line"] == .integer(1))
        #expect(finding["commit"] == .string(try await repository.head))
        #expect(result.fields["bad_commits"] == .integer(1))
        #expect(result.fields["clean"] == .bool(false))

        await #expect(throws: SpecialistError.toolNotAllowed(specialist: "magistrate", tool: "git")) {
            _ = try await MagistrateCore().run(
                .object(["repository": .string(repository.path)]),
                tools: ToolBox(specialist: "magistrate", allowed: []))
        }
    }

    @Test func aLongHistoryIsScannedWhole() async throws {
        let repository = try await TemporaryRepository()
        try await repository.commit("feat: old key", files: ["old.env": "KEY_ID=\(Self.awsKeyID)\n"])
        // Far more than a tool's usual output tail, so a scan that kept only the end would miss the newest commit.
        let filler = (0..<20_000).map { "let value\($0) = \($0)" }.joined(separator: "\n")
        try await repository.commit("feat: filler", files: ["Filler.swift": filler])
        try await repository.commit(
            "feat: new token", files: ["ci.env": "TOKEN=ghp_" + String(repeating: "aB3", count: 12)])
        let result = try await MagistrateCore().run(
            .object(["repository": .string(repository.path)]),
            tools: ToolBox(specialist: "magistrate", allowed: ["git"]))
        let rules = result.fields["findings"]?.arrayValue?.compactMap { $0["rule"]?.stringValue }
        #expect(rules == ["github-token", "aws-access-key-id"])
    }
}
