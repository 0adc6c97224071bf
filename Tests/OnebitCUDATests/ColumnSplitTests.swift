import Testing

@testable import OnebitCUDA

@Test func productsOfFewTilesSplitTheirColumnsToFillTheGPU() {
    // A 64-sequence step of 2B-4T's shape: gate and up (108 tiles of 128 rows) in two; output (20 tiles of 40
    // chunks) in five, shares of 8 chunks; down (20 tiles of 108 chunks) in thirteen.
    #expect(CUDABackend.columnSplits(tiles: 108, chunks: 40, multiprocessors: 132) == 2)
    #expect(CUDABackend.columnSplits(tiles: 20, chunks: 40, multiprocessors: 132) == 5)
    #expect(CUDABackend.columnSplits(tiles: 20, chunks: 108, multiprocessors: 132) == 13)
}

@Test func productsOfOneToOneAndAHalfWavesSplitInTwo() {
    // A 512-token prompt: 2B-4T's output and down (160 tiles), Falcon3-10B's (192); 2B-4T's query, key and value (240)
    // and gate and up (864) do not split, nor do products too narrow for two shares of 8 chunks.
    #expect(CUDABackend.columnSplits(tiles: 160, chunks: 40, multiprocessors: 132) == 2)
    #expect(CUDABackend.columnSplits(tiles: 198, chunks: 360, multiprocessors: 132) == 2)
    #expect(CUDABackend.columnSplits(tiles: 199, chunks: 360, multiprocessors: 132) == 1)
    #expect(CUDABackend.columnSplits(tiles: 240, chunks: 40, multiprocessors: 132) == 1)
    #expect(CUDABackend.columnSplits(tiles: 864, chunks: 40, multiprocessors: 132) == 1)
    #expect(CUDABackend.columnSplits(tiles: 160, chunks: 15, multiprocessors: 132) == 1)
}
