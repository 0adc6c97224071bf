import Testing

@testable import OnebitModel

/// The order-preserving JSON parser and writer.
@Suite struct JSONTests {
    @Test func keepsKeyOrderAndKinds() throws {
        let value = try JSONValue(parsing: #"{"z": 1, "a": [true, null, -2.5e3, "x"], "m": {"k": "v"}}"#)
        #expect(value.objectValue.map { Array($0.keys) } == ["z", "a", "m"])
        #expect(value["z"]?.intValue == 1)
        #expect(value["a"]?.arrayValue == [.bool(true), .null, .number(-2500), .string("x")])
        #expect(value.jsonText == #"{"z":1,"a":[true,null,-2500.0,"x"],"m":{"k":"v"}}"#)
    }

    @Test func decodesEscapesAndSurrogatePairs() throws {
        let value = try JSONValue(parsing: #""tab\there \"q\" \u00e9 \ud83d\ude00 \/""#)
        #expect(value.stringValue == "tab\there \"q\" é 😀 /")
    }

    @Test func writesPythonStyleEscapes() {
        var plain = ""
        JSONValue.writeString("é😀\u{1}\n", into: &plain)
        #expect(plain == "\"é😀\\u0001\\n\"")
        var ascii = ""
        JSONValue.writeString("é😀\u{7F}", escapingNonASCII: true, into: &ascii)
        #expect(ascii == #""\u00e9\ud83d\ude00\u007f""#)
    }

    @Test(arguments: [
        "", "{", "[1,]", "{\"a\" 1}", "tru", "\"unterminated", "01x", "[1] 2", "\"\\x\"", "\"\u{1}\"", "-", "1.",
        "{\"a\":1,}",
    ])
    func rejectsMalformedText(_ text: String) {
        #expect(throws: JSONError.self) { try JSONValue(parsing: text) }
    }

    @Test func refusesNestingDeepEnoughToExhaustTheStack() {
        let deep = String(repeating: "[", count: 100_000) + String(repeating: "]", count: 100_000)
        #expect(throws: JSONError.self) { try JSONValue(parsing: deep) }
        let fine = String(repeating: "[", count: 100) + String(repeating: "]", count: 100)
        #expect((try? JSONValue(parsing: fine)) != nil)
    }

    @Test func errorsNameTheOffset() {
        do {
            _ = try JSONValue(parsing: "[1, 2, x]")
            Issue.record("expected an error")
        } catch {
            #expect(error.offset == 7)
            #expect(error.description.contains("byte 7"))
        }
    }
}
