import CCUDA
import Testing

@testable import OnebitCUDA

@Test func aMissingLibraryIsAnErrorNotACrash() {
    var table = ob_cuda_driver()
    var message = [CChar](repeating: 0, count: 256)
    let result = ob_cuda_open_driver("libonebit-absent.so.1", &table, &message, message.count)
    #expect(result == -1)
    #expect(cString(message).contains("libonebit-absent.so.1"))
}

@Test func aLibraryWithoutTheDriverFunctionsIsRejected() {
    // The C library loads but has no cuInit: the table must not be half filled and used.
    var table = ob_cuda_driver()
    var message = [CChar](repeating: 0, count: 256)
    let result = ob_cuda_open_driver("libc.so.6", &table, &message, message.count)
    #expect(result == -1)
    #expect(cString(message).contains("cuInit"))
}

@Test func nvrtcIsLookedForUnderEveryName() {
    var table = ob_nvrtc()
    var message = [CChar](repeating: 0, count: 256)
    let names: [StaticString] = ["libonebit-absent-a.so", "libonebit-absent-b.so"]
    let pointers = names.map { UnsafeRawPointer($0.utf8Start).assumingMemoryBound(to: CChar.self) }
    let result = pointers.map { Optional($0) }.withUnsafeBufferPointer {
        ob_cuda_open_nvrtc($0.baseAddress, $0.count, &table, &message, message.count)
    }
    #expect(result == -1)
    #expect(cString(message).contains("libonebit-absent-b.so"))
}

@Test func withoutADriverTheBackendThrowsAnErrorThatNamesTheFallback() throws {
    var table = ob_cuda_driver()
    var message = [CChar](repeating: 0, count: 256)
    // On a machine with a GPU driver the backend may start; this test is about the machines without one.
    try #require(ob_cuda_open_driver("libcuda.so.1", &table, &message, message.count) != 0)
    #expect(throws: CUDAError.self) { _ = try CUDABackend() }
    do {
        _ = try CUDABackend()
    } catch {
        guard case .driverUnavailable = error else {
            Issue.record("expected driverUnavailable, got \(error)")
            return
        }
        #expect(error.description.contains("--device cpu"))
    }
}
