import OnebitModel

/// Turns generated token ids into text that can be sent: never a split UTF-8 character (the tokenizer's
/// ``StreamingDecoder``), and never text that may still turn out to start a stop string.
///
/// Text is held back while its end could be the beginning of a stop string; once a stop string appears, the text
/// before it is released and generation should end. Matching works on UTF-8 bytes: a match of a valid string
/// always begins at a character boundary, so cutting there never splits a character.
struct TextAssembler {
    private var decoder: StreamingDecoder
    private let stops: [[UInt8]]
    private var pending: [UInt8] = []
    /// Whether a stop string was found; nothing is released after that.
    private(set) var stopped = false

    init(tokenizer: Tokenizer, stop: [String]) {
        decoder = tokenizer.makeStreamingDecoder(skipSpecialTokens: true)
        stops = stop.map { Array($0.utf8) }
    }

    /// The text `token` makes ready to send (possibly empty).
    mutating func append(_ token: Int) -> String {
        guard !stopped else { return "" }
        pending += decoder.append(token).utf8
        return release(final: false)
    }

    /// Everything still held back, once generation has ended.
    mutating func finish() -> String {
        guard !stopped else { return "" }
        pending += decoder.flush().utf8
        return release(final: true)
    }

    private mutating func release(final: Bool) -> String {
        if let cut = firstStop() {
            stopped = true
            defer { pending.removeAll() }
            return String(decoding: pending[..<cut], as: UTF8.self)
        }
        let keep = final ? 0 : heldBack()
        let ready = pending.count - keep
        defer { pending.removeFirst(ready) }
        return String(decoding: pending[..<ready], as: UTF8.self)
    }

    /// Where the earliest stop string starts in `pending`.
    private func firstStop() -> Int? {
        var earliest: Int?
        for stop in stops where stop.count <= pending.count {
            for start in 0...(pending.count - stop.count) where pending[start..<start + stop.count].elementsEqual(stop)
            {
                if start < earliest ?? Int.max { earliest = start }
                break
            }
        }
        return earliest
    }

    /// The length of the longest end of `pending` that is a proper beginning of some stop string.
    private func heldBack() -> Int {
        var longest = 0
        for stop in stops {
            for length in stride(from: min(stop.count - 1, pending.count), to: longest, by: -1)
            where pending.suffix(length).elementsEqual(stop.prefix(length)) {
                longest = length
                break
            }
        }
        return longest
    }
}
