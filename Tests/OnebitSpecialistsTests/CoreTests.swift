import Foundation
import OnebitModel
import Testing

@testable import OnebitSpecialists

@Suite struct LibrarianTests {
    static let history: [(String, String)] = [
        ("a1", "feat(server): add report routes"),
        ("b2", "fix: keep stop strings out of output"),
        ("c3", "feat!: rename --ctx to --context\n\nThe old flag is gone."),
        ("d4", "Update README"),
        ("e5", "perf(cpu): unroll the ternary kernel"),
        ("f6", "refactor: split the runner\n\nBREAKING CHANGE: SpecialistRunner.run takes a trigger"),
        ("g7", "fix(engine): free caches of cancelled requests"),
    ]

    @Test func aCraftedHistoryIsGroupedWithBreakingChangesFirst() async throws {
        let commits: JSONValue = .array(
            Self.history.map { .object(["hash": .string($0.0), "message": .string($0.1)]) })
        let result = try await LibrarianCore().run(
            .object(["commits": commits]), tools: ToolBox(specialist: "librarian", allowed: []))
        let sections = try #require(result.fields["sections"]?.arrayValue)
        #expect(
            sections.compactMap { $0["title"]?.stringValue } == [
                "Breaking changes", "Features", "Bug fixes", "Performance", "Other changes",
            ])
        func hashes(_ index: Int) -> [String] {
            sections[index]["entries"]?.arrayValue?.compactMap { $0["commit"]?.stringValue } ?? []
        }
        #expect(hashes(0) == ["c3", "f6"])
        #expect(hashes(1) == ["a1"])
        #expect(hashes(2) == ["b2", "g7"])
        #expect(hashes(3) == ["e5"])
        #expect(hashes(4) == ["d4"])
        #expect(result.fields["breaking_changes"] == .integer(2))
        let markdown = try #require(result.fields["markdown"]?.stringValue)
        #expect(markdown.hasPrefix("### Breaking changes\n\n- rename --ctx to --context (c3)"), "\(markdown)")
        #expect(markdown.contains("- **server:** add report routes (a1)"))
    }

    @Test func itReadsTheRangeBetweenTwoRefs() async throws {
        let repository = try await TemporaryRepository()
        try await repository.commit("feat: first", files: ["a": "1"])
        try await repository.git("tag", "v1")
        try await repository.commit("fix: second", files: ["a": "2"])
        try await repository.commit("feat: third", files: ["a": "3"])
        let result = try await LibrarianCore().run(
            .object(["repository": .string(repository.path), "from": .string("v1")]),
            tools: ToolBox(specialist: "librarian", allowed: ["git"]))
        #expect(result.fields["range"] == .string("v1..HEAD"))
        #expect(result.fields["commits"] == .integer(2))
        let markdown = try #require(result.fields["markdown"]?.stringValue)
        #expect(markdown.contains("- third") && markdown.contains("- second") && !markdown.contains("first"))
    }
}

@Suite struct QuartermasterTests {
    static let issues: JSONValue = .array([
        .object(["id": .integer(11), "title": .string("Docs: typo in the README install section")]),
        .object([
            "id": .integer(12), "title": .string("Server crashes on empty prompt"),
            "body": .string("POST /v1/completions with an empty prompt crashes the server with a fatal error."),
        ]),
        .object([
            "id": .integer(13), "title": .string("Add support for top-n-sigma sampling"),
            "body": .string("Would be nice to have another sampler."),
        ]),
    ])

    @Test func theObviousDuplicateRanksFirst() async throws {
        let input: JSONValue = .object([
            "title": .string("Crash when the prompt is empty"),
            "body": .string("Sending an empty prompt to /v1/completions crashes the server."),
            "issues": Self.issues,
        ])
        let result = try await QuartermasterCore().run(input, tools: ToolBox(specialist: "q", allowed: []))
        let duplicates = try #require(result.fields["duplicates"]?.arrayValue)
        #expect(duplicates.first?["id"] == .string("12"))
        let scores = duplicates.compactMap { $0["score"]?.doubleValue }
        #expect(scores == scores.sorted(by: >) && scores[0] > 0.3, "\(scores)")
        #expect(result.fields["type"] == .string("bug"))
        #expect(result.fields["severity"] == .string("critical"))
        #expect(result.fields["component"] == .string("server"))
    }

    @Test func typesAndConfiguredComponentsFollowTheKeywords() async throws {
        let components: JSONValue = .array([
            .object(["name": .string("ui"), "keywords": .array([.string("button"), .string("page")])]),
            .object(["name": .string("storage"), "keywords": .array([.string("disk")])]),
        ])
        let cases: [(String, String, String, String)] = [
            ("Please add a dark mode button", "feature", "medium", "ui"),
            ("How do I change the disk location?", "question", "medium", "storage"),
            ("Typo on the settings page", "docs", "low", "ui"),
        ]
        for (title, type, severity, component) in cases {
            let result = try await QuartermasterCore().run(
                .object(["title": .string(title), "components": components]),
                tools: ToolBox(specialist: "q", allowed: []))
            #expect(result.fields["type"] == .string(type), "\(title)")
            #expect(result.fields["severity"] == .string(severity), "\(title)")
            #expect(result.fields["component"] == .string(component), "\(title)")
        }
    }
}

@Suite struct ScribeTests {
    static let text = """
        The ternary model stores every weight as minus one, zero or plus one. Each layer multiplies int8 \
        activations by these ternary weights. The weather was pleasant on the day the paper came out. Because the \
        ternary weights need only two bits, the model weights fit in little memory. Kernels for ternary weights \
        stream the model weights from memory at full bandwidth.

        A cat sat on the mat.
        """

    @Test func itKeepsTheRequestedNumberOfCentralSentencesInOrder() {
        let sentences = ScribeCore.sentences(of: Self.text)
        #expect(sentences.count == 6)
        let picked = ScribeCore.extract(sentences, count: 2, maxCharacters: 1000)
        #expect(picked.count == 2)
        #expect(!picked.contains { $0.contains("weather") || $0.contains("cat") })
        let indices = picked.map { sentences.firstIndex(of: $0)! }
        #expect(indices == indices.sorted())
    }

    @Test func itRespectsTheCharacterLimit() async throws {
        for limit in [40, 120, 250] {
            let result = try await ScribeCore().run(
                .object(["text": .string(Self.text), "sentences": .integer(3), "max_characters": .integer(limit)]),
                tools: ToolBox(specialist: "scribe", allowed: []))
            let extract = try #require(result.fields["extract"]?.stringValue)
            #expect(extract.count <= limit && !extract.isEmpty, "\(limit): \(extract)")
            #expect(result.textLimit == limit)
        }
    }

    @Test func aFileNeedsTheFilesTool() async throws {
        let directory = temporaryDirectory()
        write(Self.text, to: directory + "/notes.txt")
        let input: JSONValue = .object(["path": .string(directory + "/notes.txt"), "sentences": .integer(1)])
        let result = try await ScribeCore().run(input, tools: ToolBox(specialist: "scribe", allowed: ["files"]))
        #expect(result.fields["sentences"]?.arrayValue?.count == 1)
        await #expect(throws: SpecialistError.toolNotAllowed(specialist: "scribe", tool: "files")) {
            _ = try await ScribeCore().run(input, tools: ToolBox(specialist: "scribe", allowed: []))
        }
    }
}

@Suite struct SentinelTests {
    @Test func metricsGiveTheServerErrorRate() {
        let exposition = """
            # TYPE onebit_requests_total counter
            onebit_requests_total{path="/health",status="200"} 7
            onebit_requests_total{path="/v1/completions",status="400"} 2
            onebit_requests_total{path="/v1/completions",status="503"} 1
            onebit_generated_tokens_total 90
            """
        #expect(SentinelCore.requestCounts(exposition) == (10, 1))
    }

    @Test func itReadsThisProcessResidentMemory() throws {
        let rss = try #require(SentinelCore.residentBytes(pid: nil))
        #expect(rss > 1 << 20)
    }

    @Test func anUnreachableServerIsDown() async throws {
        let result = try await SentinelCore().run(
            .object(["url": .string("http://127.0.0.1:9")]), tools: ToolBox(specialist: "sentinel", allowed: ["http"]))
        #expect(result.fields["status"] == .string("down"))
        #expect(result.fields["healthy"] == .bool(false))
        #expect(result.fields["problems"]?.arrayValue?.isEmpty == false)
    }

    @Test func probeAnswersAreDecodedWhetherChunkedOrNot() {
        let plain = Array("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok".utf8)
        #expect(HTTPProbe.decode(plain)! == (200, "ok"))
        let chunked = Array(
            "HTTP/1.1 503 Busy\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n".utf8)
        #expect(HTTPProbe.decode(chunked)! == (503, "abcde"))
        #expect(HTTPProbe.parse("http://localhost:8080/health")! == ("localhost", 8080, "/health"))
        #expect(HTTPProbe.parse("https://example.com") == nil)
    }
}

@Suite struct SupervisorTests {
    /// Runs the supervisor on a thread of its own, started at once; the stream gives the instant the supervisor
    /// returned, then ends. It blocks, the cooperative pool may have only two threads, and other suites' blocking
    /// work can hold every worker for half a minute: a supervisor started from a task of its own could start only
    /// after the test's deadline (a full local run saw it start once in 20 s that way), and a test resumed late
    /// cannot time the stop itself.
    static func start(_ supervisor: ServerSupervisor) -> AsyncStream<ContinuousClock.Instant> {
        let (finished, continuation) = AsyncStream<ContinuousClock.Instant>.makeStream()
        Thread.detachNewThread {
            #expect(throws: Never.self) { try supervisor.run() }
            continuation.yield(.now)
            continuation.finish()
        }
        return finished
    }

    @Test func aChildThatDiesIsStartedAgainUntilStopped() async throws {
        let supervisor = ServerSupervisor(
            configuration: SupervisorConfiguration(
                arguments: ["/bin/sh", "-c", "sleep 0.2; exit 3"], healthURL: "http://127.0.0.1:9/health",
                checkInterval: 0.1, startupGrace: 0, initialBackoff: 0.05),
            log: { _ in })
        let running = Self.start(supervisor)
        let deadline = ContinuousClock.now + .seconds(20)
        while supervisor.starts < 3, ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(50)) }
        supervisor.stop()
        for await _ in running {}
        #expect(supervisor.starts >= 3)
    }

    @Test func aChildFailingItsHealthChecksIsReplaced() async throws {
        let supervisor = ServerSupervisor(
            configuration: SupervisorConfiguration(
                arguments: ["/bin/sh", "-c", "exec sleep 30"], healthURL: "http://127.0.0.1:9/health",
                checkInterval: 0.1, startupGrace: 0, failuresBeforeRestart: 2, initialBackoff: 0.05),
            log: { _ in })
        let running = Self.start(supervisor)
        let deadline = ContinuousClock.now + .seconds(20)
        while supervisor.starts < 2, ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(50)) }
        let started = ContinuousClock.now
        supervisor.stop()
        var stopped = ContinuousClock.now
        for await instant in running { stopped = instant }
        #expect(supervisor.starts >= 2)
        // The child (which honours SIGTERM) is stopped at once, not after the ten-second SIGKILL deadline.
        #expect(stopped - started < .seconds(5))
    }
}
