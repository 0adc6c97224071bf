import MCP
import OnebitEngine
import OnebitMCP
import OnebitModel
import Testing

@Suite struct ToolTests {
    static let names = ["chat", "complete", "tokenize", "score", "perplexity", "model_info", "health"]

    /// A successful call of every tool, with arguments that exercise it.
    static let calls: [(String, [String: Value])] = [
        ("chat", ["prompt": "Hello", "max_tokens": 8, "seed": 1]),
        ("chat", ["messages": [["role": "user", "content": "Hi"]], "max_tokens": 8, "temperature": 0]),
        ("complete", ["prompt": "To be, or not to be", "max_tokens": 8, "temperature": 0]),
        ("tokenize", ["text": "To be, or not to be"]),
        ("score", ["text": "To be, or not to be"]),
        ("perplexity", ["text": "To be, or not to be"]),
        ("model_info", [:]),
        ("health", [:]),
    ]

    @Test func listsEveryToolWithBothSchemas() async throws {
        let client = try await TestTools.connect()
        let tools = try await client.listTools().tools
        #expect(tools.map(\.name) == Self.names)
        for tool in tools {
            #expect(tool.description?.isEmpty == false, "\(tool.name) has no description")
            #expect(tool.inputSchema.objectValue?["type"] == "object", "\(tool.name) input schema")
            #expect(tool.outputSchema?.objectValue?["type"] == "object", "\(tool.name) output schema")
        }
    }

    @Test(arguments: calls.indices)
    func everyToolAnswersWithStructuredContentThatFitsItsSchema(index: Int) async throws {
        let (name, arguments) = Self.calls[index]
        let client = try await TestTools.connect()
        let result = try await TestTools.call(client, name, arguments)
        #expect(result.isError == false, "\(name): \(TestTools.text(result) ?? "")")
        let structured = try #require(result.structuredContent.map(JSONValue.init))
        let schema = try #require(TestTools.registry.definitions.first { $0.name == name }?.outputSchema)
        #expect(SchemaCheck.violation(of: structured, against: schema) == nil, "\(name)")
        // Clients older than structured content read the same JSON as text (members in the tool's order there).
        let text = try #require(TestTools.text(result))
        #expect(JSONValue(Value(try JSONValue(parsing: text))) == structured)
    }

    @Test func tokenizeMatchesTheTokenizer() async throws {
        let client = try await TestTools.connect()
        let result = try await TestTools.call(client, "tokenize", ["text": "To be, or not to be"])
        let ids = TestTools.model.tokenizer.encode("To be, or not to be", addSpecialTokens: false)
        #expect(result.structuredContent?.objectValue?["ids"] == Value.array(ids.map(Value.int)))
        #expect(result.structuredContent?.objectValue?["count"] == .int(ids.count))
    }

    @Test func scoreThroughTheSchedulerMatchesTheModel() async throws {
        let text = "To be, or not to be, that is the question"
        let client = try await TestTools.connect()
        // A generation runs at the same time, so scoring happens between its steps.
        async let generation = TestTools.call(
            client, "complete", ["prompt": "Once", "max_tokens": 32, "temperature": 0])
        let result = try await TestTools.call(client, "score", ["text": .string(text)])
        _ = try await generation
        let tokens = TestTools.model.tokenizer.encode(text, addSpecialTokens: true)
        let expected = try LanguageModel(TestTools.model).score(tokens)
        let entries = try #require(result.structuredContent?.objectValue?["tokens"]?.arrayValue)
        #expect(entries.map { $0.objectValue?["id"]?.intValue } == tokens)
        for (entry, logprob) in zip(entries, expected) {
            #expect(entry.objectValue?["logprob"] == logprob.map(Value.double) ?? .null)
        }
    }

    @Test func aSeedMakesChatReproducible() async throws {
        let client = try await TestTools.connect()
        let arguments: [String: Value] = ["prompt": "Tell me a story", "max_tokens": 16, "seed": 7, "temperature": 1]
        let first = try await TestTools.call(client, "chat", arguments)
        let second = try await TestTools.call(client, "chat", arguments)
        #expect(first.structuredContent?.objectValue?["text"] != nil)
        #expect(first.structuredContent?.objectValue?["text"] == second.structuredContent?.objectValue?["text"])
    }

    @Test func jsonSchemaConstrainsTheReply() async throws {
        let client = try await TestTools.connect()
        let schema: Value = [
            "type": "object", "properties": ["answer": ["type": "boolean"], "count": ["type": "integer"]],
            "required": ["answer", "count"],
        ]
        let result = try await TestTools.call(
            client, "chat", ["prompt": "Answer in JSON", "json_schema": schema, "max_tokens": 64, "temperature": 0])
        #expect(result.isError == false, "\(TestTools.text(result) ?? "")")
        let json = try #require(result.structuredContent?.objectValue?["json"].map(JSONValue.init))
        #expect(SchemaCheck.violation(of: json, against: JSONValue(schema)) == nil)
        #expect(result.structuredContent?.objectValue?["finish_reason"] == "stop")
    }

    @Test func anUnknownToolIsAnInvalidParamsError() async throws {
        let client = try await TestTools.connect()
        await #expect {
            _ = try await TestTools.call(client, "no_such_tool")
        } throws: { error in
            guard let error = error as? MCPError, case .invalidParams(let message) = error else { return false }
            return message?.contains("no_such_tool") == true
        }
    }

    /// Bad arguments and the argument each error must name.
    static let badCalls: [(String, [String: Value], String)] = [
        ("tokenize", ["text": 5], "text"),
        ("tokenize", [:], "text"),
        ("tokenize", ["text": "a", "txet": "b"], "txet"),
        ("chat", [:], "messages"),
        ("chat", ["prompt": "a", "messages": [["role": "user", "content": "b"]]], "prompt"),
        ("chat", ["messages": [["role": "user"]]], "messages[0].content"),
        ("chat", ["messages": []], "messages"),
        ("chat", ["prompt": "a", "max_tokens": 0], "max_tokens"),
        ("chat", ["prompt": "a", "temperature": 3], "temperature"),
        ("chat", ["prompt": "a", "json_schema": ["type": "string", "pattern": "x"]], "json_schema"),
        ("complete", ["prompt": .string(String(repeating: "word ", count: 200))], "prompt"),
        ("score", ["text": .string(String(repeating: "word ", count: 200))], "text"),
        ("perplexity", ["text": ""], "text"),
        ("perplexity", ["text": .string(String(repeating: "word ", count: 200))], "text"),
    ]

    @Test(arguments: badCalls.indices)
    func badArgumentsAreToolErrorsNamingTheArgument(index: Int) async throws {
        let (name, arguments, argument) = Self.badCalls[index]
        let client = try await TestTools.connect()
        let result = try await TestTools.call(client, name, arguments)
        #expect(result.isError == true)
        #expect(result.structuredContent == nil)
        let message = try #require(TestTools.text(result))
        #expect(message.contains("'\(argument)'"), "\(name): \(message)")
    }

    @Test func aToolThatAnswersWithAnythingButAnObjectIsAToolError() async throws {
        let registry = ToolRegistry()
        registry.add(
            name: "broken", description: "Answers with a number.", inputSchema: Schema.object([:]),
            outputSchema: Schema.object([:])
        ) { _ in .integer(3) }
        let result = try await TestTools.call(try await TestTools.connect(registry), "broken")
        #expect(result.isError == true)
        #expect(TestTools.text(result)?.contains("not a JSON object") == true)
    }

    @Test func anotherModuleAddsAToolWithOneCall() async throws {
        let registry = ToolRegistry()
        registry.add(
            name: "echo", description: "Echo the text.",
            inputSchema: Schema.object(["text": Schema.string()], required: ["text"]),
            outputSchema: Schema.object(["text": Schema.string()], required: ["text"])
        ) { input in .object(["text": .string(try ToolArguments(input).requiredString("text"))]) }
        let client = try await TestTools.connect(registry)
        #expect(try await client.listTools().tools.map(\.name) == ["echo"])
        let result = try await TestTools.call(client, "echo", ["text": "hi"])
        #expect(result.structuredContent == ["text": "hi"])
    }
}
