@testable import OnebitModel

/// Loads the files `tools/make_tokenizer_fixtures.py` writes under `Tests/Fixtures/tokenizers`.
enum TokenizerFixtures {
    static let names = ["llama3", "gpt2", "gpt2_prefix_space", "qwen2_pairs", "normalized_added"]

    static let directory: String = {
        // This file is Tests/OnebitModelTests/<name>.swift; the fixtures sit beside the test target folders.
        var components = "\(#filePath)".split(separator: "/", omittingEmptySubsequences: false)
        components.removeLast(2)
        return components.joined(separator: "/") + "/Fixtures/tokenizers"
    }()

    static func bytes(_ file: String) -> [UInt8] {
        let path = directory + "/" + file
        guard let handle = fopen(path, "rb") else { fatalError("missing fixture \(path)") }
        defer { fclose(handle) }
        var result: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let count = fread(&buffer, 1, buffer.count, handle)
            if count == 0 { break }
            result += buffer[0..<count]
        }
        return result
    }

    static func json(_ file: String) throws -> JSONValue {
        try JSONValue(parsing: bytes(file))
    }

    static func tokenizer(_ name: String) throws -> Tokenizer {
        let cases = try json("\(name).cases.json")
        let config = cases["tokenizer_config"].flatMap { $0.isNull ? nil : $0 }
        return try Tokenizer(
            source: .huggingFace(tokenizerJSON: bytes("\(name).tokenizer.json"), tokenizerConfig: config))
    }

    static func ids(_ json: JSONValue?) -> [Int] {
        (json?.arrayValue ?? []).compactMap(\.intValue)
    }

    static func ggufData(_ file: String) throws -> GGUFTokenizerData {
        let json = try json(file)
        return GGUFTokenizerData(
            model: json["model"]?.stringValue ?? "", preTokenizer: json["pre"]?.stringValue,
            tokens: (json["tokens"]?.arrayValue ?? []).compactMap(\.stringValue),
            merges: (json["merges"]?.arrayValue ?? []).compactMap(\.stringValue),
            tokenTypes: ids(json["token_type"]), bosTokenID: json["bos_token_id"]?.intValue,
            eosTokenID: json["eos_token_id"]?.intValue, eotTokenID: json["eot_token_id"]?.intValue,
            addBOS: json["add_bos_token"]?.boolValue)
    }
}

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif
