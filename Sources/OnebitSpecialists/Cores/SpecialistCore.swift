import OnebitModel
import OrderedCollections

/// What a deterministic core found: the report's substance, and what the model is asked to put into words.
public struct CoreResult: Sendable, Equatable {
    /// Every output field but the one the model writes, in schema order.
    public var fields: OrderedDictionary<String, JSONValue>
    /// The output field the model writes (`explanation`, `summary`).
    public var textField: String
    /// The facts, in a few lines, that the model explains.
    public var facts: String
    /// The text used when the model's text cannot be had (it ran out of room); states the facts plainly.
    public var fallbackText: String
    /// Most characters of the model's text when the input asks for fewer than the output schema allows.
    public var textLimit: Int?

    /// Describes a result.
    public init(
        fields: OrderedDictionary<String, JSONValue>, textField: String, facts: String, fallbackText: String,
        textLimit: Int? = nil
    ) {
        self.fields = fields
        self.textField = textField
        self.facts = facts
        self.fallbackText = fallbackText
        self.textLimit = textLimit
    }
}

/// A deterministic computation behind a specialist; the model only explains its result.
public protocol SpecialistCore: Sendable {
    /// Computes the result for `input`, which already follows the specialist's input schema.
    func run(_ input: JSONValue, tools: ToolBox) async throws(SpecialistError) -> CoreResult
}

/// The cores definitions can name with `core = "..."`.
public enum SpecialistCores {
    /// Every core's name.
    public static let names: Set<String> = ["magistrate", "librarian", "quartermaster", "anvil", "sentinel", "scribe"]

    /// The core named `name`.
    public static func core(named name: String) -> (any SpecialistCore)? {
        switch name {
        case "magistrate": MagistrateCore()
        case "librarian": LibrarianCore()
        case "quartermaster": QuartermasterCore()
        case "anvil": AnvilCore()
        case "sentinel": SentinelCore()
        case "scribe": ScribeCore()
        default: nil
        }
    }
}

extension JSONValue {
    /// A JSON array of strings.
    static func strings(_ values: [String]) -> JSONValue { .array(values.map(JSONValue.string)) }
}
