import OnebitModel
import OrderedCollections
import Synchronization

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Runs specialists: checks the input, runs the deterministic core, has the model write the text field, checks the
/// output against the schema and keeps the report.
public final class SpecialistRunner: Sendable {
    /// The specialists it can run.
    public let catalog: SpecialistCatalog
    /// Where reports go.
    public let reports: ReportStore
    private let model: SpecialistModel
    private let server: Mutex<String?>

    /// The base URL of the server the specialists run in (the sentinel's default target); set once it listens.
    public var serverURL: String? {
        get { server.withLock { $0 } }
        set { server.withLock { $0 = newValue } }
    }

    /// Longest text the model writes when the output schema sets no `maxLength` for the text field.
    static let defaultTextLength = 160
    /// Shortest text the model is held to (less when the limit is lower).
    static let minimumTextLength = 24

    /// A runner over `catalog` writing with `model`; `serverURL` is the server the specialists run in, if any
    /// (the sentinel's default target).
    public init(catalog: SpecialistCatalog, model: SpecialistModel, reports: ReportStore, serverURL: String? = nil) {
        self.catalog = catalog
        self.model = model
        self.reports = reports
        server = Mutex(serverURL)
    }

    /// Runs the specialist named `name` on `input` and keeps its report; `trigger` records what started it.
    public func run(_ name: String, input: JSONValue, trigger: String = "on-demand") async throws(SpecialistError)
        -> SpecialistReport
    {
        guard let definition = catalog.specialist(named: name) else {
            throw .unknownSpecialist(name: name, known: catalog.specialists.map(\.name))
        }
        return try await run(definition, input: input, trigger: trigger)
    }

    /// Runs `definition` on `input` and keeps its report.
    public func run(_ definition: SpecialistDefinition, input: JSONValue, trigger: String) async throws(SpecialistError)
        -> SpecialistReport
    {
        let started = time(nil)
        let clock = ContinuousClock.now
        try Self.validate(input, against: definition.inputSchema)
        let tools = ToolBox(specialist: definition.name, allowed: Set(definition.tools), serverURL: serverURL)
        let output: JSONValue
        let modelWritten: Bool
        if let coreName = definition.core, let core = SpecialistCores.core(named: coreName) {
            let result = try await core.run(input, tools: tools)
            (output, modelWritten) = try await complete(result, definition: definition)
        } else {
            let value = try await model.write(
                schema: definition.outputSchema, systemPrompt: definition.systemPrompt, facts: input.jsonText,
                maxTokens: model.scheduler.configuration.contextLength / 2, seed: Self.seed(input.jsonText))
            guard let value else {
                throw .generationFailed(
                    reason: "the model ran out of room before finishing the output; shorten the input or serve "
                        + "with a larger --ctx")
            }
            (output, modelWritten) = (value, true)
        }
        do {
            try SchemaValidator(schema: definition.outputSchema).validate(output, root: "output")
        } catch {
            throw .invalidOutput(path: error.path, reason: error.reason)
        }
        let elapsed = ContinuousClock.now - clock
        let report = SpecialistReport(
            id: SpecialistReport.makeID(specialist: definition.name, at: started), specialist: definition.name,
            trigger: trigger, createdAt: SpecialistReport.timestamp(started),
            seconds: (Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) * 1e-18),
            input: input, output: output, modelWritten: modelWritten)
        try reports.add(report)
        return report
    }

    /// Checks `input` against `schema`, naming the field at fault.
    public static func validate(_ input: JSONValue, against schema: JSONValue) throws(SpecialistError) {
        do {
            try SchemaValidator(schema: schema).validate(input, root: "input")
        } catch {
            throw .invalidInput(path: error.path, reason: error.reason)
        }
    }

    /// The core's fields plus the model's text, in the output schema's member order.
    private func complete(_ result: CoreResult, definition: SpecialistDefinition) async throws(SpecialistError)
        -> (JSONValue, Bool)
    {
        var textSchema = definition.outputSchema["properties"]?[result.textField] ?? .object([:])
        var members = textSchema.objectValue ?? [:]
        members["type"] = .string("string")
        var limit = members["maxLength"]?.intValue ?? Self.defaultTextLength
        if let requested = result.textLimit { limit = min(limit, requested) }
        members["maxLength"] = .integer(limit)
        // A floor keeps a small model from closing the string at once (it likes `"  "`).
        members["minLength"] = .integer(min(Self.minimumTextLength, limit))
        textSchema = .object(members)
        let schema: JSONValue = .object([
            "type": .string("object"), "properties": .object([result.textField: textSchema]),
            "required": .array([.string(result.textField)]), "additionalProperties": .bool(false),
        ])
        let written = try await model.write(
            schema: schema, systemPrompt: definition.systemPrompt, facts: result.facts, maxTokens: 2 * limit + 16,
            seed: Self.seed(result.facts))
        // Whitespace alone says nothing; the core's plain text stands in for it.
        let text = written?[result.textField]?.stringValue.map(\.trimmed).flatMap { $0.isEmpty ? nil : $0 }
        var fields = result.fields
        fields[result.textField] = .string(text ?? String(result.fallbackText.prefix(limit)))
        var ordered = OrderedDictionary<String, JSONValue>()
        for key in definition.outputSchema["properties"]?.objectValue?.keys ?? [] {
            if let value = fields.removeValue(forKey: key) { ordered[key] = value }
        }
        ordered.merge(fields) { first, _ in first }
        return (.object(ordered), text != nil)
    }

    /// A seed that depends only on `text` (FNV-1a), so the same facts get the same words.
    static func seed(_ text: String) -> UInt64 {
        text.utf8.reduce(0xcbf2_9ce4_8422_2325) { ($0 ^ UInt64($1)) &* 0x100_0000_01b3 }
    }
}
