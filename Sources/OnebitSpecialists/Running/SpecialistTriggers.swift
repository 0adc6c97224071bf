import OnebitModel
import Synchronization

/// Runs the specialists whose trigger is a schedule or a git repository, in the background of `onebit serve`.
///
/// Each trigger is one task: a schedule sleeps its interval and runs; a git watcher asks `git rev-parse HEAD` every
/// interval and runs once for every new value (the `HEAD` found at start is the baseline and is not run). Runs go
/// through the same ``SpecialistRunner`` as requests, so generation shares the scheduler and never blocks serving.
/// Failures are logged and the watch goes on.
public final class SpecialistTriggers: Sendable {
    private let runner: SpecialistRunner
    private let log: @Sendable (String) -> Void
    private let tasks = Mutex<[Task<Void, Never>]>([])

    /// Triggers of `runner`'s catalog; `log` receives one line per run and per failure.
    public init(runner: SpecialistRunner, log: @escaping @Sendable (String) -> Void) {
        self.runner = runner
        self.log = log
    }

    /// The definitions that run without being asked.
    public var triggered: [SpecialistDefinition] {
        runner.catalog.specialists.filter { $0.trigger != .onDemand }
    }

    /// Starts one task per triggered specialist.
    public func start() {
        let started = triggered.map { definition in
            Task { [runner, log] in
                switch definition.trigger {
                case .onDemand:
                    return
                case .schedule(let interval, let input):
                    while !Task.isCancelled {
                        guard (try? await Task.sleep(for: .seconds(interval))) != nil else { return }
                        await Self.run(definition, input: input, trigger: "schedule", runner: runner, log: log)
                    }
                case .gitCommit(let repository, let interval, let input):
                    await Self.watch(
                        definition, repository: repository, interval: interval, input: input, runner: runner,
                        log: log)
                }
            }
        }
        tasks.withLock { $0 += started }
    }

    /// Cancels every trigger task; a build or check under way is stopped.
    public func stop() {
        let running = tasks.withLock { tasks in
            defer { tasks.removeAll() }
            return tasks
        }
        running.forEach { $0.cancel() }
    }

    private static func watch(
        _ definition: SpecialistDefinition, repository: String, interval: Int, input: JSONValue,
        runner: SpecialistRunner, log: @escaping @Sendable (String) -> Void
    ) async {
        var last: String?
        var warned = false
        while !Task.isCancelled {
            do {
                let outcome = try await ProcessRunner.run(
                    ["git", "-C", repository, "rev-parse", "HEAD"], timeout: 30, separateErrors: true)
                let head = outcome.output.trimmed
                if outcome.status == 0, !head.isEmpty {
                    warned = false
                    if let previous = last, previous != head {
                        var members = input.objectValue ?? [:]
                        members["repository"] = .string(repository)
                        members["commit"] = .string(head)
                        await run(definition, input: .object(members), trigger: "git-commit", runner: runner, log: log)
                    }
                    last = head
                } else if !warned {
                    warned = true
                    log(
                        "specialist \(definition.name): cannot read HEAD of \(repository): "
                            + outcome.errors.trimmed.prefix(200))
                }
            } catch {
                log("specialist \(definition.name): \(error.description)")
            }
            guard (try? await Task.sleep(for: .seconds(interval))) != nil else { return }
        }
    }

    private static func run(
        _ definition: SpecialistDefinition, input: JSONValue, trigger: String, runner: SpecialistRunner,
        log: @Sendable (String) -> Void
    ) async {
        do {
            let report = try await runner.run(definition, input: input, trigger: trigger)
            log("specialist \(definition.name): report \(report.id)")
        } catch {
            log("specialist \(definition.name): \(error.description)")
        }
    }
}
