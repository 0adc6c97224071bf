/// A position in template source: 1-based line and column (columns count Unicode scalars).
struct SourceLocation: Sendable, Equatable {
    var line: Int
    var column: Int
}

/// A literal value written in the template.
enum Constant: Sendable {
    case none
    case bool(Bool)
    case integer(Int)
    case double(Double)
    case string(String)
}

/// Binary operators other than comparisons; `and`/`or` short-circuit like Python's.
enum BinaryOperator: String, Sendable {
    case add = "+"
    case subtract = "-"
    case multiply = "*"
    case divide = "/"
    case floorDivide = "//"
    case modulo = "%"
    case power = "**"
    case concatenate = "~"
    case and
    case or
}

/// Comparison operators; Jinja chains them like Python (`a < b < c`).
enum ComparisonOperator: String, Sendable {
    case equal = "=="
    case notEqual = "!="
    case less = "<"
    case lessOrEqual = "<="
    case greater = ">"
    case greaterOrEqual = ">="
    case contains = "in"
    case notContains = "not in"
}

/// Unary operators.
enum UnaryOperator: Sendable {
    case not
    case negate
    case plus
}

/// Arguments of a call, filter or test: positional first, then keywords.
struct Arguments: Sendable {
    var positional: [Expression] = []
    var keywords: [(name: String, value: Expression)] = []
}

/// An expression node with the place it was written, so render errors can point at it.
struct Expression: Sendable {
    indirect enum Kind: Sendable {
        case constant(Constant)
        case list([Expression])
        case dictionary([(key: Expression, value: Expression)])
        case name(String)
        case attribute(Expression, String)
        case subscripted(Expression, Expression)
        case slice(Expression, start: Expression?, stop: Expression?, step: Expression?)
        case call(Expression, Arguments)
        case filter(Expression, name: String, Arguments)
        case test(Expression, name: String, Arguments, negated: Bool)
        case unary(UnaryOperator, Expression)
        case binary(BinaryOperator, Expression, Expression)
        case comparison(Expression, [(ComparisonOperator, Expression)])
        case conditional(condition: Expression, then: Expression, otherwise: Expression?)
    }

    var kind: Kind
    var location: SourceLocation
}

/// Where `{% set %}` stores its value.
enum AssignmentTarget: Sendable {
    /// One name, or several to unpack a sequence into (`{% set a, b = pair %}`).
    case names([String])
    /// An attribute of a `namespace()` object (`{% set ns.found = true %}`).
    case attribute(object: String, attribute: String)
}

/// A macro definition: parameters with optional defaults, and its body.
struct MacroDefinition: Sendable {
    var name: String
    var parameters: [(name: String, defaultValue: Expression?)]
    var body: [Node]
}

/// A statement or piece of output in a parsed template.
indirect enum Node: Sendable {
    case text(String)
    case output(Expression)
    case conditional(branches: [(condition: Expression, body: [Node])], otherwise: [Node])
    case loop(Loop)
    case assignment(AssignmentTarget, Expression, SourceLocation)
    case blockAssignment(String, [Node])
    case macro(MacroDefinition)
    case breakLoop
    case continueLoop
}

/// A `{% for %}` loop: targets, what it iterates, an optional inline filter, the body and the `{% else %}` body.
struct Loop: Sendable {
    var targets: [String]
    var iterable: Expression
    var filter: Expression?
    var body: [Node]
    var otherwise: [Node]
    var location: SourceLocation
}
