/// The `normalizer` steps of `tokenizer.json` this tokenizer implements, applied in order.
enum NormalizerStep: Sendable {
    /// Unicode canonical composition.
    case nfc
    /// Prepends the text to every non-empty piece.
    case prepend([Unicode.Scalar])
    /// Replaces every non-overlapping occurrence of a literal string, left to right.
    case replace(pattern: [Unicode.Scalar], content: [Unicode.Scalar])
    /// Removes leading and/or trailing white space.
    case strip(left: Bool, right: Bool)

    func apply(_ scalars: [Unicode.Scalar]) -> [Unicode.Scalar] {
        switch self {
        case .nfc:
            if scalars.allSatisfy(\.isASCII) { return scalars }
            var text = String.UnicodeScalarView()
            text.append(contentsOf: scalars)
            // The standard library's own NFC keeps ICU and Foundation out of the binary.
            return Array(String(decoding: String(text)._nfcCodeUnits, as: UTF8.self).unicodeScalars)
        case .prepend(let prefix):
            return scalars.isEmpty ? scalars : prefix + scalars
        case .replace(let pattern, let content):
            guard !pattern.isEmpty else { return scalars }
            var result: [Unicode.Scalar] = []
            var i = 0
            while i < scalars.count {
                if scalars[i] == pattern[0] && scalars[i...].starts(with: pattern) {
                    result.append(contentsOf: content)
                    i += pattern.count
                } else {
                    result.append(scalars[i])
                    i += 1
                }
            }
            return result
        case .strip(let left, let right):
            var start = 0
            var end = scalars.count
            if left { while start < end && scalars[start].properties.isWhitespace { start += 1 } }
            if right { while end > start && scalars[end - 1].properties.isWhitespace { end -= 1 } }
            return Array(scalars[start..<end])
        }
    }
}

extension [NormalizerStep] {
    func apply(_ scalars: [Unicode.Scalar]) -> [Unicode.Scalar] {
        reduce(scalars) { text, step in step.apply(text) }
    }
}
