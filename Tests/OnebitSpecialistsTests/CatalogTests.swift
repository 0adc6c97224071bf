import OnebitModel
import Testing

@testable import OnebitSpecialists

@Suite struct CatalogTests {
    static let valid = #"""
        name = "release-notes"
        description = "Drafts release notes."
        core = "librarian"
        tools = ["git"]
        system_prompt = "You write release notes."
        input_schema = '{"type":"object","properties":{"repository":{"type":"string"}},"required":["repository"]}'
        output_schema = '{"type":"object","properties":{"summary":{"type":"string"}}}'

        [trigger]
        kind = "git-commit"
        repository = "/src/project"
        interval = 5
        input = '{"from":"v1"}'
        """#

    @Test func everyBuiltInParsesAndItsSchemasCompile() {
        let catalog = SpecialistCatalog.builtIn()
        #expect(
            catalog.specialists.map(\.name) == [
                "magistrate", "librarian", "quartermaster", "anvil", "sentinel", "scribe",
            ])
        for definition in catalog.specialists {
            #expect(definition.core == definition.name)
            #expect(definition.trigger == .onDemand)
            #expect(definition.outputSchema["required"]?.arrayValue?.isEmpty == false)
        }
    }

    @Test func aUserFileIsReadWithItsTrigger() throws {
        let definition = try DefinitionParser.parse(Self.valid, file: "notes.toml")
        #expect(definition.name == "release-notes" && definition.core == "librarian" && definition.tools == ["git"])
        #expect(
            definition.trigger
                == .gitCommit(repository: "/src/project", interval: 5, input: .object(["from": .string("v1")])))
        #expect(definition.inputSchema["required"] == .array([.string("repository")]))
    }

    @Test func errorsNameTheFileAndTheKey() {
        let cases: [(String, String, String)] = [
            (Self.valid.replacingFirst("name = \"release-notes\"", "name = 3"), "name", "must be a string"),
            (Self.valid.replacingFirst("name = \"release-notes\"", "name = \"Release Notes\""), "name", "lowercase"),
            (Self.valid.replacingFirst("core = \"librarian\"", "core = \"oracle\""), "core", "unknown core 'oracle'"),
            (Self.valid.replacingFirst("tools = [\"git\"]", "tools = [\"network\"]"), "tools", "unknown tool"),
            (Self.valid.replacingFirst("system_prompt", "prompt"), "prompt", "unknown key"),
            (
                Self.valid.replacingFirst(
                    "'{\"type\":\"object\",\"properties\":{\"summary\"",
                    "'{\"type\":\"object\",\"pattern\":\"x\",\"properties\":{\"summary\""), "output_schema", "pattern"
            ),
            (Self.valid.replacingFirst("input_schema = '{", "input_schema = '{{"), "input_schema", "not valid JSON"),
            (Self.valid.replacingFirst("kind = \"git-commit\"", "kind = \"hourly\""), "trigger.kind", "unknown kind"),
            (Self.valid.replacingFirst("interval = 5", "interval = 0"), "trigger.interval", "at least"),
            (Self.valid.replacingFirst("repository = \"/src/project\"\n", ""), "trigger.repository", "required"),
            (Self.valid.replacingFirst("description = \"Drafts release notes.\"\n", ""), "description", "required"),
        ]
        for (text, key, message) in cases {
            #expect(throws: SpecialistError.self) { try DefinitionParser.parse(text, file: "mine.toml") }
            do {
                _ = try DefinitionParser.parse(text, file: "mine.toml")
            } catch {
                guard case .invalidDefinition(let file, let badKey, let reason) = error else {
                    Issue.record("unexpected \(error)")
                    continue
                }
                #expect(file == "mine.toml")
                #expect(badKey == key, "\(error)")
                #expect(reason.contains(message), "\(error)")
                #expect(error.description.hasPrefix("mine.toml: key '\(key)'"))
            }
        }
    }

    @Test func malformedTOMLNamesTheFileAndLine() {
        do {
            _ = try DefinitionParser.parse("name = \"x\"\ndescription = \n", file: "broken.toml")
            Issue.record("malformed TOML must be refused")
        } catch {
            #expect(error.description.hasPrefix("broken.toml: not valid TOML at line 2"), "\(error)")
        }
    }

    @Test func aConfigDirectoryAddsAndReplacesSpecialists() throws {
        let directory = temporaryDirectory()
        write(Self.valid, to: directory + "/notes.toml")
        let withoutTrigger = String(Self.valid[..<Self.valid.firstRange(of: "[trigger]")!.lowerBound])
        write(
            withoutTrigger.replacingFirst("name = \"release-notes\"", "name = \"scribe\""),
            to: directory + "/scribe.toml")
        write("not a definition", to: directory + "/README.md")
        let catalog = try SpecialistCatalog.load(configDirectory: directory)
        #expect(catalog.specialists.count == 7)
        #expect(catalog.specialist(named: "release-notes")?.origin == directory + "/notes.toml")
        #expect(catalog.specialist(named: "scribe")?.core == "librarian")

        write(Self.valid, to: directory + "/again.toml")
        #expect(
            throws: SpecialistError.duplicateName(
                name: "release-notes", files: [directory + "/again.toml", directory + "/notes.toml"])
        ) {
            try SpecialistCatalog.load(configDirectory: directory)
        }
        #expect(try SpecialistCatalog.load(configDirectory: directory + "/missing").specialists.count == 6)
    }

    @Test func theConfigRootFollowsTheEnvironment() {
        func root(_ values: [String: String]) -> String? { SpecialistPaths.configRoot { values[$0] } }
        #expect(root(["ONEBIT_CONFIG_DIR": "/etc/ob", "HOME": "/home/a"]) == "/etc/ob")
        #expect(root(["XDG_CONFIG_HOME": "/x", "HOME": "/home/a"]) == "/x/onebit")
        #expect(root(["HOME": "/home/a"]) == "/home/a/.config/onebit")
        #expect(root([:]) == nil)
    }
}

@Suite struct SchemaValidatorTests {
    static let schema = #"""
        {"type":"object","properties":{
          "title":{"type":"string","minLength":1,"maxLength":10},
          "count":{"type":"integer","minimum":1},
          "tags":{"type":"array","items":{"enum":["a","b"]},"maxItems":2},
          "issues":{"type":"array","items":{"type":"object","properties":{"id":{"type":["string","integer"]}},
            "required":["id"]}}},
         "required":["title"],"additionalProperties":false}
        """#

    @Test func violationsNameTheField() throws {
        let validator = try SchemaValidator(schema: try JSONValue(parsing: Self.schema))
        let cases: [(String, String, String)] = [
            (#"{}"#, "input.title", "required"),
            (#"{"title":3}"#, "input.title", "must be string"),
            (#"{"title":""}"#, "input.title", "at least 1"),
            (#"{"title":"abcdefghijk"}"#, "input.title", "at most 10"),
            (#"{"title":"a","count":0}"#, "input.count", "at least 1"),
            (#"{"title":"a","count":1.5}"#, "input.count", "integer"),
            (#"{"title":"a","tags":["c"]}"#, "input.tags[0]", "one of"),
            (#"{"title":"a","tags":["a","b","a"]}"#, "input.tags", "at most 2"),
            (#"{"title":"a","issues":[{"id":1},{"id":null}]}"#, "input.issues[1].id", "string or integer"),
            (#"{"title":"a","extra":1}"#, "input.extra", "not a known field"),
            (#"[]"#, "input", "must be object"),
        ]
        for (text, path, message) in cases {
            let value = try JSONValue(parsing: text)
            do {
                try validator.validate(value)
                Issue.record("\(text) must be refused")
            } catch {
                #expect(error.path == path, "\(text): \(error)")
                #expect(error.reason.contains(message), "\(text): \(error)")
            }
        }
        try validator.validate(try JSONValue(parsing: #"{"title":"ok","count":2,"tags":["a"],"issues":[{"id":"x"}]}"#))
    }

    @Test func unsupportedKeywordsAreRefusedUpFront() {
        #expect(
            throws: SchemaViolation(
                path: "schema.properties.a", reason: "the keyword \"pattern\" is not supported; remove it")
        ) {
            try SchemaValidator(schema: try JSONValue(parsing: #"{"properties":{"a":{"pattern":"x"}}}"#))
        }
    }
}

extension String {
    /// The text with the first occurrence of `target` replaced.
    func replacingFirst(_ target: String, _ replacement: String) -> String {
        guard let range = firstRange(of: target) else { return self }
        var copy = self
        copy.replaceSubrange(range, with: replacement)
        return copy
    }
}
