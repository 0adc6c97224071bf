import OnebitMCP
import OnebitModel
import OnebitSpecialists

/// The specialists as MCP tools: one per specialist, whose input schema is the specialist's and whose result holds
/// the report's id and the specialist's output (held to the specialist's output schema), plus `list_reports` and
/// `get_report` over the reports every run keeps, whether a tool call, the HTTP API or a trigger started it.
public enum SpecialistTools {
    /// Adds the tools of `runner`'s specialists and its report store to `registry`.
    public static func register(_ runner: SpecialistRunner, in registry: ToolRegistry) {
        for definition in runner.catalog.specialists {
            let outputSchema: JSONValue = .object([
                "type": .string("object"),
                "properties": .object([
                    "report_id": .object(["type": .string("string")]), "output": definition.outputSchema,
                ]),
                "required": .array([.string("report_id"), .string("output")]),
            ])
            registry.add(
                name: definition.name, description: definition.description, inputSchema: definition.inputSchema,
                outputSchema: outputSchema
            ) { input in
                let report = try await run(runner, definition.name, input: input)
                return .object(["report_id": .string(report.id), "output": report.output])
            }
        }
        registry.add(
            name: "list_reports",
            description: "The newest specialist reports (on demand, scheduled or on a new commit), newest first.",
            inputSchema: .object([
                "type": .string("object"),
                "properties": .object([
                    "specialist": .object(["type": .string("string")]),
                    "limit": .object(["type": .string("integer"), "minimum": .integer(1), "maximum": .integer(500)]),
                ]),
                "additionalProperties": .bool(false),
            ]),
            outputSchema: .object([
                "type": .string("object"),
                "properties": .object(["reports": .object(["type": .string("array"), "items": reportSchema])]),
                "required": .array([.string("reports")]),
            ])
        ) { input in
            let specialist = input["specialist"]?.stringValue
            if let specialist, runner.catalog.specialist(named: specialist) == nil {
                throw ToolError.invalidArgument(
                    name: "specialist",
                    message: "no specialist is named '\(specialist)'; known: "
                        + runner.catalog.specialists.map(\.name).joined(separator: ", "))
            }
            let limit = input["limit"]?.intValue ?? 20
            guard (1...500).contains(limit) else {
                throw ToolError.invalidArgument(name: "limit", message: "must be 1 to 500")
            }
            let reports = runner.reports.list(specialist: specialist, limit: limit)
            return .object(["reports": .array(reports.map(\.json))])
        }
        registry.add(
            name: "get_report", description: "One specialist report by its id.",
            inputSchema: .object([
                "type": .string("object"),
                "properties": .object(["id": .object(["type": .string("string")])]),
                "required": .array([.string("id")]), "additionalProperties": .bool(false),
            ]),
            outputSchema: reportSchema
        ) { input in
            guard let id = input["id"]?.stringValue else {
                throw ToolError.invalidArgument(name: "id", message: "the id of a report (from list_reports)")
            }
            guard let report = runner.reports.report(id: id) else {
                throw ToolError.invalidArgument(name: "id", message: "no report has the id '\(id)'")
            }
            return report.json
        }
    }

    /// What a report holds (``SpecialistReport/json``).
    static let reportSchema: JSONValue = .object([
        "type": .string("object"),
        "properties": .object([
            "id": .object(["type": .string("string")]), "specialist": .object(["type": .string("string")]),
            "trigger": .object(["type": .string("string")]), "created_at": .object(["type": .string("string")]),
            "seconds": .object(["type": .string("number")]), "model_written": .object(["type": .string("boolean")]),
            "input": .object([:]), "output": .object(["type": .string("object")]),
        ]),
        "required": .array(["id", "specialist", "trigger", "created_at", "output"].map(JSONValue.string)),
    ])

    /// Runs a specialist, turning its errors into tool errors: bad input names the field, anything else fails the
    /// call with the specialist's message.
    private static func run(_ runner: SpecialistRunner, _ name: String, input: JSONValue) async throws
        -> SpecialistReport
    {
        do {
            return try await runner.run(name, input: input, trigger: "mcp")
        } catch {
            if case .invalidInput(let path, let reason) = error {
                throw ToolError.invalidArgument(name: path, message: reason)
            }
            throw ToolError.failed(error.description)
        }
    }
}
