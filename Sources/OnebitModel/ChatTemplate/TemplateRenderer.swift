import OrderedCollections

/// Arguments after evaluation.
struct CallArguments {
    var positional: [TemplateValue] = []
    var keywords: OrderedDictionary<String, TemplateValue> = [:]

    /// The argument at `position`, or the keyword `name`, or nil when neither was given.
    func value(_ position: Int, _ name: String) -> TemplateValue? {
        if position < positional.count { return positional[position] }
        return keywords[name]
    }
}

/// Shorthand for an error whose place is filled in by the expression being evaluated.
func renderError(_ message: String) -> TemplateError {
    TemplateError(message: message, line: 0, column: 0)
}

/// Renders a parsed template once. Holds the variable scopes and the output; limits on work, output size and call
/// depth make any template finish in bounded time and memory.
final class TemplateRenderer {
    /// Upper bound on evaluated expressions and loop iterations per render.
    static let maximumSteps = 1_000_000
    /// Upper bound on output (and on any string built while rendering), in UTF-8 bytes.
    static let maximumOutputBytes = 32 << 20
    /// Upper bound on nested macro calls.
    static let maximumCallDepth = 64
    /// `range()` refuses longer ranges, like the sandbox transformers renders in.
    static let maximumRange = 100_000

    private static let globalFunctions: Set<String> = ["range", "namespace", "dict", "raise_exception", "strftime_now"]

    private var scopes: [[String: TemplateValue]]
    private var output = ""
    private var steps = 0
    private var callDepth = 0

    private enum Flow {
        case normal
        case breakLoop
        case continueLoop
    }

    init(context: [String: TemplateValue]) {
        scopes = [context]
    }

    func render(_ nodes: [Node]) throws(TemplateError) -> String {
        _ = try render(nodes: nodes)
        return output
    }

    // MARK: Statements

    private func render(nodes: [Node]) throws(TemplateError) -> Flow {
        for node in nodes {
            let flow = try render(node: node)
            if flow != .normal { return flow }
        }
        return .normal
    }

    private func emit(_ text: String) throws(TemplateError) {
        output += text
        if output.utf8.count > Self.maximumOutputBytes {
            throw renderError("output exceeds \(Self.maximumOutputBytes) bytes")
        }
    }

    private func render(node: Node) throws(TemplateError) -> Flow {
        switch node {
        case .text(let text):
            try emit(text)
        case .output(let expression):
            let value = try evaluate(expression)
            try emit(try located(expression.location) { () throws(TemplateError) in try value.pythonString() })
        case .conditional(let branches, let otherwise):
            for branch in branches where try evaluate(branch.condition).isTruthy {
                return try render(nodes: branch.body)
            }
            return try render(nodes: otherwise)
        case .loop(let loop):
            return try render(loop: loop)
        case .assignment(let target, let expression, let location):
            let value = try evaluate(expression)
            try located(location) { () throws(TemplateError) in try assign(value, to: target) }
        case .blockAssignment(let name, let body):
            let saved = output
            output = ""
            defer { output = saved }
            _ = try render(nodes: body)
            scopes[scopes.count - 1][name] = .string(output)
        case .macro(let definition):
            scopes[scopes.count - 1][definition.name] = .callable(TemplateCallable(.macro(definition)))
        case .breakLoop:
            return .breakLoop
        case .continueLoop:
            return .continueLoop
        }
        return .normal
    }

    private func assign(_ value: TemplateValue, to target: AssignmentTarget) throws(TemplateError) {
        switch target {
        case .names(let names) where names.count == 1:
            scopes[scopes.count - 1][names[0]] = value
        case .names(let names):
            let items = try unpack(value, into: names.count)
            for (name, item) in zip(names, items) { scopes[scopes.count - 1][name] = item }
        case .attribute(let object, let attribute):
            guard case .namespace(let namespace) = lookup(object) else {
                throw renderError("cannot assign attribute on non-namespace object")
            }
            namespace.members[attribute] = value
        }
    }

    private func unpack(_ value: TemplateValue, into count: Int) throws(TemplateError) -> [TemplateValue] {
        let items = try value.iterated()
        if items.count < count {
            throw renderError("not enough values to unpack (expected \(count), got \(items.count))")
        }
        if items.count > count { throw renderError("too many values to unpack (expected \(count))") }
        return items
    }

    private func step() throws(TemplateError) {
        steps += 1
        if steps > Self.maximumSteps { throw renderError("template exceeded \(Self.maximumSteps) evaluation steps") }
    }

    private func render(loop: Loop) throws(TemplateError) -> Flow {
        let iterable = try evaluate(loop.iterable)
        var items = try located(loop.iterable.location) { () throws(TemplateError) in try iterable.iterated() }
        var bindings: [[String: TemplateValue]] = []
        for item in items {
            var binding: [String: TemplateValue] = [:]
            if loop.targets.count == 1 {
                binding[loop.targets[0]] = item
            } else {
                let parts = try located(loop.location) { () throws(TemplateError) in
                    try unpack(item, into: loop.targets.count)
                }
                for (name, part) in zip(loop.targets, parts) { binding[name] = part }
            }
            bindings.append(binding)
        }
        if let filter = loop.filter {
            var kept: [TemplateValue] = []
            var keptBindings: [[String: TemplateValue]] = []
            for (item, binding) in zip(items, bindings) {
                try step()
                scopes.append(binding)
                defer { scopes.removeLast() }
                if try evaluate(filter).isTruthy {
                    kept.append(item)
                    keptBindings.append(binding)
                }
            }
            items = kept
            bindings = keptBindings
        }
        if items.isEmpty { return try render(nodes: loop.otherwise) }
        for (position, binding) in bindings.enumerated() {
            try step()
            var scope = binding
            scope["loop"] = loopObject(position: position, items: items)
            scopes.append(scope)
            defer { scopes.removeLast() }
            if try render(nodes: loop.body) == .breakLoop { break }
        }
        return .normal
    }

    private func loopObject(position: Int, items: [TemplateValue]) -> TemplateValue {
        let length = items.count
        var members: OrderedDictionary<String, TemplateValue> = [
            "index": .integer(position + 1), "index0": .integer(position), "revindex": .integer(length - position),
            "revindex0": .integer(length - position - 1), "first": .bool(position == 0),
            "last": .bool(position == length - 1), "length": .integer(length), "depth": .integer(1),
            "depth0": .integer(0), "cycle": .callable(TemplateCallable(.cycle(index: position))),
        ]
        members["previtem"] = position > 0 ? items[position - 1] : .undefined("there is no previous item")
        members["nextitem"] = position + 1 < length ? items[position + 1] : .undefined("there is no next item")
        return .dictionary(members)
    }

    // MARK: Expressions

    /// Runs `body`; an error it throws without a place gets `location`.
    private func located<T>(
        _ location: SourceLocation, _ body: () throws(TemplateError) -> T
    ) throws(TemplateError) -> T {
        do {
            return try body()
        } catch {
            var placed = error
            if placed.line == 0 {
                placed.line = location.line
                placed.column = location.column
            }
            throw placed
        }
    }

    private func lookup(_ name: String) -> TemplateValue {
        for scope in scopes.reversed() {
            if let value = scope[name] { return value }
        }
        if Self.globalFunctions.contains(name) { return .callable(TemplateCallable(.global(name))) }
        return .undefined("'\(name)' is undefined")
    }

    func evaluate(_ expression: Expression) throws(TemplateError) -> TemplateValue {
        try step()
        return try located(expression.location) { () throws(TemplateError) in try evaluateKind(expression.kind) }
    }

    private func evaluateKind(_ kind: Expression.Kind) throws(TemplateError) -> TemplateValue {
        switch kind {
        case .constant(let constant):
            return TemplateValue(constant)
        case .list(let items):
            var values: [TemplateValue] = []
            for item in items { values.append(try evaluate(item)) }
            return .list(values)
        case .dictionary(let entries):
            var members = OrderedDictionary<String, TemplateValue>()
            for entry in entries {
                guard case .string(let key) = try evaluate(entry.key) else {
                    throw renderError("only string keys are supported in dict literals")
                }
                members[key] = try evaluate(entry.value)
            }
            return .dictionary(members)
        case .name(let name):
            return lookup(name)
        case .attribute(let object, let name):
            return try Self.attribute(name, of: try evaluate(object))
        case .subscripted(let object, let key):
            return try Self.item(try evaluate(key), of: try evaluate(object))
        case .slice(let object, let start, let stop, let stride):
            let value = try evaluate(object)
            return try Self.slice(
                value, start: try start.map(evaluate), stop: try stop.map(evaluate), step: try stride.map(evaluate))
        case .call(let callee, let arguments):
            let function = try evaluate(callee)
            return try call(function, with: try evaluate(arguments))
        case .filter(let value, let name, let arguments):
            return try TemplateFilters.apply(
                name, to: try evaluate(value), with: try evaluate(arguments), renderer: self)
        case .test(let value, let name, let arguments, let negated):
            let passed = try TemplateTests.apply(name, to: try evaluate(value), with: try evaluate(arguments))
            return .bool(passed != negated)
        case .unary(let operation, let operand):
            return try Self.apply(operation, to: try evaluate(operand))
        case .binary(.and, let left, let right):
            let first = try evaluate(left)
            return first.isTruthy ? try evaluate(right) : first
        case .binary(.or, let left, let right):
            let first = try evaluate(left)
            return first.isTruthy ? first : try evaluate(right)
        case .binary(let operation, let left, let right):
            return try Arithmetic.apply(operation, try evaluate(left), try evaluate(right))
        case .comparison(let first, let operations):
            var left = try evaluate(first)
            for (operation, rightExpression) in operations {
                let right = try evaluate(rightExpression)
                guard try Arithmetic.compare(operation, left, right) else { return .bool(false) }
                left = right
            }
            return .bool(true)
        case .conditional(let condition, let then, let otherwise):
            if try evaluate(condition).isTruthy { return try evaluate(then) }
            guard let otherwise else { return .undefined("the inline if expression evaluated to false") }
            return try evaluate(otherwise)
        }
    }

    private func evaluate(_ arguments: Arguments) throws(TemplateError) -> CallArguments {
        var result = CallArguments()
        for argument in arguments.positional { result.positional.append(try evaluate(argument)) }
        for (name, argument) in arguments.keywords { result.keywords[name] = try evaluate(argument) }
        return result
    }

    private static func apply(_ operation: UnaryOperator, to value: TemplateValue) throws(TemplateError)
        -> TemplateValue
    {
        if operation == .not { return .bool(!value.isTruthy) }
        if case .undefined(let message) = value { throw renderError(message) }
        switch value.numeric {
        case .integer(let number):
            if operation == .plus { return .integer(number) }
            guard number != Int.min else { throw renderError("integer overflow") }
            return .integer(-number)
        case .double(let number):
            return .double(operation == .plus ? number : -number)
        case nil:
            throw renderError("bad operand type for unary \(operation == .plus ? "+" : "-"): '\(value.typeName)'")
        }
    }

    /// Jinja's attribute lookup: methods of the Python type first, then dict keys.
    static func attribute(_ name: String, of value: TemplateValue) throws(TemplateError) -> TemplateValue {
        switch value {
        case .undefined(let message):
            throw renderError(message)
        case .namespace(let namespace):
            return namespace.members[name] ?? .undefined("'Namespace' object has no attribute '\(name)'")
        case .dictionary(let members):
            if TemplateMethods.isMethod(name, of: value) {
                return .callable(TemplateCallable(.method(receiver: value, name: name)))
            }
            return members[name] ?? .undefined("'dict object' has no attribute '\(name)'")
        default:
            if TemplateMethods.isMethod(name, of: value) {
                return .callable(TemplateCallable(.method(receiver: value, name: name)))
            }
            return .undefined("'\(value.typeName) object' has no attribute '\(name)'")
        }
    }

    /// Jinja's subscript: the item first, then an attribute of that name.
    static func item(_ key: TemplateValue, of value: TemplateValue) throws(TemplateError) -> TemplateValue {
        switch (value, key) {
        case (.undefined(let message), _):
            throw renderError(message)
        case (.dictionary(let members), .string(let name)):
            if let member = members[name] { return member }
            return .undefined("'dict object' has no attribute '\(name)'")
        case (.list(let items), _):
            if case .integer(let position)? = key.numeric {
                let resolved = position < 0 ? position + items.count : position
                if resolved >= 0 && resolved < items.count { return items[resolved] }
                return .undefined("list object has no element \(position)")
            }
        case (.string(let text), _):
            if case .integer(let position)? = key.numeric {
                let scalars = Array(text.unicodeScalars)
                let resolved = position < 0 ? position + scalars.count : position
                if resolved >= 0 && resolved < scalars.count { return .string(String(scalars[resolved])) }
                return .undefined("str object has no element \(position)")
            }
        default:
            break
        }
        if case .string(let name) = key { return try attribute(name, of: value) }
        return .undefined("'\(value.typeName) object' has no element \(try key.pythonRepresentation())")
    }

    /// Python's slice semantics (`[1:]`, `[::-1]`) on lists and strings.
    static func slice(
        _ value: TemplateValue, start: TemplateValue?, stop: TemplateValue?, step: TemplateValue?
    ) throws(TemplateError) -> TemplateValue {
        func bound(_ bound: TemplateValue?) throws(TemplateError) -> Int? {
            guard let bound, !bound.isUndefined else { return nil }
            if case .none = bound { return nil }
            guard case .integer(let number)? = bound.numeric else {
                throw renderError("slice indices must be integers or None")
            }
            return number
        }
        let stride = try bound(step) ?? 1
        guard stride != 0 else { throw renderError("slice step cannot be zero") }
        func indices(count: Int) throws(TemplateError) -> [Int] {
            let (lower, upper) = stride > 0 ? (0, count) : (-1, count - 1)
            func clamp(_ index: Int?, _ fallback: Int) -> Int {
                guard var index else { return fallback }
                if index < 0 {
                    index += count
                    return Swift.max(index, lower)
                }
                return Swift.min(index, upper)
            }
            var position = clamp(try bound(start), stride > 0 ? lower : upper)
            let end = clamp(try bound(stop), stride > 0 ? upper : lower)
            var result: [Int] = []
            while stride > 0 ? position < end : position > end {
                result.append(position)
                position += stride
            }
            return result
        }
        switch value {
        case .undefined(let message):
            throw renderError(message)
        case .list(let items):
            return .list(try indices(count: items.count).map { items[$0] })
        case .string(let text):
            let scalars = Array(text.unicodeScalars)
            var out = String.UnicodeScalarView()
            for index in try indices(count: scalars.count) { out.append(scalars[index]) }
            return .string(String(out))
        default:
            throw renderError("'\(value.typeName)' object is not subscriptable")
        }
    }

    // MARK: Calls

    func call(_ function: TemplateValue, with arguments: CallArguments) throws(TemplateError) -> TemplateValue {
        guard case .callable(let callable) = function else {
            if case .undefined(let message) = function { throw renderError(message) }
            throw renderError("'\(function.typeName)' object is not callable")
        }
        switch callable.kind {
        case .global(let name):
            return try TemplateGlobals.call(name, with: arguments)
        case .method(let receiver, let name):
            return try TemplateMethods.call(name, on: receiver, with: arguments)
        case .cycle(let index):
            guard !arguments.positional.isEmpty else { throw renderError("no items for cycling given") }
            return arguments.positional[index % arguments.positional.count]
        case .macro(let definition):
            return try call(definition, with: arguments)
        }
    }

    private func call(_ macro: MacroDefinition, with arguments: CallArguments) throws(TemplateError) -> TemplateValue {
        guard callDepth < Self.maximumCallDepth else { throw renderError("macro calls are nested too deeply") }
        if arguments.positional.count > macro.parameters.count {
            throw renderError("macro '\(macro.name)' takes not more than \(macro.parameters.count) argument(s)")
        }
        let names = Set(macro.parameters.map(\.name))
        if let unknown = arguments.keywords.keys.first(where: { !names.contains($0) }) {
            throw renderError("macro '\(macro.name)' takes no keyword argument '\(unknown)'")
        }
        let savedScopes = scopes
        let savedOutput = output
        callDepth += 1
        defer {
            callDepth -= 1
            scopes = savedScopes
            output = savedOutput
        }
        scopes = [scopes[0], [:]]
        for (position, parameter) in macro.parameters.enumerated() {
            let value: TemplateValue
            if let given = arguments.value(position, parameter.name) {
                value = given
            } else if let defaultValue = parameter.defaultValue {
                value = try evaluate(defaultValue)
            } else {
                value = .undefined("'\(parameter.name)' is undefined")
            }
            scopes[1][parameter.name] = value
        }
        output = ""
        _ = try render(nodes: macro.body)
        return .string(output)
    }

    /// Lets filters such as `map` and `select` apply other filters and tests.
    func applyFilter(_ name: String, to value: TemplateValue, with arguments: CallArguments) throws(TemplateError)
        -> TemplateValue
    {
        try step()
        return try TemplateFilters.apply(name, to: value, with: arguments, renderer: self)
    }
}
