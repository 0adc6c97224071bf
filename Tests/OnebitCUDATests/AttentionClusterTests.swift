import Testing

@testable import OnebitCUDA

@Test func fewSequencesSpreadOverClustersOfBlocks() {
    // 2B-4T's 5 kv heads on a GPU of 132 multiprocessors: 2, 4, 8 and 16 sequences.
    #expect(CUDABackend.attentionRowsSplits(clusters: 5 * 2, multiprocessors: 132, largest: 16) == 16)
    #expect(CUDABackend.attentionRowsSplits(clusters: 5 * 4, multiprocessors: 132, largest: 16) == 8)
    #expect(CUDABackend.attentionRowsSplits(clusters: 5 * 8, multiprocessors: 132, largest: 16) == 4)
    #expect(CUDABackend.attentionRowsSplits(clusters: 5 * 16, multiprocessors: 132, largest: 16) == 2)
}

@Test func clustersNeverPassTheLargestAndManySequencesTakeNone() {
    // A GPU (or a slice of one) whose clusters hold 8 blocks, or none.
    #expect(CUDABackend.attentionRowsSplits(clusters: 5, multiprocessors: 132, largest: 8) == 8)
    #expect(CUDABackend.attentionRowsSplits(clusters: 5, multiprocessors: 132, largest: 1) == 1)
    #expect(CUDABackend.attentionRowsSplits(clusters: 1, multiprocessors: 132, largest: 16) == 16)
    #expect(CUDABackend.attentionRowsSplits(clusters: 5 * 32, multiprocessors: 132, largest: 16) == 1)
    #expect(CUDABackend.attentionRowsSplits(clusters: 5 * 64, multiprocessors: 132, largest: 16) == 1)
    #expect(CUDABackend.attentionRowsSplits(clusters: 3, multiprocessors: 1, largest: 16) == 1)
}

@Test func rowsLeftToThePlainAttentionKernelLaunchInRunsOfConsecutiveRows() {
    #expect(CUDABackend.consecutiveRuns([]) == [])
    #expect(CUDABackend.consecutiveRuns([5..<6, 0..<2, 2..<3, 7..<9, 6..<7]) == [0..<3, 5..<9])
    #expect(CUDABackend.consecutiveRuns([3..<4, 0..<1]) == [0..<1, 3..<4])
}

@Test func segmentsBlockTablesStartWhereThoseBeforeThemEnd() {
    #expect(CUDABackend.offsets(ofLengths: []) == [])
    #expect(CUDABackend.offsets(ofLengths: [3, 0, 5, 1]) == [0, 3, 3, 8])
}
