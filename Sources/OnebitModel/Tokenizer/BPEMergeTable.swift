extension BPEModel {
    /// Resolves merges given as pairs of token texts in rank order; `path` names the list in error messages.
    ///
    /// A pair listed twice keeps its last rank, as `tokenizers` does.
    static func mergeTable(
        count: Int, path: String, vocabulary: [[UInt8]: Int],
        pair: (Int) throws(TokenizerError) -> (Substring, Substring)
    ) throws(TokenizerError) -> [MergePair: Merge] {
        var table: [MergePair: Merge] = [:]
        table.reserveCapacity(count)
        var joined: [UInt8] = []
        for rank in 0..<count {
            let (left, right) = try pair(rank)
            joined.removeAll(keepingCapacity: true)
            joined.append(contentsOf: left.utf8)
            guard let leftID = vocabulary[joined] else {
                throw .malformed(path: "\(path)[\(rank)]", reason: "token \"\(left)\" is not in the vocabulary")
            }
            guard let rightID = vocabulary[Array(right.utf8)] else {
                throw .malformed(path: "\(path)[\(rank)]", reason: "token \"\(right)\" is not in the vocabulary")
            }
            joined.append(contentsOf: right.utf8)
            guard let resultID = vocabulary[joined] else {
                throw .malformed(
                    path: "\(path)[\(rank)]", reason: "merged token \"\(left)\(right)\" is not in the vocabulary")
            }
            table[MergePair(left: Int32(leftID), right: Int32(rightID))] = Merge(
                rank: Int32(rank), result: Int32(resultID))
        }
        return table
    }

    /// The two halves of an `"a b"` merge line.
    ///
    /// Cut at the UTF-8 level: splitting a `String` walks grapheme clusters, which dominated loading 280k merges.
    static func splitMerge(_ line: String, path: String) throws(TokenizerError) -> (Substring, Substring) {
        let utf8 = line.utf8
        guard let space = utf8.firstIndex(of: UInt8(ascii: " ")),
            !utf8[utf8.index(after: space)...].contains(UInt8(ascii: " "))
        else {
            throw .malformed(path: path, reason: "\"\(line)\" is not two tokens separated by one space")
        }
        return (Substring(utf8[..<space]), Substring(utf8[utf8.index(after: space)...]))
    }
}
