import OnebitModel
import Testing

@testable import OnebitCUDA

/// The integer dot product exactly as `ternary_matmul` forms it from the repacked words: per chunk and word,
/// `(word m >> 2j) & 0x03030303` against the four activations of columns `16j + 4m ..< 16j + 4m + 4`, codes minus the
/// activation sum.
private func kernelDot(_ words: [UInt32], row: Int, chunks: Int, activations: [Int8]) -> Int {
    var total = 0
    for chunk in 0..<chunks {
        for m in 0..<4 {
            let word = words[(row * chunks + chunk) * 4 + m]
            for j in 0..<4 {
                let lanes = (word >> UInt32(2 * j)) & 0x0303_0303
                for i in 0..<4 {
                    let column = chunk * 64 + 16 * j + 4 * m + i
                    let a = column < activations.count ? Int(activations[column]) : 0
                    total += Int((lanes >> UInt32(8 * i)) & 0xff) * a - a
                }
            }
        }
    }
    return total
}

@Test(arguments: [4, 64, 68, 100, 192, 256, 276])
func repackedWeightsGiveTheSameDotProducts(columns: Int) {
    var generator = SystemRandomNumberGenerator()
    let rows = 5
    let values = (0..<rows * columns).map { _ in Int8.random(in: -1...1, using: &generator) }
    let matrix = TernaryMatrix(rows: rows, columns: columns, values: values, scale: .perTensor(1))
    let chunks = CUDATernaryWeights.chunks(columns: columns)
    let words = CUDATernaryWeights.repack(matrix)
    #expect(words.count == rows * chunks * 4)
    let activations = (0..<columns).map { _ in Int8.random(in: -128...127, using: &generator) }
    for row in 0..<rows {
        let expected = (0..<columns).reduce(0) { $0 + Int(values[row * columns + $1]) * Int(activations[$1]) }
        #expect(kernelDot(words, row: row, chunks: chunks, activations: activations) == expected)
    }
}

@Test func scaleBlocksMustBeWholeChunks() {
    #expect(CUDATernaryWeights.supports(blockSize: 256, columns: 2560))
    #expect(!CUDATernaryWeights.supports(blockSize: 32, columns: 2560))
    #expect(!CUDATernaryWeights.supports(blockSize: 256, columns: 2600))
}
