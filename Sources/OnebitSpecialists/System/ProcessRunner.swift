import Dispatch
import Synchronization

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// How a child process ended.
public struct ProcessOutcome: Sendable, Equatable {
    /// The exit status; `128 + n` when killed by signal `n` (as shells report it).
    public var status: Int32
    /// The end of what it wrote to standard output, and to standard error interleaved as written unless that was
    /// kept apart.
    public var output: String
    /// The end of what it wrote to standard error, when kept apart from `output`.
    public var errors: String
    /// Whether it was killed for running past its deadline.
    public var timedOut: Bool
    /// Whether it wrote more than the output limit, so `output` holds only the end.
    public var truncated: Bool
    /// Seconds from start to end.
    public var seconds: Double
}

/// Runs a program with a hard deadline, capturing the tail of its output.
///
/// Written here rather than taken from swift-subprocess because what the specialists need is narrow and must be
/// exact: the child gets its own process group so a timeout kills the whole build it started (compilers, test
/// runners), standard output and error share one pipe so error lines keep their order, only a bounded tail is kept,
/// and the blocking wait happens on a Dispatch thread so no task of the server's cooperative pool is held.
public enum ProcessRunner {
    /// Runs `arguments[0]` (looked up in `PATH`) with the rest as its arguments, standard input from /dev/null.
    /// Cancelling the calling task kills the process group like a timeout does. `separateErrors` keeps standard
    /// error out of `output` (for output that is parsed).
    public static func run(
        _ arguments: [String], timeout: Double? = nil, outputLimit: Int = 64 << 10, separateErrors: Bool = false
    ) async throws(SpecialistError) -> ProcessOutcome {
        let cancelled = CancellationFlag()
        let result: Result<ProcessOutcome, SpecialistError> = await withTaskCancellationHandler {
            await withCheckedContinuation { continuation in
                DispatchQueue.global().async {
                    continuation.resume(
                        returning: runBlocking(
                            arguments, timeout: timeout, outputLimit: outputLimit, separateErrors: separateErrors,
                            cancelled: cancelled))
                }
            }
        } onCancel: {
            cancelled.raised.store(true, ordering: .relaxed)
        }
        return try result.get()
    }

    /// Set when the task waiting for the process is cancelled; the wait loop checks it.
    private final class CancellationFlag: Sendable {
        let raised = Atomic<Bool>(false)
    }

    /// Spawn attributes that give the child an empty signal mask and the default actions for SIGINT, SIGTERM and
    /// SIGPIPE. Both would otherwise be inherited: Dispatch threads block most signals, and the server ignores
    /// SIGPIPE (the supervisor also SIGINT and SIGTERM), which would leave a child deaf to a polite stop. The caller
    /// destroys the attributes.
    static func freshSignalAttributes(extraFlags: Int32 = 0) -> posix_spawnattr_t {
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        var empty = sigset_t()
        sigemptyset(&empty)
        posix_spawnattr_setsigmask(&attributes, &empty)
        var defaults = sigset_t()
        sigemptyset(&defaults)
        for number in [SIGINT, SIGTERM, SIGPIPE] { sigaddset(&defaults, number) }
        posix_spawnattr_setsigdefault(&attributes, &defaults)
        posix_spawnattr_setflags(
            &attributes, Int16(Int32(POSIX_SPAWN_SETSIGMASK) | Int32(POSIX_SPAWN_SETSIGDEF) | extraFlags))
        return attributes
    }

    /// Single-quotes `text` for `/bin/sh`.
    public static func shellQuoted(_ text: String) -> String {
        "'" + text.split(separator: "'", omittingEmptySubsequences: false).joined(separator: "'\\''") + "'"
    }

    private static func runBlocking(
        _ arguments: [String], timeout: Double?, outputLimit: Int, separateErrors: Bool, cancelled: CancellationFlag
    ) -> Result<ProcessOutcome, SpecialistError> {
        guard let program = arguments.first else {
            return .failure(.toolFailed(tool: "process", reason: "no program to run"))
        }
        // One pipe for standard output, and one for standard error when it is kept apart.
        var pipes: [[Int32]] = []
        for _ in 0..<(separateErrors ? 2 : 1) {
            var fds: [Int32] = [0, 0]
            guard pipe(&fds) == 0 else {
                pipes.flatMap { $0 }.forEach { close($0) }
                return .failure(.toolFailed(tool: program, reason: "pipe failed"))
            }
            pipes.append(fds)
        }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_adddup2(&actions, pipes[0][1], 1)
        posix_spawn_file_actions_adddup2(&actions, pipes[separateErrors ? 1 : 0][1], 2)
        for fd in pipes.flatMap({ $0 }) { posix_spawn_file_actions_addclose(&actions, fd) }
        // Its own process group, so a timeout can kill everything it started.
        var attributes = freshSignalAttributes(extraFlags: Int32(POSIX_SPAWN_SETPGROUP))
        defer { posix_spawnattr_destroy(&attributes) }
        posix_spawnattr_setpgroup(&attributes, 0)

        let start = ContinuousClock.now
        var pid: pid_t = 0
        let argv = arguments.map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
        let spawned = posix_spawnp(&pid, program, &actions, &attributes, argv, environ)
        pipes.forEach { close($0[1]) }
        var open = pipes.map { $0[0] }
        defer { open.forEach { close($0) } }
        guard spawned == 0 else {
            return .failure(
                .toolFailed(tool: program, reason: "could not start it: \(String(cString: strerror(spawned)))"))
        }

        var captured: [[UInt8]] = pipes.map { _ in [] }
        var timedOut = false
        var truncated = false
        var buffer = [UInt8](repeating: 0, count: 64 << 10)
        let deadline = timeout.map { start + .milliseconds(Int64($0 * 1000)) }
        while !open.isEmpty {
            var descriptors = open.map { pollfd(fd: $0, events: Int16(POLLIN), revents: 0) }
            if poll(&descriptors, nfds_t(descriptors.count), 100) > 0 {
                for descriptor in descriptors where descriptor.revents != 0 {
                    let stream = pipes.firstIndex { $0[0] == descriptor.fd }!
                    let count = buffer.withUnsafeMutableBytes { read(descriptor.fd, $0.baseAddress, $0.count) }
                    if count > 0 {
                        captured[stream].append(contentsOf: buffer[0..<count])
                        if captured[stream].count > 2 * outputLimit {
                            captured[stream].removeFirst(captured[stream].count - outputLimit)
                            truncated = truncated || stream == 0
                        }
                    } else if count == 0 || (errno != EINTR && errno != EAGAIN) {
                        close(descriptor.fd)
                        open.removeAll { $0 == descriptor.fd }
                    }
                }
            }
            if cancelled.raised.load(ordering: .relaxed) || deadline.map({ ContinuousClock.now >= $0 }) == true {
                timedOut = true
                kill(-pid, SIGKILL)
                break
            }
        }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        for stream in captured.indices where captured[stream].count > outputLimit {
            captured[stream].removeFirst(captured[stream].count - outputLimit)
            truncated = truncated || stream == 0
        }
        let exit = status & 0x7f == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
        let elapsed = ContinuousClock.now - start
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) * 1e-18
        return .success(
            ProcessOutcome(
                status: exit, output: String(decoding: captured[0], as: UTF8.self),
                errors: separateErrors ? String(decoding: captured[1], as: UTF8.self) : "", timedOut: timedOut,
                truncated: truncated, seconds: seconds))
    }
}
