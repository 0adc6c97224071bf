import OnebitModel
import Testing

@testable import OnebitCUDA

/// A two-layer model of small shapes, every weight zero: the estimate reads only the shapes.
private let config = ModelConfig(
    architecture: "memory-estimate", hiddenSize: 256, layerCount: 2, headCount: 4, kvHeadCount: 2, headDim: 64,
    intermediateSize: 512, vocabSize: 1_000, contextLength: 4_096, ropeTheta: 10_000, rmsNormEpsilon: 1e-5,
    activation: .relu2, tiedEmbeddings: true)

private func zeroWeights() -> ModelWeights {
    func ternary(_ rows: Int, _ columns: Int) -> TernaryMatrix {
        TernaryMatrix(
            rows: rows, columns: columns, codes: [UInt8](repeating: 0x55, count: rows * columns / 4),
            scale: .perTensor(1))
    }
    let (hidden, ffn) = (config.hiddenSize, config.intermediateSize)
    let attention = config.headCount * config.headDim, keyValue = config.kvHeadCount * config.headDim
    let layer = LayerWeights(
        attentionNorm: .init(repeating: 1, count: hidden), query: ternary(attention, hidden),
        key: ternary(keyValue, hidden), value: ternary(keyValue, hidden),
        attentionSubNorm: .init(repeating: 1, count: attention), output: ternary(hidden, attention),
        feedForwardNorm: .init(repeating: 1, count: hidden), gate: ternary(ffn, hidden), up: ternary(ffn, hidden),
        feedForwardSubNorm: .init(repeating: 1, count: ffn), down: ternary(hidden, ffn))
    let embeddings = DenseMatrix(
        rows: config.vocabSize, columns: hidden,
        storage: .bfloat16(.init(repeating: 0, count: config.vocabSize * hidden)))
    return ModelWeights(
        embeddings: embeddings, layers: [layer, layer], finalNorm: .init(repeating: 1, count: hidden),
        outputHead: nil)
}

@Test func theMemoryAModelNeedsCoversItsWeightsItsLogitsAndAFullContext() {
    let weights = zeroWeights()
    let estimate = CUDABackend.residentBytes(config: config, weights: weights, int8Head: false)
    // Widths that are multiples of 64 repack into exactly the packed codes' bytes.
    let codes = weights.layers.reduce(0) { total, layer in
        total + layer.projections.reduce(0) { $0 + $1.matrix.codes.count }
    }
    let positions = min(config.contextLength, CUDABackend.checkedContext)
    let cache = positions * config.layerCount * 2 * config.kvHeadCount * config.headDim * 4
    let logits = CUDABackend.chunkSize * config.vocabSize * 4
    let floor = codes + weights.embeddings.byteCount + cache + logits + CUDABackend.workingHeadroom
    #expect(estimate >= floor)
    // The rest is norms, scales and a chunk's activations: a few megabytes at these widths.
    #expect(estimate - floor < 8 << 20)
}

@Test func anInt8HeadAddsItsCopyOfTheHead() {
    let weights = zeroWeights()
    let bf16 = CUDABackend.residentBytes(config: config, weights: weights, int8Head: false)
    let int8 = CUDABackend.residentBytes(config: config, weights: weights, int8Head: true)
    #expect(int8 - bf16 == config.vocabSize * config.hiddenSize + config.vocabSize * 4)
}

@Test func tooLittleGPUMemoryIsAnErrorThatNamesBothSizesAndTheFallback() {
    let message = CUDAError.insufficientMemory(needed: 1_504_000_000, free: 250_000_000).description
    #expect(message.contains("1.50 GB"))
    #expect(message.contains("0.25 GB"))
    #expect(message.contains("--device cpu"))
}

@Test func aLongContextCountsNoMoreThanTheCheckedPositions() {
    var long = config
    long.contextLength = 32_768
    let weights = zeroWeights()
    let estimate = CUDABackend.residentBytes(config: long, weights: weights, int8Head: false)
    let checked = CUDABackend.residentBytes(config: config, weights: weights, int8Head: false)
    #expect(estimate == checked)
}
