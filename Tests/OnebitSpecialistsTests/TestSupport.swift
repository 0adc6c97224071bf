import OnebitEngine
import OnebitModel
import Testing

@testable import OnebitSpecialists

#if canImport(Glibc)
    import Glibc
#endif

/// The embedded demo model behind one scheduler, shared by the suites that generate.
enum DemoModel {
    static let model: SpecialistModel = {
        do {
            let loaded = try EmbeddedModel.load()
            let scheduler = Scheduler(
                model: LanguageModel(loaded),
                configuration: SchedulerConfiguration(maxConcurrency: 4, contextLength: 512))
            return SpecialistModel(
                scheduler: scheduler, tokenizer: loaded.tokenizer, chatTemplate: loaded.chatTemplate)
        } catch {
            preconditionFailure("the embedded model must load: \(error)")
        }
    }()

    /// A runner over the built-ins with an in-memory store.
    static func runner(catalog: SpecialistCatalog = .builtIn(), serverURL: String? = nil) -> SpecialistRunner {
        SpecialistRunner(
            catalog: catalog, model: model, reports: ReportStore(directory: nil), serverURL: serverURL)
    }
}

/// A fresh directory under the system's temporary directory.
func temporaryDirectory() -> String {
    var template = Array("/tmp/onebit-specialists-XXXXXX".utf8CString)
    let path = template.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!) }
    precondition(path != nil, "mkdtemp failed")
    return String(cString: path!)
}

/// Writes `text` to `path`.
func write(_ text: String, to path: String) {
    let file = fopen(path, "w")!
    fputs(text, file)
    fclose(file)
}

/// A git repository in a fresh directory, with an identity so commits work anywhere.
struct TemporaryRepository {
    let path: String

    init() async throws {
        path = temporaryDirectory()
        try await git("init", "-q", "-b", "main")
        try await git("config", "user.email", "test@example.com")
        try await git("config", "user.name", "Test")
        try await git("config", "commit.gpgsign", "false")
    }

    @discardableResult
    func git(_ arguments: String...) async throws -> String {
        let outcome = try await ProcessRunner.run(["git", "-C", path] + arguments, timeout: 30)
        #expect(outcome.status == 0, "git \(arguments): \(outcome.output)")
        return outcome.output
    }

    /// Writes `files` (relative path to text) and commits them with `message`.
    func commit(_ message: String, files: [String: String]) async throws {
        for (name, text) in files { write(text, to: path + "/" + name) }
        try await git("add", "-A")
        try await git("commit", "-q", "-m", message)
    }

    var head: String {
        get async throws { try await git("rev-parse", "HEAD").trimmed }
    }
}
