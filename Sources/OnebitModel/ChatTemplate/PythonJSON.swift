/// Python's `json.dumps`, as transformers' `tojson` filter calls it: `ensure_ascii=False` unless asked, `", "` and
/// `": "` separators (`","` between items once indented), keys in stored order unless `sort_keys`.
struct PythonJSON {
    var indent: String?
    var itemSeparator: String
    var keySeparator: String
    var sortKeys = false
    var ensureASCII = false

    init(indent: String?, separators: (item: String, key: String)?, sortKeys: Bool, ensureASCII: Bool) {
        self.indent = indent
        itemSeparator = separators?.item ?? (indent == nil ? ", " : ",")
        keySeparator = separators?.key ?? ": "
        self.sortKeys = sortKeys
        self.ensureASCII = ensureASCII
    }

    func dumps(_ value: JSONValue) -> String {
        var out = ""
        write(value, level: 0, into: &out)
        return out
    }

    private func newline(level: Int, into out: inout String) {
        guard let indent else { return }
        out += "\n"
        for _ in 0..<level { out += indent }
    }

    private func write(_ value: JSONValue, level: Int, into out: inout String) {
        switch value {
        case .null: out += "null"
        case .bool(let flag): out += flag ? "true" : "false"
        case .integer(let number): out += String(number)
        case .number(let number):
            if number.isNaN {
                out += "NaN"
            } else if number.isInfinite {
                out += number < 0 ? "-Infinity" : "Infinity"
            } else {
                out += PythonText.floatRepresentation(number)
            }
        case .string(let text): writeString(text, into: &out)
        case .array(let elements):
            guard !elements.isEmpty else {
                out += "[]"
                return
            }
            out += "["
            for (position, element) in elements.enumerated() {
                if position > 0 { out += itemSeparator }
                newline(level: level + 1, into: &out)
                write(element, level: level + 1, into: &out)
            }
            newline(level: level, into: &out)
            out += "]"
        case .object(let members):
            guard !members.isEmpty else {
                out += "{}"
                return
            }
            out += "{"
            let keys =
                sortKeys
                ? members.keys.sorted { $0.unicodeScalars.lexicographicallyPrecedes($1.unicodeScalars) }
                : Array(members.keys)
            for (position, key) in keys.enumerated() {
                if position > 0 { out += itemSeparator }
                newline(level: level + 1, into: &out)
                writeString(key, into: &out)
                out += keySeparator
                write(members[key] ?? .null, level: level + 1, into: &out)
            }
            newline(level: level, into: &out)
            out += "}"
        }
    }

    private func writeString(_ text: String, into out: inout String) {
        JSONValue.writeString(text, escapingNonASCII: ensureASCII, into: &out)
    }
}
