import Testing

@testable import OnebitCUDA

@Test func rowsOfUpToSixtyFourChunksTakeSixteenLanesAndOthersAWarp() {
    // 2B-4T's gate and up rows (2,560 columns) and its down rows (6,912 columns) on a GPU of 132 multiprocessors.
    #expect(
        CUDABackend.singleTokenGeometry(rows: 6_912, chunks: 40, blockScaled: false, multiprocessors: 132) == (16, 432))
    #expect(
        CUDABackend.singleTokenGeometry(rows: 2_560, chunks: 108, blockScaled: false, multiprocessors: 132) == (32, 320)
    )
    #expect(
        CUDABackend.singleTokenGeometry(rows: 2_560, chunks: 64, blockScaled: false, multiprocessors: 132) == (16, 160))
    #expect(
        CUDABackend.singleTokenGeometry(rows: 2_560, chunks: 65, blockScaled: false, multiprocessors: 132) == (32, 320))
    // Per-block scales sum floats in the one-warp kernel's order only with a warp a row.
    #expect(CUDABackend.singleTokenGeometry(rows: 40, chunks: 8, blockScaled: true, multiprocessors: 132) == (32, 5))
}

@Test func theGridStaysResidentAndNeverEmpty() {
    // A 128,256-row product would want 8,016 blocks: four a multiprocessor take its rows in turn.
    #expect(
        CUDABackend.singleTokenGeometry(rows: 128_256, chunks: 40, blockScaled: false, multiprocessors: 132) == (
            16, 528
        ))
    #expect(CUDABackend.singleTokenGeometry(rows: 1, chunks: 1, blockScaled: false, multiprocessors: 132) == (16, 1))
    #expect(CUDABackend.singleTokenGeometry(rows: 7, chunks: 2, blockScaled: false, multiprocessors: 1) == (16, 1))
}
