import OnebitModel

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// What one run of a specialist produced.
public struct SpecialistReport: Sendable, Equatable {
    /// Unique, sortable by time: `NAME-YYYYMMDDTHHMMSSZ-RANDOM`.
    public var id: String
    /// The specialist's name.
    public var specialist: String
    /// What started the run: `on-demand`, `schedule` or `git-commit`.
    public var trigger: String
    /// When the run started, ISO 8601 in UTC (`2026-11-26T18:40:00Z`).
    public var createdAt: String
    /// Seconds the run took.
    public var seconds: Double
    /// The input it ran on.
    public var input: JSONValue
    /// The output, which follows the specialist's output schema.
    public var output: JSONValue
    /// Whether the model wrote the text field (`false`: the model ran out of room and the core's plain text stands).
    public var modelWritten: Bool

    /// Describes a report.
    public init(
        id: String, specialist: String, trigger: String, createdAt: String, seconds: Double, input: JSONValue,
        output: JSONValue, modelWritten: Bool
    ) {
        self.id = id
        self.specialist = specialist
        self.trigger = trigger
        self.createdAt = createdAt
        self.seconds = seconds
        self.input = input
        self.output = output
        self.modelWritten = modelWritten
    }

    /// The report as JSON (what the API, MCP and the report files hold).
    public var json: JSONValue {
        .object([
            "id": .string(id), "specialist": .string(specialist), "trigger": .string(trigger),
            "created_at": .string(createdAt), "seconds": .number(seconds), "model_written": .bool(modelWritten),
            "input": input, "output": output,
        ])
    }

    /// Reads a report back from its JSON; `nil` when a field is missing.
    public init?(json: JSONValue) {
        guard let id = json["id"]?.stringValue, let specialist = json["specialist"]?.stringValue,
            let trigger = json["trigger"]?.stringValue, let createdAt = json["created_at"]?.stringValue,
            let input = json["input"], let output = json["output"]
        else { return nil }
        self.init(
            id: id, specialist: specialist, trigger: trigger, createdAt: createdAt,
            seconds: json["seconds"]?.doubleValue ?? 0, input: input, output: output,
            modelWritten: json["model_written"]?.boolValue ?? false)
    }

    /// A new id for a run of `specialist` starting now.
    static func makeID(specialist: String, at time: time_t) -> String {
        let stamp = timestamp(time).filter { $0 != "-" && $0 != ":" }
        let random = String(UInt32.random(in: 0...UInt32.max), radix: 16)
        return "\(specialist)-\(stamp)-\(String(repeating: "0", count: 8 - random.count))\(random)"
    }

    /// `time` as ISO 8601 in UTC.
    static func timestamp(_ time: time_t) -> String {
        var seconds = time
        var parts = tm()
        gmtime_r(&seconds, &parts)
        func two(_ value: Int32) -> String { value < 10 ? "0\(value)" : "\(value)" }
        return "\(parts.tm_year + 1900)-\(two(parts.tm_mon + 1))-\(two(parts.tm_mday))T\(two(parts.tm_hour)):"
            + "\(two(parts.tm_min)):\(two(parts.tm_sec))Z"
    }
}
