import ArgumentParser
import OnebitModel

/// `onebit info`: what a model file holds.
struct Info: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Describe a model: architecture, shapes, formats, parameter and byte counts.")

    @OptionGroup var options: ModelOptions

    func run() throws {
        let model = try options.load()
        let c = model.config
        let w = model.weights
        var ternaryParameters = 0
        var ternaryBytes = 0
        for layer in w.layers {
            for (_, matrix) in layer.projections {
                ternaryParameters += matrix.rows * matrix.columns
                ternaryBytes += matrix.codes.count
            }
        }
        let denseParameters =
            w.embeddings.rows * w.embeddings.columns + (w.outputHead.map { $0.rows * $0.columns } ?? 0)
        let normParameters =
            w.finalNorm.count
            + w.layers.reduce(0) {
                $0 + $1.attentionNorm.count + $1.attentionSubNorm.count + $1.feedForwardNorm.count
                    + $1.feedForwardSubNorm.count
            }
        var rows: [(String, String)] = [
            ("model", model.origin),
            ("architecture", c.architecture),
            ("layers", "\(c.layerCount)"),
            ("hidden size", "\(c.hiddenSize)"),
            ("attention heads", "\(c.headCount) (\(c.kvHeadCount) key/value, head dim \(c.headDim))"),
            ("intermediate size", "\(c.intermediateSize) (\(c.activation.rawValue))"),
            ("vocabulary", "\(c.vocabSize) (tokenizer: \(model.tokenizer.vocabularySize))"),
            ("context length", "\(c.contextLength)"),
            ("rope theta", "\(c.ropeTheta)"),
            ("rms norm epsilon", "\(c.rmsNormEpsilon)"),
        ]
        rows += model.formatDetails.filter { detail in !rows.contains { $0.0 == detail.key } }.map {
            ($0.key, $0.value)
        }
        rows += [
            ("ternary parameters", "\(ternaryParameters) (\(ternaryBytes) bytes at 2 bits)"),
            (
                "dense parameters",
                "\(denseParameters) (\(w.embeddings.byteCount + (w.outputHead?.byteCount ?? 0)) bytes)"
            ),
            ("norm parameters", "\(normParameters)"),
            ("total parameters", "\(ternaryParameters + denseParameters + normParameters)"),
            ("end of sequence", model.endOfSequenceTokenIDs.sorted().map(String.init).joined(separator: ", ")),
        ]
        let width = rows.map(\.0.count).max() ?? 0
        for (key, value) in rows {
            print(key + String(repeating: " ", count: width - key.count) + "  " + value)
        }
    }
}
