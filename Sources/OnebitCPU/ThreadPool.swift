import CKernels
import Synchronization

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// A fixed set of threads that run one parallel job at a time; the calling thread is worker 0.
///
/// Threads are created once: a decode step issues a few hundred jobs of tens of microseconds each, so spawning per
/// call would cost more than the work. Idle workers spin briefly (the next job usually follows within
/// microseconds), then sleep on a condition variable so an idle model costs no CPU.
public final class ThreadPool: @unchecked Sendable {
    /// Threads that run each job, the caller included.
    public let threadCount: Int

    // Bumped once per job; workers run the job when they see a new value.
    private let generation = Atomic<Int>(0)
    // Workers still running the current job.
    private let pending = Atomic<Int>(0)
    // The current job, written before `generation` is bumped (release) and read after it is seen (acquire).
    private var job: ((Int) -> Void)?
    private var stopping = false
    private let lock: UnsafeMutablePointer<pthread_mutex_t>
    private let wake: UnsafeMutablePointer<pthread_cond_t>
    private var threads: [pthread_t] = []

    /// How many pause instructions a worker spins through before it sleeps (some tens of microseconds).
    private static let spinLimit = 20_000

    /// Starts `threadCount - 1` worker threads.
    public init(threadCount: Int) {
        precondition(threadCount >= 1, "a pool needs at least one thread")
        self.threadCount = threadCount
        lock = .allocate(capacity: 1)
        wake = .allocate(capacity: 1)
        pthread_mutex_init(lock, nil)
        pthread_cond_init(wake, nil)
        for index in 1..<threadCount {
            let context = Unmanaged.passRetained(WorkerContext(pool: self, index: index)).toOpaque()
            var thread = pthread_t()
            let status = pthread_create(
                &thread, nil,
                { raw in
                    let context = Unmanaged<WorkerContext>.fromOpaque(raw!).takeRetainedValue()
                    context.pool.workerLoop(index: context.index)
                    return nil
                }, context)
            precondition(status == 0, "pthread_create failed with \(status)")
            threads.append(thread)
        }
    }

    deinit {
        pthread_mutex_lock(lock)
        stopping = true
        generation.add(1, ordering: .releasing)
        pthread_cond_broadcast(wake)
        pthread_mutex_unlock(lock)
        for thread in threads { pthread_join(thread, nil) }
        pthread_cond_destroy(wake)
        pthread_mutex_destroy(lock)
        lock.deallocate()
        wake.deallocate()
    }

    /// Runs `body(worker)` on every thread, `worker` in `0 ..< threadCount`, and returns when all have finished.
    public func run(_ body: (Int) -> Void) {
        guard threadCount > 1 else { return body(0) }
        withoutActuallyEscaping(body) { body in
            job = body
            pending.store(threadCount - 1, ordering: .relaxed)
            pthread_mutex_lock(lock)
            generation.add(1, ordering: .releasing)
            pthread_cond_broadcast(wake)
            pthread_mutex_unlock(lock)
            body(0)
            while pending.load(ordering: .acquiring) != 0 { ob_cpu_relax() }
            job = nil
        }
    }

    /// Splits `0 ..< count` into one contiguous range per thread, each a multiple of `granularity` long except
    /// the last, and runs `body` on each non-empty range.
    public func parallelFor(_ count: Int, granularity: Int = 1, _ body: (Range<Int>) -> Void) {
        let units = (count + granularity - 1) / granularity
        let workers = min(threadCount, units)
        guard workers > 1 else {
            if count > 0 { body(0..<count) }
            return
        }
        run { worker in
            guard worker < workers else { return }
            let begin = units * worker / workers * granularity
            let end = min(units * (worker + 1) / workers * granularity, count)
            if begin < end { body(begin..<end) }
        }
    }

    private func workerLoop(index: Int) {
        var seen = 0
        while true {
            var current = generation.load(ordering: .acquiring)
            var spins = 0
            while current == seen && spins < Self.spinLimit {
                ob_cpu_relax()
                spins += 1
                current = generation.load(ordering: .acquiring)
            }
            if current == seen {
                pthread_mutex_lock(lock)
                while generation.load(ordering: .acquiring) == seen { pthread_cond_wait(wake, lock) }
                pthread_mutex_unlock(lock)
                current = generation.load(ordering: .acquiring)
            }
            seen = current
            if stopping { return }
            if let job { job(index) }
            pending.subtract(1, ordering: .releasing)
        }
    }

    /// Physical cores this process may use (hyper-threads share one core's vector units, so they add little).
    public static var physicalCoreCount: Int { Int(ob_physical_core_count()) }
}

/// What a worker thread needs to find its pool; passed through `pthread_create`'s context pointer.
private final class WorkerContext {
    // Unowned: the pool joins its workers in deinit, so it outlives them; a strong reference would keep it alive.
    unowned(unsafe) let pool: ThreadPool
    let index: Int

    init(pool: ThreadPool, index: Int) {
        self.pool = pool
        self.index = index
    }
}
