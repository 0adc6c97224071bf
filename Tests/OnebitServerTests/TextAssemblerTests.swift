import Hummingbird
import OnebitModel
import Testing

@testable import OnebitServer

@Suite struct TextAssemblerTests {
    let tokenizer = TestServer.model.tokenizer

    /// Feeds the tokens of `text` one by one and returns what was released after each, plus the final flush.
    func run(_ text: String, stop: [String]) -> (pieces: [String], stopped: Bool) {
        var assembler = TextAssembler(tokenizer: tokenizer, stop: stop)
        var pieces: [String] = []
        for id in tokenizer.encode(text, addSpecialTokens: false) {
            pieces.append(assembler.append(id))
            if assembler.stopped { break }
        }
        pieces.append(assembler.finish())
        return (pieces, assembler.stopped)
    }

    @Test func withoutStopStringsEverythingIsReleased() {
        let (pieces, stopped) = run("hello world, héllo", stop: [])
        #expect(pieces.joined() == "hello world, héllo")
        #expect(!stopped)
    }

    @Test func textBeforeAStopStringIsReleasedAndTheRestDropped() {
        let (pieces, stopped) = run("hello world. Next turn", stop: ["world."])
        #expect(pieces.joined() == "hello ")
        #expect(stopped)
    }

    @Test func aPossibleStartOfAStopStringIsHeldBack() {
        var assembler = TextAssembler(tokenizer: tokenizer, stop: ["lo wo"])
        var released = ""
        for id in tokenizer.encode("hello", addSpecialTokens: false) { released += assembler.append(id) }
        // "lo" could begin "lo wo": held back until the text decides.
        #expect(released == "hel")
        #expect(assembler.finish() == "lo")
    }

    @Test func theEarliestOfSeveralStopStringsWins() {
        let (pieces, _) = run("one two three", stop: ["three", "two"])
        #expect(pieces.joined() == "one ")
    }
}
