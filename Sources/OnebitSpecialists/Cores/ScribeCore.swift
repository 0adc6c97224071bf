import OnebitModel

/// Summarises a text or a file to a requested length: the most central sentences, picked extractively, which the
/// model then polishes.
///
/// Input: `text` or `path`, `sentences` (most sentences kept, default 3) and `max_characters` (default 400; also
/// the longest the model's summary may be).
struct ScribeCore: SpecialistCore {
    func run(_ input: JSONValue, tools: ToolBox) async throws(SpecialistError) -> CoreResult {
        let text: String
        if let given = input["text"]?.stringValue {
            text = given
        } else if let path = input["path"]?.stringValue {
            text = try tools.readFile(path)
        } else {
            throw .invalidInput(path: "input.text", reason: "give the text to summarise, or a file's path as `path`")
        }
        let count = input["sentences"]?.intValue ?? 3
        let limit = input["max_characters"]?.intValue ?? 400
        let all = Self.sentences(of: text)
        let picked = Self.extract(all, count: count, maxCharacters: limit)
        let extract = picked.joined(separator: " ")
        return CoreResult(
            fields: [
                "source_sentences": .integer(all.count), "sentences": .strings(picked), "extract": .string(extract),
            ], textField: "summary", facts: extract, fallbackText: extract, textLimit: limit)
    }

    /// Sentences: text up to `.`, `!` or `?` followed by a space or a line break, or up to a blank line.
    static func sentences(of text: String) -> [String] {
        var sentences: [String] = []
        var current = ""
        let characters = Array(text)
        for (index, character) in characters.enumerated() {
            let next = index + 1 < characters.count ? characters[index + 1] : "\n"
            if character == "\n", next == "\n" || current.last == "\n" {
                if !current.trimmed.isEmpty { sentences.append(current.trimmed) }
                current = ""
                continue
            }
            current.append(character == "\n" ? " " : character)
            if ".!?".contains(character), next.isWhitespace {
                if !current.trimmed.isEmpty { sentences.append(current.trimmed) }
                current = ""
            }
        }
        if !current.trimmed.isEmpty { sentences.append(current.trimmed) }
        return sentences.map { $0.split(whereSeparator: \.isWhitespace).joined(separator: " ") }
    }

    /// The `count` sentences most similar to all the others (by TF-IDF cosine), in their original order, dropping
    /// the least central ones until they fit in `maxCharacters` (one sentence alone is cut at a word).
    static func extract(_ sentences: [String], count: Int, maxCharacters: Int) -> [String] {
        guard !sentences.isEmpty, count > 0, maxCharacters > 0 else { return [] }
        let centrality = sentences.indices.map { index in
            var others = sentences
            others.remove(at: index)
            return Similarity.cosine(query: sentences[index], documents: others).reduce(0, +)
        }
        var chosen = sentences.indices.sorted {
            centrality[$0] != centrality[$1] ? centrality[$0] > centrality[$1] : $0 < $1
        }
        chosen = Array(chosen.prefix(count))
        func length(_ indices: [Int]) -> Int {
            indices.reduce(0) { $0 + sentences[$1].count } + max(0, indices.count - 1)
        }
        while chosen.count > 1, length(chosen) > maxCharacters { chosen.removeLast() }
        var picked = chosen.sorted().map { sentences[$0] }
        if picked.count == 1, picked[0].count > maxCharacters {
            var cut = String(picked[0].prefix(max(0, maxCharacters - 1)))
            if let space = cut.lastIndex(of: " "), cut.distance(from: cut.startIndex, to: space) > maxCharacters / 2 {
                cut = String(cut[..<space])
            }
            picked[0] = cut + "…"
        }
        return picked
    }
}
