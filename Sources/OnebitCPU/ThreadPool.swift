import CKernels
import Synchronization

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// A fixed set of threads that share one parallel loop at a time; the calling thread takes part.
///
/// Threads are created once: a decode step issues a few hundred loops of tens of microseconds each, so spawning per
/// call would cost more than the work. A loop is cut into a few chunks per thread that every running thread claims
/// until none are left, so all threads finish together, and a thread the OS has descheduled (other processes on
/// the same cores) delays the loop by at most the chunk it holds instead of its whole share. Idle workers spin
/// briefly (the next loop usually follows within microseconds), then sleep on a condition variable so an idle
/// model costs no CPU.
public final class ThreadPool: @unchecked Sendable {
    /// Threads that share each loop, the caller included.
    public let threadCount: Int

    // The current loop's generation (high 32 bits) and its chunks not yet claimed (low 32 bits). A claim is a
    // compare-and-swap on both, so a worker that wakes late can never claim a chunk of a newer loop by mistake.
    private let ticket = Atomic<UInt64>(0)
    // Chunks of the current loop that have finished.
    private let finished = Atomic<Int>(0)
    // The current loop, written before `ticket` publishes it (release), read only by a thread holding a claim.
    private var body: ((Range<Int>) -> Void)?
    private var chunkCount = 0
    private var itemCount = 0
    private var granularity = 1
    private var stopping = false
    private let lock: UnsafeMutablePointer<pthread_mutex_t>
    private let wake: UnsafeMutablePointer<pthread_cond_t>
    private var threads: [pthread_t] = []

    /// How many pause instructions a worker spins through before it sleeps (some tens of microseconds).
    private static let spinLimit = 2_000
    /// Chunks per thread: enough that a descheduled thread holds back little, few enough to keep claims cheap.
    static let chunksPerThread = 4

    /// Starts `threadCount - 1` worker threads.
    public init(threadCount: Int) {
        precondition(threadCount >= 1, "a pool needs at least one thread")
        self.threadCount = threadCount
        lock = .allocate(capacity: 1)
        wake = .allocate(capacity: 1)
        pthread_mutex_init(lock, nil)
        pthread_cond_init(wake, nil)
        for _ in 1..<threadCount {
            let context = Unmanaged.passRetained(WorkerContext(pool: self)).toOpaque()
            var thread = pthread_t()
            let status = pthread_create(
                &thread, nil,
                { raw in
                    Unmanaged<WorkerContext>.fromOpaque(raw!).takeRetainedValue().pool.workerLoop()
                    return nil
                }, context)
            precondition(status == 0, "pthread_create failed with \(status)")
            threads.append(thread)
        }
    }

    deinit {
        pthread_mutex_lock(lock)
        stopping = true
        publish(chunks: 0)
        pthread_cond_broadcast(wake)
        pthread_mutex_unlock(lock)
        for thread in threads { pthread_join(thread, nil) }
        pthread_cond_destroy(wake)
        pthread_mutex_destroy(lock)
        lock.deallocate()
        wake.deallocate()
    }

    /// Runs `body` over contiguous ranges that together cover `0 ..< count` once, on all threads, and returns when
    /// every range is done. Each range starts at a multiple of `granularity`.
    public func parallelFor(_ count: Int, granularity: Int = 1, _ body: (Range<Int>) -> Void) {
        let units = (count + granularity - 1) / granularity
        let chunks = min(units, threadCount * Self.chunksPerThread)
        guard chunks > 1 else {
            if count > 0 { body(0..<count) }
            return
        }
        withoutActuallyEscaping(body) { body in
            self.body = body
            chunkCount = chunks
            itemCount = count
            self.granularity = granularity
            finished.store(0, ordering: .relaxed)
            pthread_mutex_lock(lock)
            let generation = publish(chunks: chunks)
            pthread_cond_broadcast(wake)
            pthread_mutex_unlock(lock)
            work(generation: generation)
            var spins = 0
            while finished.load(ordering: .acquiring) != chunks {
                // A worker holding a chunk may have lost its core; after a while, offer it this one.
                spins += 1
                if spins % 1024 == 0 { sched_yield() } else { ob_cpu_relax() }
            }
            self.body = nil
        }
    }

    /// Starts a new generation with `chunks` unclaimed chunks and returns the generation.
    @discardableResult
    private func publish(chunks: Int) -> UInt64 {
        let generation = (ticket.load(ordering: .relaxed) >> 32) &+ 1
        ticket.store(generation << 32 | UInt64(chunks), ordering: .releasing)
        return generation
    }

    /// Claims and runs chunks of `generation` until none are left.
    private func work(generation: UInt64) {
        var current = ticket.load(ordering: .acquiring)
        while current >> 32 == generation && current & 0xFFFF_FFFF > 0 {
            let (exchanged, original) = ticket.compareExchange(
                expected: current, desired: current - 1, ordering: .acquiringAndReleasing)
            guard exchanged else {
                current = original
                continue
            }
            let chunk = chunkCount - Int(current & 0xFFFF_FFFF)
            let units = (itemCount + granularity - 1) / granularity
            let begin = units * chunk / chunkCount * granularity
            let end = min(units * (chunk + 1) / chunkCount * granularity, itemCount)
            if begin < end { body?(begin..<end) }
            finished.add(1, ordering: .releasing)
            current = ticket.load(ordering: .acquiring)
        }
    }

    private func workerLoop() {
        var seen: UInt64 = 0
        while true {
            var generation = ticket.load(ordering: .acquiring) >> 32
            var spins = 0
            while generation == seen && spins < Self.spinLimit {
                ob_cpu_relax()
                spins += 1
                generation = ticket.load(ordering: .acquiring) >> 32
            }
            if generation == seen {
                pthread_mutex_lock(lock)
                while ticket.load(ordering: .acquiring) >> 32 == seen { pthread_cond_wait(wake, lock) }
                pthread_mutex_unlock(lock)
                generation = ticket.load(ordering: .acquiring) >> 32
            }
            seen = generation
            if stopping { return }
            work(generation: generation)
        }
    }

    /// Physical cores this process may use (hyper-threads share one core's vector units, so they add little).
    public static var physicalCoreCount: Int { Int(ob_physical_core_count()) }
}

/// What a worker thread needs to find its pool; passed through `pthread_create`'s context pointer.
private final class WorkerContext {
    // Unowned: the pool joins its workers in deinit, so it outlives them; a strong reference would keep it alive.
    unowned(unsafe) let pool: ThreadPool

    init(pool: ThreadPool) { self.pool = pool }
}
