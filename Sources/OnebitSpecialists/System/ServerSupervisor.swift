import Synchronization

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// How `onebit serve --supervise` watches its server.
public struct SupervisorConfiguration: Sendable {
    /// The child's command line; `arguments[0]` is the executable's path.
    public var arguments: [String]
    /// The child's health route (`http://127.0.0.1:8080/health`).
    public var healthURL: String
    /// Seconds between health checks.
    public var checkInterval: Double
    /// Seconds a new child may take to answer its first health check (loading a large model takes a while).
    public var startupGrace: Double
    /// Failed checks in a row after which the child is restarted.
    public var failuresBeforeRestart: Int
    /// Seconds to wait before the first restart; doubled (up to a minute) while children die young.
    public var initialBackoff: Double

    /// Describes a supervision.
    public init(
        arguments: [String], healthURL: String, checkInterval: Double = 5, startupGrace: Double = 120,
        failuresBeforeRestart: Int = 3, initialBackoff: Double = 1
    ) {
        self.arguments = arguments
        self.healthURL = healthURL
        self.checkInterval = checkInterval
        self.startupGrace = startupGrace
        self.failuresBeforeRestart = failuresBeforeRestart
        self.initialBackoff = initialBackoff
    }
}

/// A parent process that keeps one `onebit serve` child alive: it restarts the child when it exits or fails
/// `failuresBeforeRestart` health checks in a row, and stops it (SIGTERM, then SIGKILL after ten seconds) when asked.
///
/// Deliberately simple: one child, blocking waits with short sleeps, no state beyond the current child's id.
public final class ServerSupervisor: Sendable {
    private let configuration: SupervisorConfiguration
    private let log: @Sendable (String) -> Void
    private let stopping = Atomic<Bool>(false)
    private let child = Atomic<Int32>(0)
    private let startedCount = Atomic<Int>(0)

    /// A supervisor; `log` receives one line per start, exit and restart.
    public init(configuration: SupervisorConfiguration, log: @escaping @Sendable (String) -> Void) {
        self.configuration = configuration
        self.log = log
    }

    /// How many children were started so far.
    public var starts: Int { startedCount.load(ordering: .relaxed) }

    /// Asks ``run()`` to stop the child and return; safe from any thread.
    public func stop() {
        stopping.store(true, ordering: .relaxed)
        let pid = child.load(ordering: .relaxed)
        if pid > 0 { kill(pid, SIGTERM) }
    }

    /// Supervises until ``stop()``; blocks the calling thread.
    public func run() throws(SpecialistError) {
        var backoff = configuration.initialBackoff
        while !stopping.load(ordering: .relaxed) {
            let pid = try spawn()
            child.store(pid, ordering: .relaxed)
            startedCount.add(1, ordering: .relaxed)
            log("supervise: started the server (pid \(pid))")
            let started = ContinuousClock.now
            let reason = watch(pid)
            child.store(0, ordering: .relaxed)
            if stopping.load(ordering: .relaxed) { break }
            log("supervise: \(reason); restarting in \(backoff) s")
            let lived = ContinuousClock.now - started
            backoff = lived > .seconds(60) ? configuration.initialBackoff : backoff
            sleep(seconds: backoff)
            backoff = min(backoff * 2, 60)
        }
    }

    /// Waits for the child to exit or to fail its health checks; returns why it is gone.
    private func watch(_ pid: pid_t) -> String {
        let started = ContinuousClock.now
        var healthy = false
        var failures = 0
        while true {
            let next = ContinuousClock.now + .milliseconds(Int64(configuration.checkInterval * 1000))
            while ContinuousClock.now < next {
                if let status = reap(pid, wait: false) { return "the server exited (\(status))" }
                if stopping.load(ordering: .relaxed) {
                    terminate(pid)
                    return "stopped"
                }
                usleep(50_000)
            }
            let probe = HTTPProbe.getBlocking(configuration.healthURL, timeout: max(1, configuration.checkInterval))
            let ok = (try? probe.get())?.status == 200
            if ok {
                healthy = true
                failures = 0
                continue
            }
            let grace = ContinuousClock.now - started < .milliseconds(Int64(configuration.startupGrace * 1000))
            if !healthy && grace { continue }
            failures += 1
            if failures >= configuration.failuresBeforeRestart {
                terminate(pid)
                return "the server failed \(failures) health checks in a row"
            }
        }
    }

    /// SIGTERM, then SIGKILL if the child is still there after ten seconds; reaps it.
    private func terminate(_ pid: pid_t) {
        kill(pid, SIGTERM)
        let deadline = ContinuousClock.now + .seconds(10)
        while ContinuousClock.now < deadline {
            if reap(pid, wait: false) != nil { return }
            usleep(50_000)
        }
        kill(pid, SIGKILL)
        _ = reap(pid, wait: true)
    }

    /// How the child ended, once it has.
    private func reap(_ pid: pid_t, wait: Bool) -> String? {
        var status: Int32 = 0
        let result = waitpid(pid, &status, wait ? 0 : WNOHANG)
        guard result == pid else { return result < 0 ? "gone" : nil }
        return status & 0x7f == 0 ? "exit status \((status >> 8) & 0xff)" : "killed by signal \(status & 0x7f)"
    }

    private func spawn() throws(SpecialistError) -> pid_t {
        var pid: pid_t = 0
        let argv = configuration.arguments.map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
        var attributes = ProcessRunner.freshSignalAttributes()
        defer { posix_spawnattr_destroy(&attributes) }
        let result = posix_spawn(&pid, configuration.arguments[0], nil, &attributes, argv, environ)
        guard result == 0 else {
            throw .toolFailed(
                tool: "supervise",
                reason: "cannot start \(configuration.arguments[0]): \(String(cString: strerror(result)))")
        }
        return pid
    }

    private func sleep(seconds: Double) {
        let deadline = ContinuousClock.now + .milliseconds(Int64(seconds * 1000))
        while ContinuousClock.now < deadline, !stopping.load(ordering: .relaxed) { usleep(50_000) }
    }
}
