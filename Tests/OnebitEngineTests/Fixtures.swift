import OnebitModel

/// Locates the committed fixtures and their recorded reference outputs.
enum Fixtures {
    /// `Tests/Fixtures`, found from this file's path so tests run from any working directory.
    static let root: String = {
        var parts = "\(#filePath)".split(separator: "/", omittingEmptySubsequences: false)
        parts.removeLast(2)
        return parts.joined(separator: "/") + "/Fixtures"
    }()

    /// `Tests/Fixtures/models`.
    static let models = root + "/models"

    /// One recorded prompt of `reference.json`.
    struct Prompt {
        var tokenIDs: [Int]
        var tokenLogprobs: [Double?]
        var greedyTokenIDs: [Int]
        /// The same, from the model converted to float64 (see tools/fixturelib/reference.py).
        var tokenLogprobsFloat64: [Double?]
        var greedyTokenIDsFloat64: [Int]
        var text: String?
    }

    /// One model entry of `reference.json`.
    struct Model {
        var name: String
        var path: String
        var format: String
        var prompts: [Prompt]
    }

    /// Every model `reference.json` records.
    static func referenceModels() throws -> [Model] {
        let json = try JSONValue(parsing: try TextFile.read(models + "/reference.json"))
        return (json["models"]?.arrayValue ?? []).map { entry in
            Model(
                name: entry["name"]?.stringValue ?? "",
                path: models + "/" + (entry["path"]?.stringValue ?? ""),
                format: entry["format"]?.stringValue ?? "",
                prompts: (entry["prompts"]?.arrayValue ?? []).map { prompt in
                    Prompt(
                        tokenIDs: prompt["token_ids"]?.arrayValue?.compactMap(\.intValue) ?? [],
                        tokenLogprobs: prompt["token_logprobs"]?.arrayValue?.map(\.doubleValue) ?? [],
                        greedyTokenIDs: prompt["greedy_token_ids"]?.arrayValue?.compactMap(\.intValue) ?? [],
                        tokenLogprobsFloat64: prompt["token_logprobs_fp64"]?.arrayValue?.map(\.doubleValue) ?? [],
                        greedyTokenIDsFloat64: prompt["greedy_token_ids_fp64"]?.arrayValue?.compactMap(\.intValue)
                            ?? [],
                        text: prompt["text"]?.stringValue)
                })
        }
    }
}
