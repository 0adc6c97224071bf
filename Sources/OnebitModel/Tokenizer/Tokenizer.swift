// PLACEHOLDER: replaced by the byte-level BPE implementation (issue 3). Only the public API shape is fixed here.

/// Why a tokenizer could not be built.
public enum TokenizerError: Error, CustomStringConvertible, Equatable {
    case malformed(String)
    case unsupported(String)

    public var description: String {
        switch self {
        case .malformed(let s): "malformed tokenizer: \(s)"
        case .unsupported(let s): "unsupported tokenizer: \(s)"
        }
    }
}

/// A Hugging Face compatible byte-level BPE tokenizer.
public final class Tokenizer: Sendable {
    public let vocabularySize: Int
    public let bosTokenID: Int?
    public let eosTokenID: Int?
    public let bosToken: String?
    public let eosToken: String?
    public let addsBOS: Bool

    public init(source: TokenizerSource) throws(TokenizerError) {
        throw .unsupported("not implemented yet")
    }

    public func encode(_ text: String, addSpecialTokens: Bool = true) -> [Int] { [] }
    public func decode(_ ids: [Int], skipSpecialTokens: Bool = false) -> String { "" }
    public func tokenText(_ id: Int) -> String? { nil }
    public func tokenID(_ text: String) -> Int? { nil }
    public func makeStreamingDecoder() -> StreamingDecoder { StreamingDecoder() }
}

public struct StreamingDecoder: Sendable {
    public mutating func append(_ id: Int) -> String { "" }
    public mutating func flush() -> String { "" }
}
