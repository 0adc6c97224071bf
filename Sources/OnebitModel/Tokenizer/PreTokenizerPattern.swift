/// A pre-tokenizer regular expression this tokenizer knows, recognised by its exact text and run by a
/// hand-written scanner with the same leftmost-first, backtracking semantics.
///
/// A general regex engine is deliberately not implemented: the handful of patterns real checkpoints use are
/// cheaper and safer to scan directly, and an unknown pattern is refused with a clear error.
enum PreTokenizerPattern: Sendable, Equatable {
    /// The Llama-3 / tiktoken `cl100k`-style pattern (BitNet b1.58 2B-4T); digits in runs of at most three.
    case llama3
    /// Qwen2's variant of ``llama3`` that cuts digits one by one.
    case qwen2
    /// The GPT-2 pattern that `ByteLevel(use_regex: true)` applies.
    case gpt2

    static let llama3Text =
        #"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"#
    static let qwen2Text =
        #"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"#
    static let gpt2Text = #"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"#

    /// The pattern whose text is exactly `text`, or `nil` when it is not one of the known ones.
    init?(text: String) {
        switch text {
        case Self.llama3Text: self = .llama3
        case Self.qwen2Text: self = .qwen2
        case Self.gpt2Text: self = .gpt2
        default: return nil
        }
    }

    /// The ranges of the successive non-overlapping matches in `scalars`.
    func matches(in scalars: [Unicode.Scalar]) -> [Range<Int>] {
        let classes = scalars.map(ScalarClass.init)
        var result: [Range<Int>] = []
        var start = 0
        while start < scalars.count {
            let end =
                self == .gpt2
                ? Self.gpt2Match(scalars, classes, at: start)
                : Self.llama3Match(scalars, classes, at: start, maximumDigits: self == .llama3 ? 3 : 1)
            result.append(start..<end)
            start = end
        }
        return result
    }

    /// `'s|'t|'re|'ve|'m|'ll|'d`, optionally case-insensitive; returns the match end or `nil`.
    private static func contraction(_ s: [Unicode.Scalar], at i: Int, ignoringCase: Bool) -> Int? {
        guard s[i] == "'", i + 1 < s.count else { return nil }
        func lowered(_ scalar: Unicode.Scalar) -> Unicode.Scalar {
            guard ignoringCase else { return scalar }
            if scalar.value >= 0x41 && scalar.value <= 0x5A { return Unicode.Scalar(scalar.value + 0x20)! }
            // LATIN SMALL LETTER LONG S case-folds to `s`.
            return scalar == "\u{17F}" ? "s" : scalar
        }
        switch lowered(s[i + 1]) {
        case "s", "t", "m", "d": return i + 2
        case "r", "v", "l":
            guard i + 2 < s.count else { return nil }
            let pair = (lowered(s[i + 1]), lowered(s[i + 2]))
            if pair == ("r", "e") || pair == ("v", "e") || pair == ("l", "l") { return i + 3 }
            return nil
        default: return nil
        }
    }

    /// End of the run of `class` starting at `i`.
    private static func run(of kind: ScalarClass, _ classes: [ScalarClass], from i: Int, limit: Int = .max) -> Int {
        var j = i
        while j < classes.count && classes[j] == kind && j - i < limit { j += 1 }
        return j
    }

    /// `\s+(?!\S)|\s+` at a white-space position: the whole run at the end of the text, otherwise the run less its
    /// last character (which then starts the next piece), unless that would leave nothing.
    private static func whitespaceRun(_ classes: [ScalarClass], at i: Int) -> Int {
        var j = i
        while j < classes.count && classes[j].isWhitespace { j += 1 }
        if j == classes.count || j - 1 == i { return j }
        return j - 1
    }

    private static func llama3Match(
        _ s: [Unicode.Scalar], _ classes: [ScalarClass], at i: Int, maximumDigits: Int
    ) -> Int {
        if let end = contraction(s, at: i, ignoringCase: true) { return end }
        let kind = classes[i]
        // [^\r\n\p{L}\p{N}]?\p{L}+
        if kind == .letter { return run(of: .letter, classes, from: i) }
        if kind != .newline && kind != .number && i + 1 < s.count && classes[i + 1] == .letter {
            return run(of: .letter, classes, from: i + 1)
        }
        // \p{N}{1,3}
        if kind == .number { return run(of: .number, classes, from: i, limit: maximumDigits) }
        // ` ?[^\s\p{L}\p{N}]+[\r\n]*`
        let symbolStart = s[i] == " " && i + 1 < s.count && classes[i + 1] == .other ? i + 1 : i
        if classes[symbolStart] == .other {
            return run(of: .newline, classes, from: run(of: .other, classes, from: symbolStart))
        }
        // \s*[\r\n]+ : the white-space run up to and including its last line break.
        var j = i
        var lastNewline: Int?
        while j < s.count && classes[j].isWhitespace {
            if classes[j] == .newline { lastNewline = j }
            j += 1
        }
        if let lastNewline { return lastNewline + 1 }
        return whitespaceRun(classes, at: i)
    }

    private static func gpt2Match(_ s: [Unicode.Scalar], _ classes: [ScalarClass], at i: Int) -> Int {
        if let end = contraction(s, at: i, ignoringCase: false) { return end }
        // ` ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+`
        let start = s[i] == " " && i + 1 < s.count && !classes[i + 1].isWhitespace ? i + 1 : i
        switch classes[start] {
        case .letter, .number, .other: return run(of: classes[start], classes, from: start)
        case .space, .newline: return whitespaceRun(classes, at: i)
        }
    }
}
