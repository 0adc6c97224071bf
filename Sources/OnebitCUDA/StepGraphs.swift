import CCUDA

/// The decoding steps ``CUDABackend/step(tokens:positions:segments:_:)`` has recorded as CUDA graphs, by the input
/// addresses each bakes in (one per number of sequences, as long as no buffer grows), and when each was last
/// launched. A step of a new shape runs eagerly once, since its first run allocates scratch, which a capture must
/// not; its second run is recorded. Past ``limit`` graphs, the one launched longest ago makes room.
final class StepGraphs {
    private let context: CUDAContext
    /// Most graphs kept.
    let limit: Int
    private var graphs: [[UInt64]: (exec: CUgraphExec, lastUse: Int)] = [:]
    /// Steps asked for so far, the clock of `lastUse`.
    private var clock = 0
    /// Shapes whose step ran once eagerly.
    private var warmed: Set<[UInt64]> = []

    init(_ context: CUDAContext, limit: Int) {
        self.context = context
        self.limit = limit
    }

    deinit {
        dropAll()
    }

    /// Launches the graph recorded for `key` and returns true, or returns false where none is.
    func launch(_ key: [UInt64]) -> Bool {
        clock += 1
        guard let recorded = graphs[key] else { return false }
        graphs[key]!.lastUse = clock
        context.must(context.driver.cuGraphLaunch!(recorded.exec, context.stream), "cuGraphLaunch")
        return true
    }

    /// Whether no step of `key` has run since the graphs were dropped or its own made room: that step runs eagerly.
    func isFirstRun(of key: [UInt64]) -> Bool {
        warmed.insert(key).inserted
    }

    /// Records what `body` queues on the stream as the graph of `key`, then launches it.
    func record(_ key: [UInt64], _ body: () -> Void) {
        if graphs.count >= limit, let oldest = graphs.min(by: { $0.value.lastUse < $1.value.lastUse }) {
            // A graph still running is freed when it ends.
            _ = context.driver.cuGraphExecDestroy!(oldest.value.exec)
            graphs[oldest.key] = nil
            warmed.remove(oldest.key)
        }
        context.must(
            context.driver.cuStreamBeginCapture!(context.stream, Int32(OB_CU_STREAM_CAPTURE_MODE_THREAD_LOCAL)),
            "cuStreamBeginCapture")
        body()
        var graph: CUgraph?
        context.must(context.driver.cuStreamEndCapture!(context.stream, &graph), "cuStreamEndCapture")
        var exec: CUgraphExec?
        context.must(context.driver.cuGraphInstantiate!(&exec, graph, 0), "cuGraphInstantiate")
        _ = context.driver.cuGraphDestroy!(graph)
        graphs[key] = (exec!, clock)
        context.must(context.driver.cuGraphLaunch!(exec, context.stream), "cuGraphLaunch")
    }

    /// Forgets every graph: the next steps of each shape run eagerly once and are recorded again.
    func dropAll() {
        for recorded in graphs.values { _ = context.driver.cuGraphExecDestroy!(recorded.exec) }
        graphs = [:]
        warmed = []
    }
}
