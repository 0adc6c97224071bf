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

@Test func tileBlocksGetAboutADozenWarpsAMultiprocessor() {
    // 2B-4T on 132 multiprocessors: 432 gate and up tiles take 4 warps a block; the query/key/value (240 tiles),
    // output and down (160) products 8.
    #expect(CUDABackend.tileWarps(tiles: 432, chunks: 40, multiprocessors: 132) == 4)
    #expect(CUDABackend.tileWarps(tiles: 240, chunks: 40, multiprocessors: 132) == 8)
    #expect(CUDABackend.tileWarps(tiles: 160, chunks: 108, multiprocessors: 132) == 8)
    #expect(CUDABackend.tileWarps(tiles: 1_440, chunks: 48, multiprocessors: 132) == 2)
    // No more warps than quads of chunks.
    #expect(CUDABackend.tileWarps(tiles: 1, chunks: 1, multiprocessors: 132) == 1)
    #expect(CUDABackend.tileWarps(tiles: 3, chunks: 9, multiprocessors: 132) == 3)
}

@Test func tilesRunOnlyWhereTheyFitInOneWave() {
    // 2B-4T's gate and up tiles: 8 blocks of 4 warps a multiprocessor, so all 432 at once.
    let gateAndUp = KernelSource.tileSharedBytes(matrices: 2, chunks: 40)
    #expect(gateAndUp == 2 * 16 * 44 * 16 + 40 * 64)
    #expect(
        CUDABackend.residentTiles(warps: 4, sharedBytes: gateAndUp, staticBytes: KernelSource.tileStaticBytes) == 8)
    // Falcon3-10B's 1,440 gate and up tiles of 2 warps: 7 a multiprocessor, 924 of 132, so they stream through
    // ternary_tiles_stream_1 on sm_90 and take ternary_fused_1 before.
    #expect(
        CUDABackend.residentTiles(
            warps: 2, sharedBytes: KernelSource.tileSharedBytes(matrices: 2, chunks: 48),
            staticBytes: KernelSource.tileStaticBytes) == 7)
    // Rows of 4 more than a multiple of 8 chunks are their own pitch.
    #expect(KernelSource.tileSharedBytes(matrices: 1, chunks: 1) == 16 * 4 * 16 + 4 * 64)
    #expect(KernelSource.tileSharedBytes(matrices: 1, chunks: 108) == 16 * 108 * 16 + 108 * 64)
}

@Test func tilesPastOneWaveStreamThreeBlocksAMultiprocessorForFalconsGateAndUp() {
    // Two stages of a gate and an up tile of 48 chunks (pitch 52), then the token's activations.
    let bytes = KernelSource.streamSharedBytes(matrices: 2, chunks: 48)
    #expect(bytes == 2 * (2 * 16 * 52 * 16) + 48 * 64)
    #expect(bytes <= KernelSource.tileSharedLimit)
    #expect(
        CUDABackend.residentTiles(
            warps: KernelSource.streamWarps, sharedBytes: bytes, staticBytes: KernelSource.streamStaticBytes,
            registers: KernelSource.streamRegisters) == 3)
    // The registers the kernel may take leave room for four blocks.
    #expect(KernelSource.streamRegisters * 32 * KernelSource.streamWarps * 4 <= 65_536)
}

@Test func theStreamedKernelHoldsMoreBlocksThanTheQueryKeyValueTilesOfTheTwoBillionShapeButNotOfBitnet3b() {
    // On 132 multiprocessors: bitnet-3b's 600 query/key/value tiles (50 chunks) are more than the streamed kernel's
    // 528 blocks, so they stream; 2B-4T's 240 query/key/value and 160 output tiles (40 chunks) are not, so they take
    // ternary_tiles_1. Both shapes' gate and up pairs stream, four blocks a multiprocessor at 2B-4T's width.
    #expect(CUDABackend.streamedTileBlocks(matrices: 2, chunks: 40, multiprocessors: 132) == 528)
    #expect(CUDABackend.streamedTileBlocks(matrices: 1, chunks: 50, multiprocessors: 132) == 528)
    #expect(CUDABackend.streamedTileBlocks(matrices: 1, chunks: 40, multiprocessors: 132) == 528)
    // Two stages of rows too wide for a block's shared memory: no streamed launch.
    #expect(CUDABackend.streamedTileBlocks(matrices: 1, chunks: 360, multiprocessors: 132) == 0)
}

@Test func gateAndUpPairsOfFourWarpsAndProductsPastTheStreamedBlocksStream() {
    let streams = { (tiles: Int, pair: Bool, warps: Int, blocks: Int, oneWave: Bool) in
        CUDABackend.takesStreamedTiles(
            tiles: tiles, pair: pair, warps: warps, streamedBlocks: blocks, fitsOneWave: oneWave)
    }
    // 2B-4T's gate and up pair (4 warps a ternary_tiles_1 block) and bitnet-3b's query/key/value product stream;
    // bitnet-large's pair (6 warps) and 2B-4T's query/key/value product (240 tiles) do not.
    #expect(streams(432, true, 4, 528, true))
    #expect(streams(600, false, 4, 528, true))
    #expect(!streams(256, true, 6, 528, true))
    #expect(!streams(240, false, 8, 528, true))
    // Past one wave of ternary_tiles_1 (Falcon3-10B's pair) it streams; without the kernel (before sm_90, or rows
    // too wide) nothing does.
    #expect(streams(1_440, true, 2, 396, false))
    #expect(!streams(1_440, true, 2, 0, false))
    #expect(!streams(432, true, 4, 0, true))
}

@Test func fewTokenTilesHoldEveryTokensActivationsAndFitTheLayersOfTheTwoBillionShape() {
    // Eight tokens' activations of 40 chunks, 64 bytes apart, after a gate and an up tile.
    let gateAndUp = KernelSource.tileSharedBytes(matrices: 2, chunks: 40, tokens: 8)
    #expect(gateAndUp == 2 * 16 * 44 * 16 + 8 * 40 * 64 + 7 * 64)
    // One token's are what ternary_tiles_1 has.
    #expect(
        KernelSource.tileSharedBytes(matrices: 2, chunks: 40, tokens: 1)
            == KernelSource.tileSharedBytes(matrices: 2, chunks: 40))
    // 2B-4T at eight tokens: 432 gate and up tiles of 4 warps and 160 down tiles (108 chunks) of 8 warps each
    // fit in one wave of an H200's 132 multiprocessors.
    let blocks = { (warps: Int, bytes: Int) in
        CUDABackend.residentTiles(
            warps: warps, sharedBytes: bytes, staticBytes: KernelSource.fewTokenTileStaticBytes) * 132
    }
    #expect(blocks(4, gateAndUp) >= 432)
    let down = KernelSource.tileSharedBytes(matrices: 1, chunks: 108, tokens: 8)
    #expect(down <= KernelSource.tileSharedLimit)
    #expect(blocks(8, down) >= 160)
}
