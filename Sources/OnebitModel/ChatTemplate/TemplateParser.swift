/// Builds the syntax tree from tokens, with Jinja's operator precedence. Anything outside the supported subset
/// (unknown tags, filters or tests) is rejected here, before any render, with the place it was written.
struct TemplateParser {
    private var tokens: [Token]
    private var index = 0
    private var loopDepth = 0
    private var nesting = 0

    /// Deeper nesting than this is refused, so a hostile template cannot exhaust the stack while being parsed.
    static let maximumNesting = 200

    init(tokens: [Token]) {
        self.tokens = tokens
    }

    static func parse(_ source: String) throws(TemplateError) -> [Node] {
        var parser = TemplateParser(tokens: try TemplateLexer.tokenize(source))
        let (nodes, _) = try parser.parseBody(until: [])
        return nodes
    }

    // MARK: Token helpers

    private var current: Token { tokens[index] }

    private func error(_ message: String, at token: Token? = nil) -> TemplateError {
        let place = (token ?? current).location
        return TemplateError(message: message, line: place.line, column: place.column)
    }

    private mutating func advance() -> Token {
        let token = tokens[index]
        if index < tokens.count - 1 { index += 1 }
        return token
    }

    private func isSymbol(_ symbol: String) -> Bool {
        current.kind == .symbol(symbol)
    }

    private func isName(_ name: String) -> Bool {
        current.kind == .name(name)
    }

    private mutating func skip(symbol: String) -> Bool {
        guard isSymbol(symbol) else { return false }
        index += 1
        return true
    }

    private mutating func skip(name: String) -> Bool {
        guard isName(name) else { return false }
        index += 1
        return true
    }

    private mutating func expect(symbol: String) throws(TemplateError) {
        guard skip(symbol: symbol) else { throw error("expected '\(symbol)', found \(describe(current))") }
    }

    private mutating func expectName() throws(TemplateError) -> String {
        guard case .name(let name) = current.kind else { throw error("expected a name, found \(describe(current))") }
        index += 1
        return name
    }

    private mutating func expectStatementEnd() throws(TemplateError) {
        guard current.kind == .statementEnd else {
            throw error("expected end of statement '%}', found \(describe(current))")
        }
        index += 1
    }

    private func describe(_ token: Token) -> String {
        switch token.kind {
        case .text: return "text"
        case .outputBegin: return "'{{'"
        case .outputEnd: return "'}}'"
        case .statementBegin: return "'{%'"
        case .statementEnd: return "'%}'"
        case .name(let name): return "'\(name)'"
        case .string: return "a string"
        case .integer, .double: return "a number"
        case .symbol(let symbol): return "'\(symbol)'"
        case .end: return "end of template"
        }
    }

    private mutating func nest() throws(TemplateError) {
        nesting += 1
        if nesting > Self.maximumNesting { throw error("template nesting is too deep") }
    }

    // MARK: Statements

    /// Parses nodes until a statement whose tag name is in `endTags`; returns the nodes and that name (the rest of
    /// its tag is left for the caller). With no end tags, parses to the end of the template.
    private mutating func parseBody(until endTags: Set<String>) throws(TemplateError) -> ([Node], String?) {
        try nest()
        defer { nesting -= 1 }
        var nodes: [Node] = []
        while true {
            let token = advance()
            switch token.kind {
            case .text(let text):
                nodes.append(.text(text))
            case .outputBegin:
                let expression = try parseExpression()
                guard current.kind == .outputEnd else {
                    throw error("expected end of print statement '}}', found \(describe(current))")
                }
                index += 1
                nodes.append(.output(expression))
            case .statementBegin:
                guard case .name(let tag) = current.kind else { throw error("expected a tag name") }
                if endTags.contains(tag) {
                    index += 1
                    return (nodes, tag)
                }
                nodes.append(contentsOf: try parseStatement())
            case .end:
                if let expected = endTags.sorted().first(where: { $0.hasPrefix("end") }) {
                    throw error("unexpected end of template: expected '\(expected)'", at: token)
                }
                return (nodes, nil)
            default:
                throw error("unexpected \(describe(token))", at: token)
            }
        }
    }

    private mutating func parseStatement() throws(TemplateError) -> [Node] {
        let tagToken = advance()
        guard case .name(let tag) = tagToken.kind else { throw error("expected a tag name", at: tagToken) }
        switch tag {
        case "if": return [try parseIf()]
        case "for": return [.loop(try parseFor(at: tagToken.location))]
        case "set": return [try parseSet(at: tagToken.location)]
        case "macro": return [.macro(try parseMacro())]
        case "break", "continue":
            guard loopDepth > 0 else { throw error("'\(tag)' is only allowed inside a loop", at: tagToken) }
            try expectStatementEnd()
            return [tag == "break" ? .breakLoop : .continueLoop]
        case "generation":
            // transformers' `{% generation %}` marks assistant text for its token mask; it renders its body.
            try expectStatementEnd()
            let (body, _) = try parseBody(until: ["endgeneration"])
            try expectStatementEnd()
            return body
        default:
            throw error("unknown tag '\(tag)'", at: tagToken)
        }
    }

    private mutating func parseIf() throws(TemplateError) -> Node {
        var branches: [(condition: Expression, body: [Node])] = []
        var condition = try parseExpression()
        while true {
            try expectStatementEnd()
            let (body, tag) = try parseBody(until: ["elif", "else", "endif"])
            branches.append((condition, body))
            switch tag {
            case "elif":
                condition = try parseExpression()
            case "else":
                try expectStatementEnd()
                let (otherwise, _) = try parseBody(until: ["endif"])
                try expectStatementEnd()
                return .conditional(branches: branches, otherwise: otherwise)
            default:
                try expectStatementEnd()
                return .conditional(branches: branches, otherwise: [])
            }
        }
    }

    private mutating func parseFor(at location: SourceLocation) throws(TemplateError) -> Loop {
        var targets = [try expectName()]
        while skip(symbol: ",") { targets.append(try expectName()) }
        guard skip(name: "in") else { throw error("expected 'in', found \(describe(current))") }
        let iterable = try parseExpression(allowConditional: false)
        var filter: Expression?
        if skip(name: "if") { filter = try parseExpression() }
        if isName("recursive") { throw error("recursive loops are not supported") }
        try expectStatementEnd()
        loopDepth += 1
        let (body, tag) = try parseBody(until: ["endfor", "else"])
        loopDepth -= 1
        var otherwise: [Node] = []
        if tag == "else" {
            try expectStatementEnd()
            (otherwise, _) = try parseBody(until: ["endfor"])
        }
        try expectStatementEnd()
        return Loop(
            targets: targets, iterable: iterable, filter: filter, body: body, otherwise: otherwise,
            location: location)
    }

    private mutating func parseSet(at location: SourceLocation) throws(TemplateError) -> Node {
        let first = try expectName()
        var target = AssignmentTarget.names([first])
        if skip(symbol: ".") {
            target = .attribute(object: first, attribute: try expectName())
        } else if isSymbol(",") {
            var names = [first]
            while skip(symbol: ",") { names.append(try expectName()) }
            target = .names(names)
        }
        if skip(symbol: "=") {
            let value = try parseTupleOrExpression()
            try expectStatementEnd()
            return .assignment(target, value, location)
        }
        guard case .names(let names) = target, names.count == 1 else {
            throw error("expected '=' in set statement")
        }
        try expectStatementEnd()
        let (body, _) = try parseBody(until: ["endset"])
        try expectStatementEnd()
        return .blockAssignment(first, body)
    }

    private mutating func parseMacro() throws(TemplateError) -> MacroDefinition {
        let name = try expectName()
        var parameters: [(name: String, defaultValue: Expression?)] = []
        try expect(symbol: "(")
        while !skip(symbol: ")") {
            if !parameters.isEmpty { try expect(symbol: ",") }
            if skip(symbol: ")") { break }
            let parameter = try expectName()
            var defaultValue: Expression?
            if skip(symbol: "=") {
                defaultValue = try parseExpression()
            } else if parameters.last?.defaultValue != nil {
                throw error("parameter '\(parameter)' without a default follows one with a default")
            }
            parameters.append((parameter, defaultValue))
        }
        try expectStatementEnd()
        let savedDepth = loopDepth
        loopDepth = 0
        let (body, _) = try parseBody(until: ["endmacro"])
        loopDepth = savedDepth
        if case .name = current.kind { index += 1 }
        try expectStatementEnd()
        return MacroDefinition(name: name, parameters: parameters, body: body)
    }

    // MARK: Expressions

    /// `a, b` without brackets (as in `{% set x = 1, 2 %}`) makes a tuple, which this engine keeps as a list.
    private mutating func parseTupleOrExpression() throws(TemplateError) -> Expression {
        let first = try parseExpression()
        guard isSymbol(",") else { return first }
        var items = [first]
        while skip(symbol: ",") {
            if current.kind == .statementEnd { break }
            items.append(try parseExpression())
        }
        return Expression(kind: .list(items), location: first.location)
    }

    mutating func parseExpression(allowConditional: Bool = true) throws(TemplateError) -> Expression {
        try nest()
        defer { nesting -= 1 }
        return allowConditional ? try parseConditional() : try parseOr()
    }

    private mutating func parseConditional() throws(TemplateError) -> Expression {
        var value = try parseOr()
        while isName("if") {
            let location = current.location
            index += 1
            let condition = try parseOr()
            var otherwise: Expression?
            if skip(name: "else") { otherwise = try parseConditional() }
            value = Expression(
                kind: .conditional(condition: condition, then: value, otherwise: otherwise), location: location)
        }
        return value
    }

    private mutating func parseOr() throws(TemplateError) -> Expression {
        var left = try parseAnd()
        while isName("or") {
            let location = current.location
            index += 1
            left = Expression(kind: .binary(.or, left, try parseAnd()), location: location)
        }
        return left
    }

    private mutating func parseAnd() throws(TemplateError) -> Expression {
        var left = try parseNot()
        while isName("and") {
            let location = current.location
            index += 1
            left = Expression(kind: .binary(.and, left, try parseNot()), location: location)
        }
        return left
    }

    private mutating func parseNot() throws(TemplateError) -> Expression {
        if isName("not") {
            let location = current.location
            index += 1
            try nest()
            defer { nesting -= 1 }
            return Expression(kind: .unary(.not, try parseNot()), location: location)
        }
        return try parseComparison()
    }

    private mutating func parseComparison() throws(TemplateError) -> Expression {
        let left = try parseSum()
        var operations: [(ComparisonOperator, Expression)] = []
        while true {
            if case .symbol(let symbol) = current.kind, let operation = ComparisonOperator(rawValue: symbol),
                operation != .contains && operation != .notContains
            {
                index += 1
                operations.append((operation, try parseSum()))
            } else if skip(name: "in") {
                operations.append((.contains, try parseSum()))
            } else if isName("not"), index + 1 < tokens.count, tokens[index + 1].kind == .name("in") {
                index += 2
                operations.append((.notContains, try parseSum()))
            } else {
                break
            }
        }
        if operations.isEmpty { return left }
        return Expression(kind: .comparison(left, operations), location: left.location)
    }

    private mutating func parseSum() throws(TemplateError) -> Expression {
        var left = try parseConcatenation()
        while case .symbol(let symbol) = current.kind, symbol == "+" || symbol == "-" {
            let location = current.location
            index += 1
            let right = try parseConcatenation()
            left = Expression(kind: .binary(symbol == "+" ? .add : .subtract, left, right), location: location)
        }
        return left
    }

    private mutating func parseConcatenation() throws(TemplateError) -> Expression {
        var left = try parseProduct()
        while isSymbol("~") {
            let location = current.location
            index += 1
            left = Expression(kind: .binary(.concatenate, left, try parseProduct()), location: location)
        }
        return left
    }

    private mutating func parseProduct() throws(TemplateError) -> Expression {
        var left = try parsePower()
        while case .symbol(let symbol) = current.kind, ["*", "/", "//", "%"].contains(symbol),
            let operation = BinaryOperator(rawValue: symbol)
        {
            let location = current.location
            index += 1
            left = Expression(kind: .binary(operation, left, try parsePower()), location: location)
        }
        return left
    }

    private mutating func parsePower() throws(TemplateError) -> Expression {
        var left = try parseUnary()
        while isSymbol("**") {
            let location = current.location
            index += 1
            left = Expression(kind: .binary(.power, left, try parseUnary()), location: location)
        }
        return left
    }

    private mutating func parseUnary(withFilters: Bool = true) throws(TemplateError) -> Expression {
        try nest()
        defer { nesting -= 1 }
        var value: Expression
        let location = current.location
        if skip(symbol: "-") {
            value = Expression(kind: .unary(.negate, try parseUnary(withFilters: false)), location: location)
        } else if skip(symbol: "+") {
            value = Expression(kind: .unary(.plus, try parseUnary(withFilters: false)), location: location)
        } else {
            value = try parsePrimary()
        }
        value = try parsePostfix(value)
        if withFilters { value = try parseFiltersAndTests(value) }
        return value
    }

    private mutating func parsePrimary() throws(TemplateError) -> Expression {
        let token = advance()
        let location = token.location
        switch token.kind {
        case .name(let name):
            switch name {
            case "true", "True": return Expression(kind: .constant(.bool(true)), location: location)
            case "false", "False": return Expression(kind: .constant(.bool(false)), location: location)
            case "none", "None": return Expression(kind: .constant(.none), location: location)
            default: return Expression(kind: .name(name), location: location)
            }
        case .string(var text):
            // Adjacent string literals concatenate, as in Python.
            while case .string(let more) = current.kind {
                text += more
                index += 1
            }
            return Expression(kind: .constant(.string(text)), location: location)
        case .integer(let value):
            return Expression(kind: .constant(.integer(value)), location: location)
        case .double(let value):
            return Expression(kind: .constant(.double(value)), location: location)
        case .symbol("("):
            if skip(symbol: ")") { return Expression(kind: .list([]), location: location) }
            let first = try parseExpression()
            if skip(symbol: ")") { return first }
            var items = [first]
            while skip(symbol: ",") {
                if isSymbol(")") { break }
                items.append(try parseExpression())
            }
            try expect(symbol: ")")
            return Expression(kind: .list(items), location: location)
        case .symbol("["):
            var items: [Expression] = []
            while !skip(symbol: "]") {
                if !items.isEmpty {
                    try expect(symbol: ",")
                    if skip(symbol: "]") { break }
                }
                items.append(try parseExpression())
            }
            return Expression(kind: .list(items), location: location)
        case .symbol("{"):
            var entries: [(key: Expression, value: Expression)] = []
            while !skip(symbol: "}") {
                if !entries.isEmpty {
                    try expect(symbol: ",")
                    if skip(symbol: "}") { break }
                }
                let key = try parseExpression()
                try expect(symbol: ":")
                entries.append((key, try parseExpression()))
            }
            return Expression(kind: .dictionary(entries), location: location)
        default:
            throw error("unexpected \(describe(token))", at: token)
        }
    }

    private mutating func parsePostfix(_ base: Expression) throws(TemplateError) -> Expression {
        var value = base
        while true {
            let location = current.location
            if skip(symbol: ".") {
                let token = advance()
                switch token.kind {
                case .name(let name): value = Expression(kind: .attribute(value, name), location: location)
                case .integer(let position):
                    let key = Expression(kind: .constant(.integer(position)), location: token.location)
                    value = Expression(kind: .subscripted(value, key), location: location)
                default: throw error("expected an attribute name after '.'", at: token)
                }
            } else if skip(symbol: "[") {
                value = try parseSubscript(of: value, at: location)
            } else if isSymbol("(") {
                index += 1
                value = Expression(kind: .call(value, try parseArguments()), location: value.location)
            } else {
                return value
            }
        }
    }

    private mutating func parseSubscript(
        of value: Expression, at location: SourceLocation
    ) throws(TemplateError) -> Expression {
        var parts: [Expression?] = []
        var isSlice = false
        var part: Expression?
        while true {
            if skip(symbol: "]") {
                parts.append(part)
                break
            }
            if skip(symbol: ":") {
                isSlice = true
                parts.append(part)
                part = nil
                if parts.count > 2 { throw error("too many ':' in slice") }
                continue
            }
            if part != nil { throw error("expected ']' or ':', found \(describe(current))") }
            part = try parseExpression()
        }
        if !isSlice {
            guard let key = parts[0] else { throw error("empty subscript") }
            return Expression(kind: .subscripted(value, key), location: location)
        }
        while parts.count < 3 { parts.append(nil) }
        return Expression(kind: .slice(value, start: parts[0], stop: parts[1], step: parts[2]), location: location)
    }

    /// Parses call arguments after the opening parenthesis, through the closing one.
    private mutating func parseArguments() throws(TemplateError) -> Arguments {
        var arguments = Arguments()
        while !skip(symbol: ")") {
            if !arguments.positional.isEmpty || !arguments.keywords.isEmpty {
                try expect(symbol: ",")
                if skip(symbol: ")") { break }
            }
            if case .name(let name) = current.kind, index + 1 < tokens.count, tokens[index + 1].kind == .symbol("=") {
                index += 2
                arguments.keywords.append((name, try parseExpression()))
            } else {
                if !arguments.keywords.isEmpty { throw error("positional argument follows keyword argument") }
                if isSymbol("*") || isSymbol("**") { throw error("argument unpacking is not supported") }
                arguments.positional.append(try parseExpression())
            }
        }
        return arguments
    }

    private mutating func parseFiltersAndTests(_ base: Expression) throws(TemplateError) -> Expression {
        var value = base
        while true {
            let location = current.location
            if skip(symbol: "|") {
                let nameToken = current
                var name = try expectName()
                while skip(symbol: ".") { name += "." + (try expectName()) }
                guard TemplateFilters.names.contains(name) else {
                    throw error("no filter named '\(name)'", at: nameToken)
                }
                var arguments = Arguments()
                if skip(symbol: "(") { arguments = try parseArguments() }
                value = Expression(kind: .filter(value, name: name, arguments), location: location)
            } else if skip(name: "is") {
                let negated = skip(name: "not")
                let nameToken = current
                var name = try expectName()
                while skip(symbol: ".") { name += "." + (try expectName()) }
                guard TemplateTests.names.contains(name) else { throw error("no test named '\(name)'", at: nameToken) }
                var arguments = Arguments()
                if skip(symbol: "(") {
                    arguments = try parseArguments()
                } else if takesBareTestArgument() {
                    arguments.positional = [try parsePostfix(try parsePrimary())]
                }
                value = Expression(kind: .test(value, name: name, arguments, negated: negated), location: location)
            } else if isSymbol("(") {
                index += 1
                value = Expression(kind: .call(value, try parseArguments()), location: value.location)
            } else {
                return value
            }
        }
    }

    /// Jinja lets a test take one argument without parentheses (`x is divisibleby 3`, `x is sameas none`).
    private func takesBareTestArgument() -> Bool {
        switch current.kind {
        case .name(let name): return !["else", "or", "and"].contains(name)
        case .string, .integer, .double: return true
        case .symbol(let symbol): return symbol == "(" || symbol == "[" || symbol == "{"
        default: return false
        }
    }
}
