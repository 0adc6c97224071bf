import OnebitModel

/// One specialist: its role, the schemas of what it takes and gives, the local tools it may use and when it runs.
public struct SpecialistDefinition: Sendable, Equatable {
    /// The name commands and routes use (`magistrate`); lowercase letters, digits and `-`.
    public var name: String
    /// One line for people and for MCP tool lists.
    public var description: String
    /// The instructions the model gets before the facts it explains.
    public var systemPrompt: String
    /// What `input` must look like (the subset ``SchemaValidator`` checks).
    public var inputSchema: JSONValue
    /// What the report's `output` looks like; every run's output is checked against it.
    public var outputSchema: JSONValue
    /// Local tools the specialist may use: `git`, `shell`, `http`, `files`.
    public var tools: [String]
    /// When it runs besides on demand.
    public var trigger: SpecialistTrigger
    /// The deterministic core that computes the output (`magistrate`, `anvil`, ...); `nil`: the model writes the
    /// whole output, constrained to `outputSchema`.
    public var core: String?
    /// Where it was defined: `built-in` or the file's path.
    public var origin: String

    /// Describes a specialist.
    public init(
        name: String, description: String, systemPrompt: String, inputSchema: JSONValue, outputSchema: JSONValue,
        tools: [String], trigger: SpecialistTrigger = .onDemand, core: String? = nil, origin: String = "built-in"
    ) {
        self.name = name
        self.description = description
        self.systemPrompt = systemPrompt
        self.inputSchema = inputSchema
        self.outputSchema = outputSchema
        self.tools = tools
        self.trigger = trigger
        self.core = core
        self.origin = origin
    }

    /// The definition as JSON (what `specialists show` prints and `GET /v1/specialists` lists).
    public var json: JSONValue {
        .object([
            "name": .string(name), "description": .string(description), "core": core.map(JSONValue.string) ?? .null,
            "tools": .array(tools.map(JSONValue.string)), "trigger": trigger.json, "origin": .string(origin),
            "system_prompt": .string(systemPrompt), "input_schema": inputSchema, "output_schema": outputSchema,
        ])
    }
}

/// When a specialist runs without being asked.
public enum SpecialistTrigger: Sendable, Equatable {
    /// Only when asked (CLI, HTTP, MCP).
    case onDemand
    /// Every `interval` seconds inside `onebit serve`, with `input`.
    case schedule(interval: Int, input: JSONValue)
    /// Whenever `repository`'s `HEAD` moves (polled every `interval` seconds) inside `onebit serve`; the run's
    /// input is `input` with `repository` and `commit` set.
    case gitCommit(repository: String, interval: Int, input: JSONValue)

    /// The trigger's kind as its TOML spelling.
    public var kind: String {
        switch self {
        case .onDemand: "on-demand"
        case .schedule: "schedule"
        case .gitCommit: "git-commit"
        }
    }

    /// The trigger as JSON.
    public var json: JSONValue {
        switch self {
        case .onDemand:
            .object(["kind": .string(kind)])
        case .schedule(let interval, let input):
            .object(["kind": .string(kind), "interval": .integer(interval), "input": input])
        case .gitCommit(let repository, let interval, let input):
            .object([
                "kind": .string(kind), "repository": .string(repository), "interval": .integer(interval),
                "input": input,
            ])
        }
    }
}
