/// A model ready to run: shapes, canonical tensors, the tokenizer and the chat template.
public struct LoadedModel: Sendable {
    /// Where it was loaded from (a directory, a `.gguf` file, or the name of the embedded model).
    public var origin: String
    /// Shapes and hyper-parameters.
    public var config: ModelConfig
    /// Tensors in canonical form.
    public var weights: ModelWeights
    /// Text to token ids and back.
    public var tokenizer: Tokenizer
    /// The chat template prompts are rendered with.
    public var chatTemplate: ChatTemplate
    /// Ids that end generation.
    public var endOfSequenceTokenIDs: Set<Int>
    /// Facts about the file for `onebit info`.
    public var formatDetails: [(key: String, value: String)]

    /// Builds the tokenizer and template of what a format loader read.
    public init(contents: CheckpointContents, origin: String) throws(ModelLoadError) {
        let tokenizer: Tokenizer
        do {
            tokenizer = try Tokenizer(source: contents.tokenizer)
        } catch {
            throw .malformed(path: origin, detail: error.description)
        }
        do {
            chatTemplate = try ChatTemplate.resolved(from: contents.chatTemplate)
        } catch {
            throw .malformed(path: origin, detail: error.description)
        }
        var endIDs = Set(contents.endOfSequenceTokenIDs)
        if let eos = tokenizer.eosTokenID { endIDs.insert(eos) }
        // Chat-tuned Llama-3 vocabularies end a turn with <|eot_id|> even when a file only names <|end_of_text|>.
        if let eot = tokenizer.tokenID("<|eot_id|>") { endIDs.insert(eot) }
        for id in endIDs where id < 0 || id >= contents.config.vocabSize {
            throw .invalidConfig("end-of-sequence id \(id) is outside the vocabulary of \(contents.config.vocabSize)")
        }
        guard tokenizer.vocabularySize <= contents.config.vocabSize else {
            throw .invalidConfig(
                "the tokenizer has \(tokenizer.vocabularySize) tokens but the model only \(contents.config.vocabSize)")
        }
        self.origin = origin
        self.config = contents.config
        self.weights = contents.weights
        self.tokenizer = tokenizer
        self.endOfSequenceTokenIDs = endIDs
        self.formatDetails = contents.formatDetails
    }
}

extension LoadedModel {
    /// The same model with ``ModelWeights/released`` weights: for holders that keep the configuration, tokenizer
    /// and template after a backend has prepared the tensors.
    public func releasingWeights() -> LoadedModel {
        var copy = self
        copy.weights = .released
        return copy
    }
}

/// Opens a model from a path, whatever its format.
public enum ModelLoader {
    /// Loads a Hugging Face directory or a `.gguf` file.
    public static func load(path: String) throws(ModelLoadError) -> LoadedModel {
        if directoryExists(path) {
            return try LoadedModel(contents: HuggingFaceCheckpointLoader.load(directory: path), origin: path)
        }
        guard fileExists(path) else { throw .unreadable(path: path, reason: "no such file or directory") }
        let file = try MappedFile(path: path)
        guard file.count >= 4, (try? file.bytes(offset: 0, count: 4, what: "magic")) == Array("GGUF".utf8) else {
            throw .unknownFormat(path: path)
        }
        return try LoadedModel(contents: GGUFModelLoader.load(file: file), origin: path)
    }
}
