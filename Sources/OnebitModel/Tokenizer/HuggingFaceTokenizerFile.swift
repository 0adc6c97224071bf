/// Reads a Hugging Face `tokenizer.json` (and optionally `tokenizer_config.json`) into a ``TokenizerDefinition``.
enum HuggingFaceTokenizerFile {
    static func definition(
        tokenizerJSON: [UInt8], tokenizerConfig: JSONValue?
    ) throws(TokenizerError) -> TokenizerDefinition {
        let root: JSONValue
        do {
            root = try JSONValue(parsing: tokenizerJSON)
        } catch {
            throw .invalidJSON(error.description)
        }
        guard root.objectValue != nil else { throw .malformed(path: "$", reason: "expected a JSON object") }
        guard let modelJSON = root["model"], !modelJSON.isNull else {
            throw .malformed(path: "model", reason: "missing; a tokenizer.json needs a model")
        }
        let model = try bpeModel(modelJSON)
        let normalizer = try optional(root["normalizer"]) { (json) throws(TokenizerError) in
            try normalizerSteps(json, path: "normalizer")
        }
        let preTokenizer =
            try optional(root["pre_tokenizer"]) { (json) throws(TokenizerError) in
                try preTokenizerSteps(json, path: "pre_tokenizer")
            } ?? []
        let addedTokens = try addedTokenList(root["added_tokens"])
        let (prefix, suffix, templateSpecials) =
            try optional(root["post_processor"]) { (json) throws(TokenizerError) in
                try postProcessor(json, path: "post_processor")
            } ?? ([], [], [])
        let decoder =
            try optional(root["decoder"]) { (json) throws(TokenizerError) in try decoderKind(json, path: "decoder") }
            ?? .none
        return TokenizerDefinition(
            model: model, addedTokens: addedTokens, normalizer: normalizer, preTokenizer: preTokenizer,
            prefixIDs: prefix, suffixIDs: suffix, decoder: decoder,
            bosToken: tokenText(tokenizerConfig?["bos_token"]) ?? templateSpecials.first,
            eosToken: tokenText(tokenizerConfig?["eos_token"]))
    }

    /// `bos_token`/`eos_token` of tokenizer_config.json: a string or an object with `content`.
    private static func tokenText(_ json: JSONValue?) -> String? {
        json?.stringValue ?? json?["content"]?.stringValue
    }

    private static func optional<T>(
        _ json: JSONValue?, _ read: (JSONValue) throws(TokenizerError) -> T
    ) throws(TokenizerError) -> T? {
        guard let json, !json.isNull else { return nil }
        return try read(json)
    }

    private static func type(of json: JSONValue, path: String) throws(TokenizerError) -> String {
        guard let type = json["type"]?.stringValue else {
            throw .malformed(path: path + ".type", reason: "missing or not a string")
        }
        return type
    }

    private static func bool(_ json: JSONValue, _ key: String, default value: Bool, path: String)
        throws(TokenizerError) -> Bool
    {
        guard let member = json[key], !member.isNull else { return value }
        guard let bool = member.boolValue else { throw .malformed(path: path + "." + key, reason: "not a boolean") }
        return bool
    }

    // MARK: model

    private static func bpeModel(_ json: JSONValue) throws(TokenizerError) -> BPEModel {
        // Older files omit `type` for BPE; `tokenizers` then infers it from the fields.
        let type = json["type"]?.stringValue ?? (json["merges"] != nil ? "BPE" : "unknown")
        guard type == "BPE" else {
            throw .unsupported(path: "model.type", reason: "model \"\(type)\"; only byte-level BPE is supported")
        }
        guard let vocabJSON = json["vocab"]?.objectValue else {
            throw .malformed(path: "model.vocab", reason: "missing or not an object")
        }
        var vocabulary: [[UInt8]: Int] = [:]
        vocabulary.reserveCapacity(vocabJSON.count)
        for (text, idJSON) in vocabJSON {
            guard let id = idJSON.intValue, id >= 0, id < Int(Int32.max) else {
                throw .malformed(path: "model.vocab[\"\(text)\"]", reason: "id is not a non-negative integer")
            }
            vocabulary[Array(text.utf8)] = id
        }
        if let dropout = json["dropout"]?.doubleValue, dropout > 0 {
            throw .unsupported(path: "model.dropout", reason: "BPE dropout is random and not used for inference")
        }
        for key in ["continuing_subword_prefix", "end_of_word_suffix"] {
            if let value = json[key]?.stringValue, !value.isEmpty {
                throw .unsupported(path: "model." + key, reason: "\"\(value)\" is not supported")
            }
        }
        let merges = try mergeTable(json["merges"], vocabulary: vocabulary)
        var unknownTokenID: Int?
        if let unknown = json["unk_token"]?.stringValue {
            guard let id = vocabulary[Array(unknown.utf8)] else {
                throw .malformed(path: "model.unk_token", reason: "\"\(unknown)\" is not in the vocabulary")
            }
            unknownTokenID = id
        }
        return BPEModel(
            vocabulary: vocabulary, merges: merges,
            ignoreMerges: try bool(json, "ignore_merges", default: false, path: "model"),
            byteFallback: try bool(json, "byte_fallback", default: false, path: "model"),
            unknownTokenID: unknownTokenID,
            fuseUnknown: try bool(json, "fuse_unk", default: false, path: "model"))
    }

    /// Merges in the `"a b"` string form or the `["a", "b"]` pair form; rank is the position in the list.
    private static func mergeTable(
        _ json: JSONValue?, vocabulary: [[UInt8]: Int]
    ) throws(TokenizerError) -> [BPEModel.MergePair: BPEModel.Merge] {
        guard let list = json?.arrayValue else {
            throw .malformed(path: "model.merges", reason: "missing or not an array")
        }
        return try BPEModel.mergeTable(count: list.count, path: "model.merges", vocabulary: vocabulary) {
            (rank) throws(TokenizerError) in
            let entry = list[rank]
            if let line = entry.stringValue {
                return try BPEModel.splitMerge(line, path: "model.merges[\(rank)]")
            }
            if let pair = entry.arrayValue, pair.count == 2, let a = pair[0].stringValue, let b = pair[1].stringValue {
                return (Substring(a), Substring(b))
            }
            throw .malformed(path: "model.merges[\(rank)]", reason: "expected \"a b\" or [\"a\", \"b\"]")
        }
    }

    // MARK: added tokens

    private static func addedTokenList(_ json: JSONValue?) throws(TokenizerError) -> [AddedToken] {
        guard let json, !json.isNull else { return [] }
        guard let list = json.arrayValue else { throw .malformed(path: "added_tokens", reason: "not an array") }
        var tokens: [AddedToken] = []
        for (index, entry) in list.enumerated() {
            let path = "added_tokens[\(index)]"
            guard let id = entry["id"]?.intValue, id >= 0, id < Int(Int32.max) else {
                throw .malformed(path: path + ".id", reason: "missing or not a non-negative integer")
            }
            guard let content = entry["content"]?.stringValue, !content.isEmpty else {
                throw .malformed(path: path + ".content", reason: "missing or empty")
            }
            let special = try bool(entry, "special", default: false, path: path)
            tokens.append(
                AddedToken(
                    id: id, content: content, isSpecial: special,
                    singleWord: try bool(entry, "single_word", default: false, path: path),
                    leftStrip: try bool(entry, "lstrip", default: false, path: path),
                    rightStrip: try bool(entry, "rstrip", default: false, path: path),
                    normalized: try bool(entry, "normalized", default: !special, path: path)))
        }
        return tokens
    }

    // MARK: normalizer

    private static func normalizerSteps(_ json: JSONValue, path: String) throws(TokenizerError) -> [NormalizerStep] {
        switch try type(of: json, path: path) {
        case "Sequence":
            guard let list = json["normalizers"]?.arrayValue else {
                throw .malformed(path: path + ".normalizers", reason: "missing or not an array")
            }
            var steps: [NormalizerStep] = []
            for (index, item) in list.enumerated() {
                steps += try normalizerSteps(item, path: path + ".normalizers[\(index)]")
            }
            return steps
        case "NFC":
            return [.nfc]
        case "Prepend":
            guard let prefix = json["prepend"]?.stringValue else {
                throw .malformed(path: path + ".prepend", reason: "missing or not a string")
            }
            return [.prepend(Array(prefix.unicodeScalars))]
        case "Replace":
            guard let content = json["content"]?.stringValue else {
                throw .malformed(path: path + ".content", reason: "missing or not a string")
            }
            guard let pattern = json["pattern"]?["String"]?.stringValue else {
                throw .unsupported(path: path + ".pattern", reason: "only literal String patterns are supported")
            }
            return [.replace(pattern: Array(pattern.unicodeScalars), content: Array(content.unicodeScalars))]
        case "Strip":
            return [
                .strip(
                    left: try bool(json, "strip_left", default: true, path: path),
                    right: try bool(json, "strip_right", default: true, path: path))
            ]
        case let other:
            throw .unsupported(
                path: path + ".type",
                reason: "normalizer \"\(other)\"; supported: Sequence, NFC, Prepend, Replace, Strip")
        }
    }

    // MARK: pre-tokenizer

    private static func preTokenizerSteps(
        _ json: JSONValue, path: String
    ) throws(TokenizerError) -> [PreTokenizerStep] {
        switch try type(of: json, path: path) {
        case "Sequence":
            guard let list = json["pretokenizers"]?.arrayValue else {
                throw .malformed(path: path + ".pretokenizers", reason: "missing or not an array")
            }
            var steps: [PreTokenizerStep] = []
            for (index, item) in list.enumerated() {
                steps += try preTokenizerSteps(item, path: path + ".pretokenizers[\(index)]")
            }
            return steps
        case "ByteLevel":
            return [
                .byteLevel(
                    addPrefixSpace: try bool(json, "add_prefix_space", default: true, path: path),
                    useRegex: try bool(json, "use_regex", default: true, path: path))
            ]
        case "Split":
            let pattern: SplitPattern
            if let text = json["pattern"]?["Regex"]?.stringValue {
                guard let known = PreTokenizerPattern(text: text) else {
                    throw .unsupported(
                        path: path + ".pattern.Regex",
                        reason: "unknown regex \(text); supported: the Llama-3, Qwen2 and GPT-2 patterns")
                }
                pattern = .known(known)
            } else if let text = json["pattern"]?["String"]?.stringValue {
                pattern = .literal(Array(text.unicodeScalars))
            } else {
                throw .malformed(path: path + ".pattern", reason: "expected {\"Regex\": ...} or {\"String\": ...}")
            }
            let behaviorName = json["behavior"]?.stringValue ?? ""
            guard let behavior = SplitBehavior(rawValue: behaviorName) else {
                throw .unsupported(path: path + ".behavior", reason: "unknown split behavior \"\(behaviorName)\"")
            }
            return [.split(pattern, behavior, invert: try bool(json, "invert", default: false, path: path))]
        case let other:
            throw .unsupported(
                path: path + ".type", reason: "pre-tokenizer \"\(other)\"; supported: Sequence, Split, ByteLevel")
        }
    }

    // MARK: post-processor

    /// Ids before and after the text, and the texts of the special tokens placed before it.
    private static func postProcessor(
        _ json: JSONValue, path: String
    ) throws(TokenizerError) -> ([Int], [Int], [String]) {
        switch try type(of: json, path: path) {
        case "ByteLevel":
            return ([], [], [])
        case "Sequence":
            guard let list = json["processors"]?.arrayValue else {
                throw .malformed(path: path + ".processors", reason: "missing or not an array")
            }
            var result: ([Int], [Int], [String]) = ([], [], [])
            for (index, item) in list.enumerated() {
                let (prefix, suffix, texts) = try postProcessor(item, path: path + ".processors[\(index)]")
                // Each processor wraps the output of the ones before it.
                result = (prefix + result.0, result.1 + suffix, texts + result.2)
            }
            return result
        case "TemplateProcessing":
            return try template(json, path: path)
        case let other:
            throw .unsupported(
                path: path + ".type",
                reason: "post-processor \"\(other)\"; supported: TemplateProcessing, ByteLevel, Sequence")
        }
    }

    private static func template(_ json: JSONValue, path: String) throws(TokenizerError) -> ([Int], [Int], [String]) {
        guard let single = json["single"]?.arrayValue else {
            throw .malformed(path: path + ".single", reason: "missing or not an array")
        }
        var prefix: [Int] = []
        var suffix: [Int] = []
        var prefixTexts: [String] = []
        var seenSequence = false
        for (index, piece) in single.enumerated() {
            let piecePath = path + ".single[\(index)]"
            if piece["Sequence"] != nil {
                seenSequence = true
            } else if let name = piece["SpecialToken"]?["id"]?.stringValue {
                guard let ids = json["special_tokens"]?[name]?["ids"]?.arrayValue else {
                    throw .malformed(path: path + ".special_tokens", reason: "no entry for \"\(name)\"")
                }
                var resolved: [Int] = []
                for id in ids {
                    guard let id = id.intValue else {
                        throw .malformed(path: path + ".special_tokens.\(name).ids", reason: "not an integer")
                    }
                    resolved.append(id)
                }
                if seenSequence {
                    suffix += resolved
                } else {
                    prefix += resolved
                    prefixTexts.append(name)
                }
            } else {
                throw .malformed(path: piecePath, reason: "expected Sequence or SpecialToken")
            }
        }
        return (prefix, suffix, prefixTexts)
    }

    // MARK: decoder

    private static func decoderKind(_ json: JSONValue, path: String) throws(TokenizerError) -> DecoderKind {
        switch try type(of: json, path: path) {
        case "ByteLevel":
            return .byteLevel
        case "Sequence":
            let list = json["decoders"]?.arrayValue ?? []
            guard list.count == 1 else {
                throw .unsupported(path: path + ".decoders", reason: "only a sequence of one ByteLevel decoder")
            }
            return try decoderKind(list[0], path: path + ".decoders[0]")
        case let other:
            throw .unsupported(path: path + ".type", reason: "decoder \"\(other)\"; supported: ByteLevel")
        }
    }
}
