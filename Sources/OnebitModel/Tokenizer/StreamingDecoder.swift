/// Decodes generated ids one at a time without ever splitting a character.
///
/// A byte-level token can end in the middle of a multi-byte UTF-8 character; those bytes are held back until the
/// character is complete, so the concatenation of everything returned equals ``Tokenizer/decode(_:skipSpecialTokens:)``
/// of all the ids.
public struct StreamingDecoder: Sendable {
    private let tokenizer: Tokenizer
    private let skipSpecialTokens: Bool
    private var pending: [UInt8] = []
    private var isFirst = true

    init(tokenizer: Tokenizer, skipSpecialTokens: Bool) {
        self.tokenizer = tokenizer
        self.skipSpecialTokens = skipSpecialTokens
    }

    /// The text newly completed by token `id`; an unfinished UTF-8 sequence at the end is held back.
    public mutating func append(_ id: Int) -> String {
        tokenizer.appendBytes(of: id, skipSpecialTokens: skipSpecialTokens, isFirst: &isFirst, to: &pending)
        let held = Self.unfinishedSuffixLength(pending)
        let ready = pending.count - held
        guard ready > 0 else { return "" }
        let text = String(decoding: pending[..<ready], as: UTF8.self)
        pending.removeFirst(ready)
        return text
    }

    /// Whatever is still held back, with invalid or unfinished bytes as U+FFFD; the decoder is then empty.
    public mutating func flush() -> String {
        defer { pending.removeAll() }
        return String(decoding: pending, as: UTF8.self)
    }

    /// How many bytes at the end form the valid beginning of a character that later bytes could still complete.
    ///
    /// Holding back only such a prefix keeps the output identical to decoding everything at once: the bytes before
    /// a lead byte decode the same whatever follows it.
    static func unfinishedSuffixLength(_ bytes: [UInt8]) -> Int {
        var index = bytes.count - 1
        while index >= 0 && bytes.count - index <= 3 {
            let byte = bytes[index]
            if byte & 0xC0 == 0x80 {
                index -= 1
                continue
            }
            let length: Int
            let secondByte: ClosedRange<UInt8>
            switch byte {
            case 0xC2...0xDF: (length, secondByte) = (2, 0x80...0xBF)
            case 0xE0: (length, secondByte) = (3, 0xA0...0xBF)
            case 0xED: (length, secondByte) = (3, 0x80...0x9F)
            case 0xE1...0xEF: (length, secondByte) = (3, 0x80...0xBF)
            case 0xF0: (length, secondByte) = (4, 0x90...0xBF)
            case 0xF1...0xF3: (length, secondByte) = (4, 0x80...0xBF)
            case 0xF4: (length, secondByte) = (4, 0x80...0x8F)
            default: return 0
            }
            let available = bytes.count - index
            guard available < length else { return 0 }
            if available >= 2 && !secondByte.contains(bytes[index + 1]) { return 0 }
            return available
        }
        return 0
    }
}
