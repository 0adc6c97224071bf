import OnebitEngine
import OnebitModel
import Testing

/// ``Scheduler/withExclusiveModel(_:)``, which `score` and `perplexity` run through.
@Suite struct ExclusiveModelTests {
    @Test func bodiesRunOnTheModelAndTheirErrorsComeBack() async throws {
        let scheduler = Scheduler(
            model: LanguageModel(TestTools.model), configuration: SchedulerConfiguration(contextLength: 32))
        defer { scheduler.shutdown() }
        #expect(try await scheduler.withExclusiveModel { $0.contextLength } == TestTools.model.config.contextLength)
        await #expect(
            throws: SessionError.contextFull(capacity: TestTools.model.config.contextLength, requested: 100_000)
        ) {
            _ = try await scheduler.withExclusiveModel { try $0.score(Array(repeating: 1, count: 100_000)) }
        }
    }

    @Test func aStoppedSchedulerRefuses() async throws {
        let scheduler = Scheduler(
            model: LanguageModel(TestTools.model), configuration: SchedulerConfiguration(contextLength: 32))
        scheduler.shutdown()
        await #expect(throws: SchedulerError.shutDown) {
            _ = try await scheduler.withExclusiveModel { $0.contextLength }
        }
    }
}
