import OnebitEngine
import OnebitModel
import OrderedCollections
import TOMLKit

/// Reads one specialist definition from TOML text.
///
/// ```toml
/// name = "release-notes"
/// description = "Drafts release notes."
/// core = "librarian"            # optional: a built-in deterministic core; absent, the model writes the output
/// tools = ["git"]
/// system_prompt = "You write release notes."
/// input_schema = '{"type":"object","properties":{"repository":{"type":"string"}}}'
/// output_schema = '{"type":"object", ...}'   # JSON text, or a TOML table
///
/// [trigger]                     # optional; default on demand
/// kind = "git-commit"           # "on-demand", "schedule" or "git-commit"
/// repository = "/src/project"   # git-commit only
/// interval = 60                 # seconds between runs (schedule) or between looks at HEAD (git-commit)
/// input = '{"command":"make test"}'
/// ```
///
/// Schemas may be JSON text (keeps member order, which sets the order of generated members) or TOML tables (whose
/// keys come back sorted). Every error names the file and the key.
enum DefinitionParser {
    /// Keys a definition may have; any other is refused so a typo does not pass silently.
    static let keys: Set<String> = [
        "name", "description", "core", "tools", "system_prompt", "input_schema", "output_schema", "trigger",
    ]
    /// Tools a definition may list.
    static let knownTools: Set<String> = ["git", "shell", "http", "files"]
    /// Shortest interval a trigger may use, so a typo cannot make a busy loop.
    static let minimumInterval = 1

    static func parse(_ text: String, file: String) throws(SpecialistError) -> SpecialistDefinition {
        let table: TOMLTable
        do {
            table = try TOMLTable(string: text)
        } catch let error as TOMLParseError {
            throw .invalidDefinition(
                file: file, key: "",
                reason: "not valid TOML at line \(error.source.begin.line), column \(error.source.begin.column): "
                    + error.description)
        } catch {
            throw .invalidDefinition(file: file, key: "", reason: "not valid TOML: \(error)")
        }
        let document = TOMLConversion.json(table)
        let fields = Fields(document: document, file: file)
        for key in table.keys where !keys.contains(key) {
            throw .invalidDefinition(
                file: file, key: key, reason: "unknown key; use \(keys.sorted().joined(separator: ", "))")
        }
        let name = try fields.string("name")
        guard !name.isEmpty,
            name.unicodeScalars.allSatisfy({ ("a"..."z").contains($0) || ("0"..."9").contains($0) || $0 == "-" })
        else {
            throw .invalidDefinition(
                file: file, key: "name", reason: "'\(name)' must be lowercase letters, digits and '-'")
        }
        let core = try fields.optionalString("core")
        if let core, !SpecialistCores.names.contains(core) {
            throw .invalidDefinition(
                file: file, key: "core",
                reason: "unknown core '\(core)'; use one of \(SpecialistCores.names.sorted().joined(separator: ", "))"
                    + " or leave it out to let the model write the whole output")
        }
        let tools = try fields.strings("tools")
        for tool in tools where !knownTools.contains(tool) {
            throw .invalidDefinition(
                file: file, key: "tools",
                reason: "unknown tool '\(tool)'; use \(knownTools.sorted().joined(separator: ", "))")
        }
        let inputSchema = try fields.schema("input_schema")
        let outputSchema = try fields.schema("output_schema")
        for (key, schema) in [("input_schema", inputSchema), ("output_schema", outputSchema)] {
            do {
                _ = try SchemaValidator(schema: schema)
            } catch {
                throw .invalidDefinition(file: file, key: key, reason: error.description)
            }
        }
        // The output must also be a schema the model can be held to (it writes all of it when there is no core).
        do {
            _ = try JSONGrammar(schema: outputSchema, strict: false)
        } catch {
            throw .invalidDefinition(file: file, key: "output_schema", reason: error.description)
        }
        return SpecialistDefinition(
            name: name, description: try fields.string("description"), systemPrompt: try fields.string("system_prompt"),
            inputSchema: inputSchema, outputSchema: outputSchema, tools: tools,
            trigger: try trigger(document["trigger"], file: file), core: core, origin: file)
    }

    private static func trigger(_ value: JSONValue?, file: String) throws(SpecialistError) -> SpecialistTrigger {
        guard let value else { return .onDemand }
        guard value.objectValue != nil else {
            throw .invalidDefinition(file: file, key: "trigger", reason: "must be a table ([trigger])")
        }
        let fields = Fields(document: value, file: file, prefix: "trigger.")
        let kind = try fields.string("kind")
        let input = try fields.optionalJSON("input") ?? .object([:])
        guard input.objectValue != nil else {
            throw .invalidDefinition(file: file, key: "trigger.input", reason: "must be a JSON object")
        }
        let interval = try fields.optionalInt("interval")
        if let interval, interval < minimumInterval {
            throw .invalidDefinition(
                file: file, key: "trigger.interval", reason: "must be at least \(minimumInterval) second")
        }
        switch kind {
        case "on-demand":
            return .onDemand
        case "schedule":
            guard let interval else {
                throw .invalidDefinition(
                    file: file, key: "trigger.interval", reason: "a schedule needs an interval in seconds")
            }
            return .schedule(interval: interval, input: input)
        case "git-commit":
            return .gitCommit(repository: try fields.string("repository"), interval: interval ?? 30, input: input)
        default:
            throw .invalidDefinition(
                file: file, key: "trigger.kind", reason: "unknown kind '\(kind)'; use on-demand, schedule or git-commit"
            )
        }
    }

    /// Typed access to a table's members, with errors that name the file and the key.
    private struct Fields {
        let document: JSONValue
        let file: String
        var prefix = ""

        func fail(_ key: String, _ reason: String) -> SpecialistError {
            .invalidDefinition(file: file, key: prefix + key, reason: reason)
        }

        func string(_ key: String) throws(SpecialistError) -> String {
            guard let value = try optionalString(key) else { throw fail(key, "is required (a string)") }
            return value
        }

        func optionalString(_ key: String) throws(SpecialistError) -> String? {
            guard let value = document[key] else { return nil }
            guard let string = value.stringValue else { throw fail(key, "must be a string") }
            return string
        }

        func optionalInt(_ key: String) throws(SpecialistError) -> Int? {
            guard let value = document[key] else { return nil }
            guard case .integer(let int) = value else { throw fail(key, "must be an integer") }
            return int
        }

        func strings(_ key: String) throws(SpecialistError) -> [String] {
            guard let value = document[key] else { return [] }
            guard let items = value.arrayValue, case let strings = items.compactMap(\.stringValue),
                strings.count == items.count
            else { throw fail(key, "must be an array of strings") }
            return strings
        }

        /// A JSON value given as JSON text or as a TOML table.
        func optionalJSON(_ key: String) throws(SpecialistError) -> JSONValue? {
            guard let value = document[key] else { return nil }
            guard let text = value.stringValue else { return value }
            do {
                return try JSONValue(parsing: text)
            } catch {
                throw fail(key, "is not valid JSON: \(error.description)")
            }
        }

        func schema(_ key: String) throws(SpecialistError) -> JSONValue {
            guard let schema = try optionalJSON(key) else { throw fail(key, "is required (a JSON schema)") }
            guard schema.objectValue != nil else { throw fail(key, "must be a JSON schema object") }
            return schema
        }
    }
}

/// TOML values as JSON values.
enum TOMLConversion {
    static func json(_ value: any TOMLValueConvertible) -> JSONValue {
        if let table = value.table {
            var members = OrderedDictionary<String, JSONValue>()
            for key in table.keys {
                if let member = table[key] { members[key] = json(member) }
            }
            return .object(members)
        }
        if let array = value.array { return .array(array.map { json($0) }) }
        if let bool = value.bool { return .bool(bool) }
        if let int = value.int { return .integer(int) }
        if let double = value.double { return .number(double) }
        if let string = value.string { return .string(string) }
        // Dates and times have no JSON type; their TOML spelling keeps the information.
        return .string(value.tomlValue.debugDescription)
    }
}
