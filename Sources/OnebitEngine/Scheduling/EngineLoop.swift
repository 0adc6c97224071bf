/// The scheduler's engine thread: admits requests, builds and runs steps, samples and reports tokens.
///
/// Lives on that thread alone; only ``SharedState`` is touched from elsewhere.
final class EngineLoop {
    private let runner: any BatchRunner
    private let endOfSequence: Set<Int>
    private let configuration: SchedulerConfiguration
    private let shared: SharedState
    private var waiting: [Job] = []
    private var running: [SequenceState] = []
    private var totals = SchedulerStatistics()
    /// Work that needs the model between steps (``Scheduler/withExclusiveModel(_:)``).
    private let exclusive: ExclusiveAccess

    init(
        runner: any BatchRunner, endOfSequence: Set<Int>, configuration: SchedulerConfiguration, shared: SharedState,
        exclusive: ExclusiveAccess
    ) {
        self.exclusive = exclusive
        self.runner = runner
        self.endOfSequence = endOfSequence
        self.configuration = configuration
        self.shared = shared
        // The pool's size is known before the first request arrives.
        publish()
    }

    func run() {
        while !shared.stopping.load(ordering: .relaxed) {
            waiting += shared.inbox.withLock { inbox in
                defer { inbox.jobs.removeAll() }
                return inbox.jobs
            }
            exclusive.runPending()
            dropCancelled()
            admit()
            if running.isEmpty {
                publish()
                shared.bell.wait()
                continue
            }
            step()
            publish()
        }
        let left = running.map(\.job) + waiting + shared.inbox.withLock { $0.jobs }
        for job in left {
            job.continuation.yield(.failed(SchedulerError.shutDown.description))
            job.continuation.finish()
        }
        exclusive.refusePending()
    }

    /// Ends cancelled sequences and forgets cancelled waiting requests, giving their caches back at once.
    private func dropCancelled() {
        let before = waiting.count
        waiting.removeAll { $0.cancelled.load(ordering: .relaxed) }
        if waiting.count != before {
            let dropped = before - waiting.count
            shared.inbox.withLock { $0.queued -= dropped }
        }
        for sequence in running where sequence.job.cancelled.load(ordering: .relaxed) {
            finish(sequence, .cancelled)
        }
        running.removeAll(where: \.isFinished)
    }

    /// Starts waiting requests in arrival order while sequences and KV blocks last. Each running sequence that may
    /// still grow keeps a block of headroom, so a new prompt does not take the blocks the running ones need next.
    private func admit() {
        var admitted = 0
        while running.count < configuration.maxConcurrency, let job = waiting.first {
            guard let (id, reused) = runner.admit(job.request.prompt) else { break }
            waiting.removeFirst()
            let sequence = SequenceState(job: job, sequence: id, endOfSequence: endOfSequence)
            sequence.cached = reused
            totals.reusedPromptTokens += reused
            running.append(sequence)
            admitted += 1
        }
        if admitted > 0 { shared.inbox.withLock { $0.queued -= admitted } }
    }

    /// One forward step: a token for every generating sequence first (they wait on it), then prompt chunks in
    /// arrival order with what is left of the step's token budget. Several steps at once where every running
    /// sequence decodes with tokens chosen where the model runs (``queuedStepCount()``).
    private func step() {
        if let count = queuedStepCount() {
            stepAhead(count)
            return
        }
        var budget = runner.stepTokens
        var slices: [SliceRequest] = []
        var owners: [SequenceState] = []
        for sequence in running {
            guard let token = sequence.pendingToken else { continue }
            // A sequence the pool has no block left for ends as if its context were full.
            guard runner.reserve(sequence.sequence, positions: sequence.cached + 1) else {
                finish(sequence, .length)
                continue
            }
            slices.append(
                SliceRequest(
                    sequence: sequence.sequence, tokens: [token], start: sequence.cached, wantsLogits: true,
                    greedy: sequence.needsOnlyArgmax, draw: sequence.nextRowDraw()))
            owners.append(sequence)
            budget -= 1
        }
        for sequence in running where sequence.pendingToken == nil && budget > 0 {
            let prompt = sequence.job.request.prompt
            let end = min(prompt.count, sequence.cached + budget)
            slices.append(
                SliceRequest(
                    sequence: sequence.sequence, tokens: Array(prompt[sequence.cached..<end]), start: sequence.cached,
                    wantsLogits: end == prompt.count, greedy: sequence.needsOnlyArgmax,
                    draw: end == prompt.count ? sequence.nextRowDraw() : nil))
            owners.append(sequence)
            totals.promptTokens += end - sequence.cached
            budget -= end - sequence.cached
        }
        guard !slices.isEmpty else {
            running.removeAll(where: \.isFinished)
            return
        }
        let results = runner.run(slices)
        totals.steps += 1
        totals.lastStepTokens = runner.stepTokens - budget
        totals.lastStepSequences = slices.count
        for (index, sequence) in owners.enumerated() {
            sequence.cached += slices[index].tokens.count
            sequence.pendingToken = nil
            switch results[index] {
            case .logits(let logits): advance(sequence, logits: logits)
            case .token(let token): emit(token, for: sequence, processed: nil)
            case nil: break
            }
        }
        running.removeAll(where: \.isFinished)
    }

    /// How many decoding steps to run at once, where more than one: every running sequence decodes and its tokens
    /// can be chosen where the model runs (``SequenceState/choosesOnDevice``), and it has room for them all (within its
    /// token limit and context, and blocks reserved); else nil. A request that waits for a sequence to end may wait
    /// that many steps more.
    private func queuedStepCount() -> Int? {
        guard runner.stepsAhead > 1, running.allSatisfy({ $0.pendingToken != nil && $0.choosesOnDevice }) else {
            return nil
        }
        let count = stepRoom(after: 0)
        guard count > 1, running.allSatisfy({ runner.reserve($0.sequence, positions: $0.cached + count) }) else {
            return nil
        }
        return count
    }

    /// The most decoding steps every running sequence has room for once `steps` more have run: up to the runner's
    /// ``BatchRunner/stepsAhead``, within each sequence's token limit and the context.
    private func stepRoom(after steps: Int) -> Int {
        running.reduce(runner.stepsAhead) { room, sequence in
            min(
                room, sequence.job.request.maxTokens - sequence.generated.count - steps,
                configuration.contextLength - sequence.cached - steps)
        }
    }

    /// How many steps the run after a run of `count` will take if every running sequence goes on (what
    /// ``queuedStepCount()`` will then find), where that run can start while this one's tokens come back: no request
    /// waits to start, and every sequence has room for both runs and a block for the next run's first position. Else
    /// 0. A sequence that ends in this run changes the next one, whose first step then runs again.
    private func nextQueuedStepCount(after count: Int) -> Int {
        guard waiting.isEmpty else { return 0 }
        let next = stepRoom(after: count)
        guard next > 1, running.allSatisfy({ runner.reserve($0.sequence, positions: $0.cached + count + 1) }) else {
            return 0
        }
        return next
    }

    /// Runs `count` decoding steps of every running sequence at once and reports their tokens in order; a sequence
    /// that ends on the way drops the tokens after its end. A sequence that draws takes its random numbers from its
    /// sampler up front in step order, so it draws the tokens it would one step at a time; the draw of a next run's
    /// first step, queued ahead, waits in the sequence for whatever step comes next.
    private func stepAhead(_ count: Int) {
        let next = nextQueuedStepCount(after: count)
        let slices = running.map {
            SliceRequest(
                sequence: $0.sequence, tokens: [$0.pendingToken!], start: $0.cached, wantsLogits: true, greedy: true)
        }
        // A step whose draws all take the argmax (temperature 0) runs the argmax alone.
        let perSequence = running.map { $0.nextRowDraws(count) }
        let draws = (0..<count).map { step in perSequence.map { $0[step] } }
        let nextDraws = next == 0 ? [] : running.map { $0.keepNextRowDraw() }
        let steps = runner.runSteps(slices, count: count, draws: draws, queueingNext: next, drawing: nextDraws)
        totals.steps += count
        totals.queuedSteps += count
        totals.lastStepTokens = slices.count
        totals.lastStepSequences = slices.count
        for tokens in steps {
            for (sequence, token) in zip(running, tokens) where !sequence.isFinished {
                sequence.cached += 1
                sequence.pendingToken = nil
                emit(token, for: sequence, processed: nil)
            }
        }
        running.removeAll(where: \.isFinished)
    }

    /// Samples the next token of `sequence`, reports it, and ends the sequence when it is done.
    private func advance(_ sequence: SequenceState, logits: [Float]) {
        var processed = sequence.process(logits)
        if let constraint = sequence.constraint {
            let mask = constraint.allowedTokens()
            guard mask.contains(where: { $0 != 0 }) else {
                fail(sequence, "the output constraint allows no token here; this is a bug in the grammar engine")
                return
            }
            ConstraintState.apply(mask, to: &processed)
        }
        emit(sequence.sampler.sample(processed, history: sequence.history), for: sequence, processed: processed)
    }

    /// Reports `token` as the next of `sequence` (with its log-probabilities from `processed` when the request asks
    /// for them), and ends the sequence when it is done.
    private func emit(_ token: Int, for sequence: SequenceState, processed: [Float]?) {
        let request = sequence.job.request
        if endOfSequence.contains(token) {
            finish(sequence, .stop)
            return
        }
        sequence.constraint?.accept(token)
        sequence.record(token)
        totals.generatedTokens += 1
        var event = GeneratedToken(id: token)
        if let top = request.topLogprobs, let processed {
            let (chosen, alternatives) = Logprobs.of(token, in: processed, top: top)
            event.logprob = chosen
            event.topLogprobs = alternatives
        }
        sequence.job.continuation.yield(.token(event))
        if sequence.constraint?.isComplete == true {
            finish(sequence, .stop)
        } else if sequence.generated.count >= request.maxTokens || sequence.cached + 1 > configuration.contextLength {
            finish(sequence, .length)
        } else {
            sequence.pendingToken = token
        }
    }

    private func finish(_ sequence: SequenceState, _ reason: FinishReason) {
        guard !sequence.isFinished else { return }
        sequence.isFinished = true
        let usage = GenerationUsage(
            promptTokens: sequence.job.request.prompt.count, completionTokens: sequence.generated.count)
        sequence.job.continuation.yield(.finished(reason, usage))
        sequence.job.continuation.finish()
        runner.release(sequence.sequence)
    }

    /// Ends `sequence` with a `failed` event.
    private func fail(_ sequence: SequenceState, _ message: String) {
        guard !sequence.isFinished else { return }
        sequence.isFinished = true
        sequence.job.continuation.yield(.failed(message))
        sequence.job.continuation.finish()
        runner.release(sequence.sequence)
    }

    private func publish() {
        totals.running = running.count
        totals.cachedTokens = running.reduce(0) { $0 + $1.cached }
        let blocks = runner.blockUsage
        totals.cacheCapacity = blocks.total * blocks.blockPositions
        totals.keyValueBlockPositions = blocks.blockPositions
        totals.keyValueBlocks = blocks.total
        totals.keyValueBlocksUsed = blocks.used
        totals.keyValueBlocksCached = blocks.cached
        totals.keyValueBlocksFree = blocks.free
        let snapshot = totals
        shared.statistics.withLock { $0 = snapshot }
    }
}

/// One running sequence on the engine thread.
final class SequenceState {
    let job: Job
    /// The runner's id of the sequence's KV blocks.
    let sequence: Int
    var sampler: Sampler
    /// Prompt and generated tokens, for the repetition penalty.
    var history: [Int]
    var generated: [Int] = []
    /// How many times each generated token appeared, for the presence and frequency penalties.
    var counts: [Int: Int] = [:]
    /// Positions in the cache.
    var cached = 0
    /// The last generated token, fed in the next step.
    var pendingToken: Int?
    var isFinished = false
    /// Where the output stands in the request's grammar, if it has one.
    let constraint: ConstraintState?

    init(job: Job, sequence: Int, endOfSequence: Set<Int>) {
        self.job = job
        self.sequence = sequence
        constraint = job.request.constraint.map { ConstraintState($0, endOfSequence: endOfSequence) }
        sampler = Sampler(job.request.sampling)
        history = job.request.prompt
    }

    /// Whether the next token is the argmax of the raw logits and nothing else is read from them: greedy, no
    /// penalty, bias, constraint or log-probabilities. The step then brings back only that index.
    var needsOnlyArgmax: Bool {
        readsOnlySampledToken && job.request.sampling.temperature == 0 && job.request.sampling.repetitionPenalty == 1
    }

    /// Whether nothing but the sampler reads the logits: no penalty, bias, constraint or log-probabilities.
    private var readsOnlySampledToken: Bool {
        let request = job.request
        return request.logitBias.isEmpty && request.presencePenalty == 0 && request.frequencyPenalty == 0
            && request.topLogprobs == nil && constraint == nil
    }

    /// The next draw, where the next token is drawn where the logits are (over the whole row or among the top-k) with
    /// nothing else read from them (no penalty, bias, constraint or log-probabilities), so the step brings back only
    /// the token; else nil. It takes the kept draw (``keepNextRowDraw()``), else the sampler's next random number.
    func nextRowDraw() -> RowDraw? {
        drawsOnDevice ? takeRowDraw() : nil
    }

    /// The draw a step queued ahead of its run takes: the argmax for a greedy sequence, else the next draw, which
    /// the sequence keeps for its next step, whatever that step is, so no random number is skipped or taken twice.
    func keepNextRowDraw() -> RowDraw {
        precondition(choosesOnDevice, "the tokens are chosen where the model runs")
        guard !needsOnlyArgmax else { return .argmax }
        let draw = takeRowDraw()
        keptDraw = draw
        return draw
    }

    /// The draw ``keepNextRowDraw()`` kept, for the step after the run that queued it.
    private var keptDraw: RowDraw?

    /// The kept draw, else the sampler's next.
    private func takeRowDraw() -> RowDraw {
        defer { keptDraw = nil }
        return keptDraw ?? sampler.nextRowDraw()
    }

    /// Whether each next token is chosen from the raw logits by the argmax or by a draw where the logits are
    /// (``Sampler/drawsWhereTheLogitsAre``), with nothing else read from them: the model can then choose it where it
    /// runs and feed it to the next step.
    var choosesOnDevice: Bool { needsOnlyArgmax || drawsOnDevice }

    /// The next `count` tokens' choices for steps queued ahead: the argmax for a greedy sequence, else the sampler's
    /// next `count` draws (``choosesOnDevice`` must hold).
    func nextRowDraws(_ count: Int) -> [RowDraw] {
        precondition(choosesOnDevice, "the tokens are chosen where the model runs")
        return (0..<count).map { _ in needsOnlyArgmax ? .argmax : takeRowDraw() }
    }

    /// Whether the next token is drawn where the logits are and nothing else reads them.
    private var drawsOnDevice: Bool { readsOnlySampledToken && sampler.drawsWhereTheLogitsAre }

    /// The logits after the logit bias and the presence and frequency penalties.
    func process(_ logits: [Float]) -> [Float] {
        let request = job.request
        var logits = logits
        for (token, bias) in request.logitBias where token >= 0 && token < logits.count { logits[token] += bias }
        if request.presencePenalty != 0 || request.frequencyPenalty != 0 {
            for (token, count) in counts {
                logits[token] -= request.presencePenalty + request.frequencyPenalty * Float(count)
            }
        }
        return logits
    }

    func record(_ token: Int) {
        generated.append(token)
        history.append(token)
        counts[token, default: 0] += 1
    }
}
