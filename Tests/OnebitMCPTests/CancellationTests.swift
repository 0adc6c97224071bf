import MCP
import OnebitEngine
import OnebitMCP
import OnebitModel
import Testing

/// A client's `notifications/cancelled` must stop the generation behind a call and free its sequence.
@Suite struct CancellationTests {
    @Test func cancellingACallStopsItsGeneration() async throws {
        let model = TestTools.model
        let scheduler = Scheduler(
            model: LanguageModel(model), configuration: SchedulerConfiguration(contextLength: 512))
        defer { scheduler.shutdown() }
        let registry = ToolRegistry()
        let info = ModelInfo(
            id: EmbeddedModel.id, format: "embedded", layers: model.config.layerCount,
            vocabularySize: model.config.vocabSize, contextLength: 512, device: "CPU")
        ModelTools(
            model: ServedModel(id: EmbeddedModel.id, tokenizer: model.tokenizer, chatTemplate: model.chatTemplate),
            scheduler: scheduler, info: info
        ).register(in: registry)
        let client = try await TestTools.connect(registry)

        let call = try await client.send(
            CallTool.request(.init(name: "complete", arguments: ["prompt": "Once", "max_tokens": 500, "seed": 3])))
        try await Self.waitUntil { scheduler.statistics.generatedTokens > 0 }
        try await client.cancelRequest(call.requestID)
        await #expect(throws: CancellationError.self) { _ = try await call.value }
        try await Self.waitUntil { scheduler.statistics.running == 0 }
        // Left alone, this prompt and seed generate all 500 tokens (no end-of-sequence comes first).
        #expect(scheduler.statistics.generatedTokens < 500)
    }

    /// Polls `condition` every 5 ms for up to 10 s.
    private static func waitUntil(_ condition: () -> Bool) async throws {
        let deadline = ContinuousClock.now + .seconds(10)
        while !condition() {
            guard ContinuousClock.now < deadline else {
                Issue.record("timed out")
                return
            }
            try await Task.sleep(for: .milliseconds(5))
        }
    }
}
