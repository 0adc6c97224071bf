import OnebitModel
import Testing

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Reads a fixture under Tests/Fixtures/templates, found relative to this source file.
private func loadTemplateFixture(_ name: String) throws -> JSONValue {
    let testsDirectory = String(
        #filePath.split(separator: "/", omittingEmptySubsequences: false).dropLast(2)
            .joined(separator: "/"))
    let path = testsDirectory + "/Fixtures/templates/\(name).json"
    guard let file = fopen(path, "rb") else { throw FixtureError(message: "cannot open \(path)") }
    defer { fclose(file) }
    var bytes: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 65536)
    while true {
        let count = fread(&chunk, 1, chunk.count, file)
        if count == 0 { break }
        bytes.append(contentsOf: chunk[..<count])
    }
    return try JSONValue(parsing: bytes)
}

private struct FixtureError: Error {
    var message: String
}

/// Where two renders first differ, for a readable failure.
private func firstDifference(_ actual: String, _ expected: String) -> String {
    let a = Array(actual.unicodeScalars)
    let e = Array(expected.unicodeScalars)
    var index = 0
    while index < a.count && index < e.count && a[index] == e[index] { index += 1 }
    func around(_ scalars: [Unicode.Scalar]) -> String {
        let start = max(0, index - 30)
        let end = min(scalars.count, index + 30)
        return String(String.UnicodeScalarView(scalars[start..<end]))
    }
    return "first difference at scalar \(index): got …\(around(a))… expected …\(around(e))…"
}

private let fixtureNames = [
    "bitnet_hf", "bitnet_training", "bitnet_cpp_gguf", "llama3_tools", "chatml_tools", "mistral", "features",
]

/// Every fixture render, compared byte for byte with transformers' `apply_chat_template` output.
@Test(arguments: fixtureNames)
func chatTemplateMatchesTransformers(fixture: String) throws {
    let document = try loadTemplateFixture(fixture)
    let source = try #require(document["source"]?.stringValue)
    let template = try ChatTemplate(source: source)
    let conversations = try #require(document["conversations"]?.objectValue)
    let tools = try #require(document["tools"]?.arrayValue)
    let cases = try #require(document["cases"]?.arrayValue)
    #expect(cases.count >= 20)
    for testCase in cases {
        let conversationName = try #require(testCase["conversation"]?.stringValue)
        let messages = try #require(conversations[conversationName]?.arrayValue)
        let withTools = testCase["tools"]?.boolValue ?? false
        let addGenerationPrompt = testCase["add_generation_prompt"]?.boolValue ?? false
        var extra: [String: JSONValue] = [:]
        for (key, value) in testCase["extra_context"]?.objectValue ?? [:] { extra[key] = value }
        let label = "\(fixture) \(conversationName) tools=\(withTools) gen=\(addGenerationPrompt)"
        let result = Result { () throws(TemplateError) in
            try template.render(
                messages: messages, addGenerationPrompt: addGenerationPrompt,
                bosToken: document["bos_token"]?.stringValue ?? "", eosToken: document["eos_token"]?.stringValue ?? "",
                tools: withTools ? tools : nil, extraContext: extra)
        }
        if let expected = testCase["expected"]?.stringValue {
            switch result {
            case .success(let rendered):
                #expect(rendered == expected, "\(label): \(firstDifference(rendered, expected))")
            case .failure(let error):
                Issue.record("\(label): expected a render, got \(error)")
            }
        } else {
            let expectedMessage = testCase["error"]?.stringValue ?? ""
            switch result {
            case .success(let rendered):
                Issue.record("\(label): expected error '\(expectedMessage)', rendered \(rendered.debugDescription)")
            case .failure(let error):
                // raise_exception messages are the template's own words and must come through unchanged.
                if testCase["error_type"]?.stringValue == "TemplateError" {
                    #expect(error.message == expectedMessage, "\(label)")
                }
                #expect(error.line > 0 && error.column > 0, "\(label): \(error)")
            }
        }
    }
}

/// The fallback format in the Swift sources is the one the fixtures were rendered from.
@Test func bitNetTrainingFixtureUsesTheBuiltInSource() throws {
    let document = try loadTemplateFixture("bitnet_training")
    #expect(document["source"]?.stringValue == ChatTemplate.bitNetTrainingFormat)
}

/// Small templates, one feature or whitespace rule each, rendered by transformers over one conversation.
@Test func chatTemplateSnippetsMatchTransformers() throws {
    let document = try loadTemplateFixture("snippets")
    let messages = try #require(document["messages"]?.arrayValue)
    let cases = try #require(document["cases"]?.arrayValue)
    #expect(cases.count >= 80)
    for testCase in cases {
        let source = try #require(testCase["source"]?.stringValue)
        let result = Result { () throws(TemplateError) in
            try ChatTemplate(source: source).render(
                messages: messages, addGenerationPrompt: true, bosToken: document["bos_token"]?.stringValue ?? "",
                eosToken: document["eos_token"]?.stringValue ?? "")
        }
        switch (result, testCase["expected"]?.stringValue) {
        case (.success(let rendered), let expected?):
            #expect(rendered == expected, "\(source.debugDescription): \(firstDifference(rendered, expected))")
        case (.failure(let error), let expected?):
            Issue.record("\(source.debugDescription): expected \(expected.debugDescription), got \(error)")
        case (.success(let rendered), nil):
            Issue.record("\(source.debugDescription): expected an error, rendered \(rendered.debugDescription)")
        case (.failure(let error), nil):
            if testCase["error_type"]?.stringValue == "TemplateError" {
                #expect(error.message == testCase["error"]?.stringValue, "\(source.debugDescription)")
            }
            #expect(error.line > 0 && error.column > 0, "\(source.debugDescription): \(error)")
        }
    }
}
