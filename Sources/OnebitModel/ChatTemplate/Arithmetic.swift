/// Python's arithmetic, concatenation and comparison operators on template values.
enum Arithmetic {
    static func apply(
        _ operation: BinaryOperator, _ left: TemplateValue, _ right: TemplateValue
    ) throws(TemplateError) -> TemplateValue {
        if operation == .concatenate {
            return try checked(.string(try left.pythonString() + right.pythonString()))
        }
        if case .undefined(let message) = left { throw renderError(message) }
        if case .undefined(let message) = right { throw renderError(message) }
        if let a = left.numeric, let b = right.numeric {
            return try numeric(operation, a, b)
        }
        switch (operation, left, right) {
        case (.add, .string(let a), .string(let b)):
            return try checked(.string(a + b))
        case (.add, .list(let a), .list(let b)):
            return .list(a + b)
        case (.multiply, .string(let text), _), (.multiply, _, .string(let text)):
            guard case .integer(let count)? = (left.stringValue == nil ? left : right).numeric else { break }
            guard count <= 0 || text.utf8.count <= TemplateRenderer.maximumOutputBytes / count else {
                throw renderError("string repetition is too large")
            }
            return .string(count > 0 ? String(repeating: text, count: count) : "")
        case (.multiply, .list(let items), _), (.multiply, _, .list(let items)):
            guard case .integer(let count)? = (left.typeName == "list" ? right : left).numeric else { break }
            guard count <= 0 || items.count <= TemplateRenderer.maximumRange / count else {
                throw renderError("list repetition is too large")
            }
            return .list(count > 0 ? Array([[TemplateValue]](repeating: items, count: count).joined()) : [])
        default:
            break
        }
        if operation == .add, case .string = left {
            throw renderError("can only concatenate str (not \"\(right.typeName)\") to str")
        }
        throw renderError(
            "unsupported operand type(s) for \(operation.rawValue): '\(left.typeName)' and '\(right.typeName)'")
    }

    private static func checked(_ value: TemplateValue) throws(TemplateError) -> TemplateValue {
        if case .string(let text) = value, text.utf8.count > TemplateRenderer.maximumOutputBytes {
            throw renderError("string is too large")
        }
        return value
    }

    private static func numeric(
        _ operation: BinaryOperator, _ a: TemplateValue.Numeric, _ b: TemplateValue.Numeric
    ) throws(TemplateError) -> TemplateValue {
        if case .integer(let x) = a, case .integer(let y) = b {
            return try integer(operation, x, y)
        }
        let x = a.doubleValue
        let y = b.doubleValue
        switch operation {
        case .add: return .double(x + y)
        case .subtract: return .double(x - y)
        case .multiply: return .double(x * y)
        case .divide:
            guard y != 0 else { throw renderError("float division by zero") }
            return .double(x / y)
        case .floorDivide:
            guard y != 0 else { throw renderError("float floor division by zero") }
            return .double((x / y).rounded(.down))
        case .modulo:
            guard y != 0 else { throw renderError("float modulo") }
            let remainder = x.truncatingRemainder(dividingBy: y)
            return .double(remainder != 0 && (remainder < 0) != (y < 0) ? remainder + y : remainder)
        case .power:
            guard y.rounded() == y, Swift.abs(y) <= 1024 else {
                throw renderError("only whole-number exponents are supported")
            }
            var result = 1.0
            for _ in 0..<Int(Swift.abs(y)) { result *= x }
            return .double(y < 0 ? 1 / result : result)
        default:
            throw renderError("unsupported operator \(operation.rawValue)")
        }
    }

    private static func integer(_ operation: BinaryOperator, _ x: Int, _ y: Int) throws(TemplateError) -> TemplateValue
    {
        func overflow(_ pair: (Int, Bool)) throws(TemplateError) -> TemplateValue {
            if pair.1 { throw renderError("integer overflow") }
            return .integer(pair.0)
        }
        switch operation {
        case .add: return try overflow(x.addingReportingOverflow(y))
        case .subtract: return try overflow(x.subtractingReportingOverflow(y))
        case .multiply: return try overflow(x.multipliedReportingOverflow(by: y))
        case .divide:
            guard y != 0 else { throw renderError("division by zero") }
            return .double(Double(x) / Double(y))
        case .floorDivide, .modulo:
            guard y != 0 else { throw renderError("integer division or modulo by zero") }
            guard !(x == Int.min && y == -1) else { throw renderError("integer overflow") }
            var quotient = x / y
            var remainder = x % y
            if remainder != 0 && (remainder < 0) != (y < 0) {
                quotient -= 1
                remainder += y
            }
            return .integer(operation == .floorDivide ? quotient : remainder)
        case .power:
            if y < 0 { return try numeric(.power, .double(Double(x)), .integer(y)) }
            var result = 1
            for _ in 0..<Swift.min(y, 64) {
                let (product, overflowed) = result.multipliedReportingOverflow(by: x)
                if overflowed { throw renderError("integer overflow") }
                result = product
            }
            if y > 64 && Swift.abs(x) > 1 { throw renderError("integer overflow") }
            return .integer(result)
        default:
            throw renderError("unsupported operator \(operation.rawValue)")
        }
    }

    static func compare(
        _ operation: ComparisonOperator, _ left: TemplateValue, _ right: TemplateValue
    ) throws(TemplateError) -> Bool {
        switch operation {
        case .equal: return try left.isEqual(to: right)
        case .notEqual: return !(try left.isEqual(to: right))
        case .contains: return try contains(left, in: right)
        case .notContains: return !(try contains(left, in: right))
        default:
            if case .undefined(let message) = left { throw renderError(message) }
            if case .undefined(let message) = right { throw renderError(message) }
            let order = try left.compare(to: right)
            switch operation {
            case .less: return order < 0
            case .lessOrEqual: return order <= 0
            case .greater: return order > 0
            default: return order >= 0
            }
        }
    }

    /// Python's `in`: substring, list membership, or dict key.
    static func contains(_ needle: TemplateValue, in haystack: TemplateValue) throws(TemplateError) -> Bool {
        switch haystack {
        case .undefined: return false
        case .string(let text):
            guard case .string(let part) = needle else {
                throw renderError("'in <string>' requires string as left operand, not \(needle.typeName)")
            }
            return part.isEmpty || PythonText.find(part, in: text, fromEnd: false) >= 0
        case .list(let items):
            for item in items where try item.isEqual(to: needle) { return true }
            return false
        case .dictionary(let members):
            guard case .string(let key) = needle else { return false }
            return members[key] != nil
        default:
            throw renderError("argument of type '\(haystack.typeName)' is not iterable")
        }
    }
}
