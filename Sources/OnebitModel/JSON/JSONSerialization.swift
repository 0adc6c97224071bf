/// Writes ``JSONValue`` back to text.
extension JSONValue {
    /// Compact JSON text (`{"a":1}`), with keys in stored order and non-ASCII written as UTF-8.
    public var jsonText: String {
        var out = ""
        JSONValue.write(self, into: &out)
        return out
    }

    static func write(_ value: JSONValue, into out: inout String) {
        switch value {
        case .null: out += "null"
        case .bool(let b): out += b ? "true" : "false"
        case .integer(let i): out += String(i)
        case .number(let d):
            if d.isFinite, d.rounded() == d, abs(d) < 1e16 { out += String(Int(d)) + ".0" } else { out += "\(d)" }
        case .string(let s): writeString(s, into: &out)
        case .array(let elements):
            out += "["
            for (i, element) in elements.enumerated() {
                if i > 0 { out += "," }
                write(element, into: &out)
            }
            out += "]"
        case .object(let members):
            out += "{"
            for (i, (key, member)) in members.enumerated() {
                if i > 0 { out += "," }
                writeString(key, into: &out)
                out += ":"
                write(member, into: &out)
            }
            out += "}"
        }
    }

    /// Escapes a string the way JSON requires. Non-ASCII is kept as UTF-8, or, with `escapingNonASCII` (Python's
    /// `ensure_ascii`), written as `\uXXXX` escapes, with surrogate pairs beyond the Basic Multilingual Plane.
    public static func writeString(_ s: String, escapingNonASCII: Bool = false, into out: inout String) {
        out += "\""
        for scalar in s.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case "\u{08}": out += "\\b"
            case "\u{0C}": out += "\\f"
            default:
                if scalar.value < 0x20 || (escapingNonASCII && scalar.value >= 0x7F && scalar.value <= 0xFFFF) {
                    out += hexEscape(scalar.value)
                } else if escapingNonASCII && scalar.value > 0xFFFF {
                    let offset = scalar.value - 0x10000
                    out += hexEscape(0xD800 + (offset >> 10)) + hexEscape(0xDC00 + (offset & 0x3FF))
                } else {
                    out.unicodeScalars.append(scalar)
                }
            }
        }
        out += "\""
    }

    private static func hexEscape(_ value: UInt32) -> String {
        let hex = String(value, radix: 16)
        return "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
    }
}
