import Dispatch
import Synchronization

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Limits of a ``Scheduler``.
public struct SchedulerConfiguration: Sendable, Equatable {
    /// Most sequences generating at once.
    public var maxConcurrency: Int
    /// Most positions of one sequence: prompt plus generated tokens.
    public var contextLength: Int
    /// Most requests waiting for a free sequence; more are refused with ``SchedulerError/overloaded(queued:)``.
    public var maxQueued: Int
    /// Blocks of the KV pool all sequences share; `nil` sizes it so every sequence can fill its context
    /// (`maxConcurrency` times the blocks of `contextLength` positions). Memory is committed as blocks are used.
    public var keyValueBlocks: Int?
    /// Most decoding steps queued before their tokens come back while every running sequence's tokens are chosen
    /// where the model runs (greedily, or drawn at a temperature with min-p, top-k and top-p), each step's tokens fed
    /// to the next there. Tokens then stream in bursts of up to this many; 1 reads every step's tokens before the
    /// next step. `nil` takes the model's ``LanguageModel/stepsAhead`` (8 on the GPU, 1 on the CPU).
    public var stepsAhead: Int?

    /// Describes the limits.
    public init(
        maxConcurrency: Int = 4, contextLength: Int, maxQueued: Int = 64, keyValueBlocks: Int? = nil,
        stepsAhead: Int? = nil
    ) {
        self.maxConcurrency = maxConcurrency
        self.contextLength = contextLength
        self.maxQueued = maxQueued
        self.keyValueBlocks = keyValueBlocks
        self.stepsAhead = stepsAhead
    }
}

/// What the scheduler is doing, for metrics and the web page.
public struct SchedulerStatistics: Sendable, Equatable {
    /// Requests submitted and not yet running.
    public var queued = 0
    /// Sequences running (prefilling or generating).
    public var running = 0
    /// Cache positions the running sequences hold.
    public var cachedTokens = 0
    /// Cache positions the KV pool holds (its blocks times the positions per block).
    public var cacheCapacity = 0
    /// Positions per KV block.
    public var keyValueBlockPositions = 0
    /// Blocks in the KV pool.
    public var keyValueBlocks = 0
    /// KV blocks running sequences hold (a block shared by several counts once).
    public var keyValueBlocksUsed = 0
    /// KV blocks nobody holds that keep a finished sequence's keys and values for a later prompt (evicted, least
    /// recently used first, when the pool needs them).
    public var keyValueBlocksCached = 0
    /// KV blocks holding nothing.
    public var keyValueBlocksFree = 0
    /// Tokens of the last step (prompt chunks plus one per generating sequence).
    public var lastStepTokens = 0
    /// Sequences of the last step.
    public var lastStepSequences = 0
    /// Prompt tokens run since start.
    public var promptTokens = 0
    /// Prompt tokens whose keys and values were found in KV blocks of an earlier or running request, and not run
    /// again.
    public var reusedPromptTokens = 0
    /// Tokens generated since start.
    public var generatedTokens = 0
    /// Steps run since start.
    public var steps = 0
    /// Steps among ``steps`` that were queued behind one another, their tokens read back together
    /// (``SchedulerConfiguration/stepsAhead``).
    public var queuedSteps = 0

    /// All zero.
    public init() {}
}

/// Continuous batching on a dedicated thread.
///
/// Every step mixes chunks of prompts that are still being read with one token for every generating sequence, up
/// to the transformer's chunk size, so several sequences share each pass over the weights. Requests come in
/// through ``submit(_:)`` from any thread; events go out through `AsyncStream`s whose `yield` never blocks the
/// engine. Keys and values live in one pool of fixed-size blocks: a sequence takes blocks for its prompt when it
/// starts and one more whenever it grows past its last; a prompt whose leading blocks hold the same tokens as
/// blocks of a running or earlier sequence shares them. A sequence that ends, or whose stream is dropped, releases
/// its blocks before the next step. When the pool is short, requests wait in the queue, and a generating sequence
/// that finds no block ends with ``FinishReason/length``.
public final class Scheduler: Sendable {
    /// The limits it was started with.
    public let configuration: SchedulerConfiguration
    /// Tokens the model knows; prompt ids must be below this.
    public let vocabularySize: Int
    /// Positions the KV pool holds; a longer prompt could never start.
    private let poolPositions: Int
    private let shared: SharedState

    /// Starts the engine thread over `model`, which the scheduler owns from now on.
    public init(model: sending LanguageModel, configuration: SchedulerConfiguration) {
        var configuration = configuration
        configuration.maxConcurrency = max(1, min(configuration.maxConcurrency, model.chunkSize))
        self.configuration = configuration
        vocabularySize = model.model.config.vocabSize
        shared = SharedState()
        let concurrency = configuration.maxConcurrency
        let context = configuration.contextLength
        let blocks = configuration.keyValueBlocks
        let runner = model.makeBatchRunner(contextLength: context, stepsAhead: configuration.stepsAhead) {
            blockPositions in
            max(1, blocks ?? concurrency * ((context + blockPositions - 1) / blockPositions))
        }
        let usage = runner.blockUsage
        poolPositions = usage.total * usage.blockPositions
        let endOfSequence = model.model.endOfSequenceTokenIDs
        let loop = EngineLoop(
            runner: runner, endOfSequence: endOfSequence, configuration: configuration, shared: shared,
            exclusive: ExclusiveAccess(model: model, shared: shared))
        var thread = pthread_t()
        let started = pthread_create(
            &thread, nil,
            { context in
                let loop = Unmanaged<EngineLoop>.fromOpaque(context!).takeRetainedValue()
                loop.run()
                return nil
            }, Unmanaged.passRetained(loop).toOpaque())
        precondition(started == 0, "could not start the engine thread (error \(started))")
        pthread_detach(thread)
    }

    deinit { shutdown() }

    /// Queues `request`; its events arrive on the returned stream. Cancelling the consuming task or calling
    /// ``GenerationStream/cancel()`` ends the generation and releases its KV blocks before the next step.
    public func submit(_ request: GenerationRequest) throws(SchedulerError) -> GenerationStream {
        guard !request.prompt.isEmpty else { throw .emptyPrompt }
        guard request.prompt.count < min(configuration.contextLength, poolPositions) else {
            throw .promptTooLong(
                promptTokens: request.prompt.count, contextLength: min(configuration.contextLength, poolPositions))
        }
        if let bad = request.prompt.first(where: { $0 < 0 || $0 >= vocabularySize }) {
            throw .invalidToken(id: bad, vocabularySize: vocabularySize)
        }
        let (stream, continuation) = AsyncStream.makeStream(of: GenerationEvent.self, bufferingPolicy: .unbounded)
        let job = Job(request: request, continuation: continuation)
        continuation.onTermination = { _ in job.cancelled.store(true, ordering: .relaxed) }
        let refusal: SchedulerError? = shared.inbox.withLock { inbox in
            if shared.stopping.load(ordering: .relaxed) { return .shutDown }
            guard inbox.queued < configuration.maxQueued else { return .overloaded(queued: inbox.queued) }
            inbox.jobs.append(job)
            inbox.queued += 1
            return nil
        }
        if let refusal {
            continuation.onTermination = nil
            continuation.finish()
            throw refusal
        }
        shared.bell.signal()
        return GenerationStream(events: stream, continuation: continuation)
    }

    /// Runs `body` with the model on the engine thread, between two steps, and returns its result.
    ///
    /// For work that needs the model itself rather than a generation slot, such as teacher-forced scoring and
    /// perplexity (``LanguageModel/score(_:)``, ``LanguageModel/perplexity(_:prefix:context:stride:progress:)``):
    /// the model belongs to the engine thread, so nothing else may touch it. Generation pauses while `body` runs, so
    /// keep it to one bounded pass (a context's worth of tokens). `body` must not keep the model beyond its return.
    /// Throws ``SchedulerError/shutDown`` once the scheduler stops, and otherwise what `body` throws.
    public func withExclusiveModel<T: Sendable>(
        _ body: @escaping @Sendable (LanguageModel) throws -> T
    ) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            let task = ExclusiveTask(
                run: { model in continuation.resume(with: Result { try body(model) }) },
                refuse: { continuation.resume(throwing: $0) })
            let accepted = shared.inbox.withLock { inbox in
                guard !shared.stopping.load(ordering: .relaxed) else { return false }
                inbox.exclusive.append(task)
                return true
            }
            if accepted {
                shared.bell.signal()
            } else {
                task.refuse(.shutDown)
            }
        }
    }

    /// A snapshot of the current load.
    public var statistics: SchedulerStatistics {
        var stats = shared.statistics.withLock { $0 }
        stats.queued = shared.inbox.withLock { $0.queued }
        return stats
    }

    /// Stops the engine thread; running and queued requests end with a `failed` event.
    public func shutdown() {
        shared.stopping.store(true, ordering: .relaxed)
        shared.bell.signal()
    }
}

/// The events of one submitted request.
public struct GenerationStream: AsyncSequence, Sendable {
    /// Events in order; the last is `finished` or `failed`.
    public let events: AsyncStream<GenerationEvent>
    private let continuation: AsyncStream<GenerationEvent>.Continuation

    init(events: AsyncStream<GenerationEvent>, continuation: AsyncStream<GenerationEvent>.Continuation) {
        self.events = events
        self.continuation = continuation
    }

    /// Iterates the events.
    public func makeAsyncIterator() -> AsyncStream<GenerationEvent>.Iterator { events.makeAsyncIterator() }

    /// Stops the generation: the stream ends, and the engine drops the sequence and frees its cache before its
    /// next step. The engine holds the stream's continuation, so merely dropping the stream would not do this.
    public func cancel() { continuation.finish() }
}

/// A submitted request and the stream its events go to.
final class Job: Sendable {
    let request: GenerationRequest
    let continuation: AsyncStream<GenerationEvent>.Continuation
    /// Set when the consumer drops the stream; the engine checks it before every step.
    let cancelled = Atomic<Bool>(false)

    init(request: GenerationRequest, continuation: AsyncStream<GenerationEvent>.Continuation) {
        self.request = request
        self.continuation = continuation
    }
}

/// State the request threads and the engine thread share.
final class SharedState: Sendable {
    struct Inbox {
        var jobs: [Job] = []
        /// Submitted and not yet running, whether still here or already in the engine's wait list.
        var queued = 0
        /// Bodies waiting for ``Scheduler/withExclusiveModel(_:)``.
        var exclusive: [ExclusiveTask] = []
    }

    let inbox = Mutex(Inbox())
    let statistics = Mutex(SchedulerStatistics())
    let stopping = Atomic<Bool>(false)
    /// Signalled on every submission and on shutdown; the idle engine sleeps on it.
    let bell = DispatchSemaphore(value: 0)
}

/// A body waiting to run with the model, and how to tell its caller it never will.
struct ExclusiveTask: Sendable {
    let run: @Sendable (LanguageModel) -> Void
    let refuse: @Sendable (SchedulerError) -> Void
}

/// The engine thread's side of ``Scheduler/withExclusiveModel(_:)``: it owns the model there and runs the waiting
/// bodies when the loop asks, which is only ever between two steps.
final class ExclusiveAccess {
    private let model: LanguageModel
    private let shared: SharedState

    init(model: LanguageModel, shared: SharedState) {
        self.model = model
        self.shared = shared
    }

    /// Runs every body submitted so far, in order.
    func runPending() {
        for task in take() { task.run(model) }
    }

    /// Answers every body still waiting with ``SchedulerError/shutDown``.
    func refusePending() {
        for task in take() { task.refuse(.shutDown) }
    }

    private func take() -> [ExclusiveTask] {
        shared.inbox.withLock { inbox in
            defer { inbox.exclusive.removeAll() }
            return inbox.exclusive
        }
    }
}
