import OnebitModel
import Testing

@testable import OnebitEngine

@Suite struct ConstraintTests {
    static let demo: LoadedModel = {
        do {
            return try EmbeddedModel.load()
        } catch {
            preconditionFailure("the built-in model must load: \(error)")
        }
    }()
    static let vocabulary = TokenVocabulary(tokenizer: demo.tokenizer)

    static func grammar(_ schema: String, strict: Bool = true) throws -> JSONGrammar {
        try JSONGrammar(schema: JSONValue(parsing: schema), strict: strict)
    }

    /// Whether `text` read byte by byte leaves `grammar`'s matcher complete.
    static func matches(_ text: String, _ grammar: JSONGrammar) -> Bool {
        var matcher = JSONMatcher(grammar: grammar)
        for byte in text.utf8 where !matcher.advance(byte, in: grammar) { return false }
        return matcher.canEnd
    }

    @Test func theMatcherAcceptsExactlyTheCompactValuesOfTheSchema() throws {
        let grammar = try Self.grammar(
            """
            {"type": "object", "properties": {
                "name": {"type": "string", "maxLength": 3},
                "age": {"type": ["integer", "null"]},
                "tags": {"type": "array", "items": {"enum": ["a", 1, null]}, "minItems": 1, "maxItems": 2},
                "score": {"type": "number"},
                "ok": {"type": "boolean"}},
             "required": ["name"]}
            """, strict: false)
        for valid in [
            #"{"name":"abc"}"#, #"{"name":"","age":12,"tags":["a",null],"score":-0.5e+3,"ok":true}"#,
            #"{"name":"é\n","age":null,"ok":false}"#, #"{"name":"x","tags":[1]}"#, #"{"name":"\u00e9"}"#,
        ] {
            #expect(Self.matches(valid, grammar), "\(valid)")
        }
        for invalid in [
            #"{}"#, #"{"name":"abcd"}"#, #"{"age":1,"name":"x"}"#, #"{"name":"x","tags":[]}"#,
            #"{"name":"x","tags":[1,1,1]}"#, #"{"name":"x","age":1.5}"#, #"{"name":"x","score":01}"#,
            #"{"name":"x", "ok":true}"#, #"{"name":"x","extra":1}"#, #"{"name":"x"} "#, #"{"name":"\q"}"#,
            "{\"name\":\"\u{1}\"}",
        ] {
            #expect(!Self.matches(invalid, grammar), "\(invalid)")
        }
    }

    @Test func strictModeRequiresEveryPropertyAndAnyObjectTakesAnything() throws {
        let strict = try Self.grammar(#"{"type":"object","properties":{"a":{"type":"null"},"b":{"const":"x"}}}"#)
        #expect(Self.matches(#"{"a":null,"b":"x"}"#, strict))
        #expect(!Self.matches(#"{"a":null}"#, strict))
        for valid in [#"{}"#, #"{"k":[1,{"x":"y"},[]],"":-2.5,"z":{}}"#] {
            #expect(Self.matches(valid, .anyObject), "\(valid)")
        }
        #expect(!Self.matches(#"[]"#, .anyObject))
        #expect(!Self.matches(#"{"a":[[[[[[1]]]]]]}"#, .anyObject), "nesting is bounded")
    }

    @Test func featuresTheEngineCannotEnforceAreRefusedByName() throws {
        for keyword in ["pattern", "format", "minimum", "oneOf", "uniqueItems", "patternProperties"] {
            let schema = #"{"type":"object","properties":{"a":{"type":"string","\#(keyword)":"x"}}}"#
            #expect(throws: GrammarError.unsupported(keyword: keyword, path: "schema.properties.a", reason: "")) {
                try Self.grammar(schema)
            }
        }
        for schema in [
            #"{"type":"object","required":["a"]}"#, ##"{"$ref":"#/$defs/missing"}"##,
            ##"{"$defs":{"n":{"type":"array","items":{"$ref":"#/$defs/n"}}},"$ref":"#/$defs/n"}"##,
        ] {
            #expect(throws: GrammarError.self, "\(schema)") { try Self.grammar(schema) }
        }
        #expect(throws: GrammarError.self) { try Self.grammar(#"{"type":"text"}"#) }
    }

    @Test func referencesFreeMembersAndEscapes() throws {
        let referring = try Self.grammar(
            ##"{"$defs":{"p":{"type":"object","properties":{"x":{"type":"integer"}}}},"type":"array","items":{"$ref":"#/$defs/p"}}"##
        )
        #expect(Self.matches(#"[{"x":1},{"x":2}]"#, referring))
        #expect(!Self.matches(#"[{"x":"1"}]"#, referring))

        let counts = try Self.grammar(#"{"type":"object","additionalProperties":{"type":"integer"}}"#)
        #expect(Self.matches(#"{"a":1,"b":2}"#, counts))
        #expect(!Self.matches(#"{"a":"1"}"#, counts))
        let empty = try Self.grammar(#"{"type":"object","additionalProperties":false}"#)
        #expect(Self.matches("{}", empty) && !Self.matches(#"{"a":1}"#, empty))

        let short = try Self.grammar(#"{"type":"string","minLength":2,"maxLength":2}"#)
        #expect(Self.matches(#""\u00e9x""#, short))
        #expect(!Self.matches(#""\ud83d\ude00""#, short), "surrogate escapes would be miscounted")
    }

    /// 50 random schemas; tokens of the demo vocabulary are drawn at random among those the mask allows until the
    /// value is complete. Every output must parse and validate.
    @Test func randomWalksUnderRandomSchemasAlwaysGiveValidJSON() throws {
        var random = SplitMix64(seed: 7)
        for index in 0..<50 {
            let schema = try JSONValue(parsing: SchemaGenerator.schema(&random, depth: 0))
            let grammar = try JSONGrammar(schema: schema, strict: true)
            let state = ConstraintState(
                TokenConstraint(grammar: grammar, vocabulary: Self.vocabulary), endOfSequence: [])
            var bytes: [UInt8] = []
            var steps = 0
            while !state.isComplete && steps < 4000 {
                let mask = state.allowedTokens()
                let allowed = (0..<Self.vocabulary.size).filter { mask[$0 >> 6] & (1 << UInt64($0 & 63)) != 0 }
                try #require(
                    !allowed.isEmpty,
                    "schema \(index) \(schema.jsonText) after \(String(decoding: bytes, as: UTF8.self))")
                let token = allowed[Int(random.next() % UInt64(allowed.count))]
                #expect(state.accept(token))
                bytes += Self.vocabulary.bytes(of: token) ?? []
                steps += 1
            }
            #expect(state.isComplete, "schema \(index) did not finish in \(steps) tokens")
            let value = try JSONValue(parsing: bytes)
            #expect(
                SchemaGenerator.validates(value, schema),
                "schema \(index) \(schema.jsonText) gave \(String(decoding: bytes, as: UTF8.self))")
        }
    }

    @Test func theSchedulerStopsWhenTheValueIsComplete() async throws {
        let schema =
            #"{"type":"object","properties":{"a":{"type":"integer"},"b":{"type":"array","items":{"type":"boolean"},"maxItems":3}}}"#
        let model = try ModelLoader.load(path: Fixtures.models + "/hf-256")
        let constraint = TokenConstraint(
            grammar: try Self.grammar(schema), vocabulary: TokenVocabulary(tokenizer: model.tokenizer))
        let scheduler = Scheduler(
            model: LanguageModel(model), configuration: SchedulerConfiguration(contextLength: 256))
        for seed in 0..<3 {
            let request = GenerationRequest(
                prompt: model.tokenizer.encode("The answer:"), maxTokens: 200,
                sampling: SamplingParameters(temperature: 1, seed: UInt64(seed)), topLogprobs: 20,
                constraint: constraint)
            var tokens: [Int] = []
            var reason: FinishReason?
            for await event in try scheduler.submit(request) {
                switch event {
                case .token(let token):
                    tokens.append(token.id)
                    #expect(token.topLogprobs.allSatisfy(\.logprob.isFinite) && token.logprob?.isFinite == true)
                case .finished(let finish, _): reason = finish
                case .failed(let message): Issue.record("\(message)")
                }
            }
            #expect(reason == .stop)
            let value = try JSONValue(parsing: model.tokenizer.decode(tokens))
            #expect(value["a"]?.intValue != nil && value["b"]?.arrayValue != nil, "\(value.jsonText)")
        }
    }
}

/// Random schemas of the supported subset, and a validator for them (the Python suite checks with `jsonschema`).
enum SchemaGenerator {
    /// A schema as JSON text (so member order is kept without naming an ordered dictionary type).
    static func schema(_ random: inout SplitMix64, depth: Int) -> String {
        func pick(_ n: Int) -> Int { Int(random.next() % UInt64(n)) }
        switch pick(depth >= 2 ? 6 : 9) {
        case 0: return #"{"type":"string","maxLength":\#(pick(12))}"#
        case 1: return #"{"type":"integer"}"#
        case 2: return #"{"type":"number"}"#
        case 3: return #"{"type":"boolean"}"#
        case 4: return #"{"enum":["red",3,null,"ré"]}"#
        case 5: return #"{"type":["null","integer"]}"#
        case 6:
            let items = schema(&random, depth: depth + 1)
            return #"{"type":"array","items":\#(items),"minItems":\#(pick(2)),"maxItems":\#(2 + pick(2))}"#
        case 7:
            return #"{"anyOf":[\#(schema(&random, depth: depth + 1)),\#(schema(&random, depth: depth + 1))]}"#
        default:
            let names = (0..<(1 + pick(4))).map { "p\($0)" }
            let properties = names.map { #""\#($0)":\#(schema(&random, depth: depth + 1))"# }
            let required = names.map { #""\#($0)""# }
            return #"{"type":"object","properties":{\#(properties.joined(separator: ","))},"required":["#
                + required.joined(separator: ",") + #"],"additionalProperties":false}"#
        }
    }

    static func validates(_ value: JSONValue, _ schema: JSONValue) -> Bool {
        if let options = schema["enum"]?.arrayValue { return options.contains(value) }
        if let choices = schema["anyOf"]?.arrayValue { return choices.contains { validates(value, $0) } }
        let types = schema["type"]?.arrayValue?.compactMap(\.stringValue) ?? [schema["type"]?.stringValue ?? ""]
        return types.contains { type in
            switch (type, value) {
            case ("string", .string(let s)): return s.unicodeScalars.count <= schema["maxLength"]?.intValue ?? .max
            case ("integer", .integer), ("number", .integer), ("number", .number), ("boolean", .bool), ("null", .null):
                return true
            case ("array", .array(let items)):
                return items.count >= schema["minItems"]?.intValue ?? 0
                    && items.count <= schema["maxItems"]?.intValue ?? .max
                    && items.allSatisfy { validates($0, schema["items"] ?? .null) }
            case ("object", .object(let members)):
                guard let properties = schema["properties"]?.objectValue else { return false }
                return Array(members.keys) == Array(properties.keys)
                    && members.allSatisfy { validates($0.value, properties[$0.key] ?? .null) }
            default: return false
            }
        }
    }
}
