import Testing

@testable import OnebitCUDA

@Test func aDrawSplitsRowsIntoChunksThatItsLastLaunchCanHold() {
    // 2B-4T's 128,256-token vocabulary, and the selftest's widest head.
    #expect(CUDABackend.drawChunks(columns: 128_256) == (2_048, 63))
    #expect(CUDABackend.drawChunks(columns: 300_000) == (2_048, 147))
    #expect(CUDABackend.drawChunks(columns: 1) == (2_048, 1))
    // Rows past 1,024 chunks of 2,048 take longer chunks, whole multiples of 256 tokens.
    for columns in [2_048 * 1_024, 2_048 * 1_024 + 1, 5_000_000] {
        let (chunk, count) = CUDABackend.drawChunks(columns: columns)
        #expect(count <= KernelSource.drawMaximumChunks && chunk * count >= columns && chunk % 256 == 0)
    }
    #expect(CUDABackend.drawChunks(columns: 2_048 * 1_024 + 1).chunk == 2_304)
}
