import CCUDA

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// The first GPU, its primary context and the one stream every operation is queued on.
final class CUDAContext {
    let driver: ob_cuda_driver
    let device: CUdevice
    let context: CUcontext
    let stream: CUstream
    /// The GPU's name as the driver reports it.
    let name: String
    /// Compute capability.
    let major: Int, minor: Int
    /// Streaming multiprocessors.
    let multiprocessors: Int
    /// Bytes of device memory the context's buffers hold now, and the most they have held since
    /// ``resetPeakAllocation()``. The driver's own memory (the context, modules, graphs) is not counted.
    private(set) var allocatedBytes = 0
    private(set) var peakAllocatedBytes = 0

    /// Opens the driver and the first GPU; throws when either is missing.
    init() throws(CUDAError) {
        var table = ob_cuda_driver()
        var message = [CChar](repeating: 0, count: 512)
        guard ob_cuda_open_driver("libcuda.so.1", &table, &message, message.count) == 0 else {
            throw .driverUnavailable(cString(message))
        }
        driver = table
        try Self.check(table, table.cuInit!(0), "cuInit")
        var count: Int32 = 0
        try Self.check(table, table.cuDeviceGetCount!(&count), "cuDeviceGetCount")
        guard count > 0 else { throw .noDevice }
        var device: CUdevice = 0
        try Self.check(table, table.cuDeviceGet!(&device, 0), "cuDeviceGet")
        self.device = device
        var nameBytes = [CChar](repeating: 0, count: 256)
        try Self.check(table, table.cuDeviceGetName!(&nameBytes, Int32(nameBytes.count), device), "cuDeviceGetName")
        name = cString(nameBytes)
        var value: Int32 = 0
        try Self.check(
            table, table.cuDeviceGetAttribute!(&value, Int32(OB_CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR), device),
            "cuDeviceGetAttribute")
        major = Int(value)
        try Self.check(
            table, table.cuDeviceGetAttribute!(&value, Int32(OB_CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR), device),
            "cuDeviceGetAttribute")
        minor = Int(value)
        try Self.check(
            table, table.cuDeviceGetAttribute!(&value, Int32(OB_CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT), device),
            "cuDeviceGetAttribute")
        multiprocessors = Int(value)
        var context: CUcontext?
        try Self.check(table, table.cuDevicePrimaryCtxRetain!(&context, device), "cuDevicePrimaryCtxRetain")
        guard let context else {
            throw .driverCall(function: "cuDevicePrimaryCtxRetain", code: 0, message: "no context")
        }
        self.context = context
        try Self.check(table, table.cuCtxSetCurrent!(context), "cuCtxSetCurrent")
        var stream: CUstream?
        try Self.check(table, table.cuStreamCreate!(&stream, UInt32(OB_CU_STREAM_NON_BLOCKING)), "cuStreamCreate")
        guard let stream else { throw .driverCall(function: "cuStreamCreate", code: 0, message: "no stream") }
        self.stream = stream
    }

    deinit {
        _ = driver.cuStreamDestroy!(stream)
        _ = driver.cuDevicePrimaryCtxRelease!(device)
    }

    /// Binds the context to the calling thread (the driver keeps the current context per thread, and the engine may
    /// run a model on another thread than the one that loaded it).
    func makeCurrent() {
        must(driver.cuCtxSetCurrent!(context), "cuCtxSetCurrent")
    }

    /// Counts a buffer of `bytes` allocated (positive) or freed (negative).
    func noteAllocation(_ bytes: Int) {
        allocatedBytes += bytes
        peakAllocatedBytes = max(peakAllocatedBytes, allocatedBytes)
    }

    /// Starts the peak of ``peakAllocatedBytes`` again from what the buffers hold now.
    func resetPeakAllocation() {
        peakAllocatedBytes = allocatedBytes
    }

    /// Bytes of device memory free now.
    func freeMemory() -> Int {
        var free = 0
        var total = 0
        must(driver.cuMemGetInfo!(&free, &total), "cuMemGetInfo")
        return free
    }

    /// Stops the program on a failed call during a run: after a fault the GPU's state is unknown and nothing can
    /// be recovered.
    func must(_ result: CUresult, _ function: String) {
        do {
            try Self.check(driver, result, function)
        } catch {
            fatalError("\(error)")
        }
    }

    static func check(_ driver: ob_cuda_driver, _ result: CUresult, _ function: String) throws(CUDAError) {
        guard result != Int32(OB_CUDA_SUCCESS) else { return }
        var text: UnsafePointer<CChar>?
        _ = driver.cuGetErrorString!(result, &text)
        throw .driverCall(function: function, code: result, message: text.map { String(cString: $0) } ?? "unknown")
    }
}

/// A device buffer holding a copy of an array, and that array: a list passed again unchanged (the positions of
/// every layer of a step, its block tables, the head's rows of every greedy step) needs no copy.
struct DeviceCopy<Value: Equatable> {
    /// The buffer; it holds `values` at its start.
    var buffer: DeviceBuffer?
    var values: [Value] = []

    /// The buffer, where it holds `list` already.
    func buffer(holding list: [Value]) -> DeviceBuffer? {
        list == values ? buffer : nil
    }
}

/// Device memory, freed with its owner.
final class DeviceBuffer {
    let context: CUDAContext
    let address: CUdeviceptr
    let byteCount: Int

    /// `byteCount` zeroed bytes.
    init(_ context: CUDAContext, byteCount: Int) {
        self.context = context
        self.byteCount = byteCount
        var address: CUdeviceptr = 0
        context.must(context.driver.cuMemAlloc!(&address, max(byteCount, 1)), "cuMemAlloc (\(byteCount) bytes)")
        context.noteAllocation(max(byteCount, 1))
        // On our stream, not the legacy default one: a non-blocking stream does not wait for that, and a late
        // memset would wipe what the stream uploads or computes next.
        context.must(
            context.driver.cuMemsetD8Async!(address, 0, max(byteCount, 1), context.stream), "cuMemsetD8Async")
        self.address = address
    }

    /// A buffer holding a copy of `values`.
    convenience init<T>(_ context: CUDAContext, copying values: [T]) {
        self.init(context, byteCount: values.count * MemoryLayout<T>.stride)
        upload(values)
    }

    /// Copies `values` to the start of the buffer, in stream order.
    func upload<T>(_ values: [T]) {
        let bytes = values.count * MemoryLayout<T>.stride
        precondition(bytes <= byteCount, "upload larger than the buffer")
        values.withUnsafeBytes { source in
            context.must(
                context.driver.cuMemcpyHtoDAsync!(address, source.baseAddress, bytes, context.stream),
                "cuMemcpyHtoDAsync")
        }
    }

    deinit {
        _ = context.driver.cuMemFree!(address)
        context.noteAllocation(-max(byteCount, 1))
    }
}

/// Page-locked host memory, which a copy from the device fills in stream order without holding the host up (a copy
/// into ordinary memory returns only once it is done); freed with its owner.
final class HostBuffer {
    let context: CUDAContext
    let byteCount: Int
    private let pointer: UnsafeMutableRawPointer

    init(_ context: CUDAContext, byteCount: Int) {
        self.context = context
        self.byteCount = byteCount
        var pointer: UnsafeMutableRawPointer?
        context.must(context.driver.cuMemAllocHost!(&pointer, max(byteCount, 1)), "cuMemAllocHost (\(byteCount) bytes)")
        self.pointer = pointer!
    }

    /// Queues a copy of `bytes` bytes from `address` on the device into the start of the buffer.
    func queueCopy(from address: CUdeviceptr, bytes: Int) {
        precondition(bytes <= byteCount, "copy larger than the buffer")
        context.must(
            context.driver.cuMemcpyDtoHAsync!(pointer, address, bytes, context.stream), "cuMemcpyDtoHAsync")
    }

    /// The first `count` values the buffer holds.
    func values<Value: BitwiseCopyable>(count: Int) -> [Value] {
        precondition(count * MemoryLayout<Value>.stride <= byteCount, "read past the buffer")
        return Array(UnsafeBufferPointer(start: pointer.assumingMemoryBound(to: Value.self), count: count))
    }

    deinit {
        _ = context.driver.cuMemFreeHost!(pointer)
    }
}

/// A point in the stream that the host can wait for alone, without the work queued after it.
final class StreamEvent {
    let context: CUDAContext
    private let event: CUevent

    init(_ context: CUDAContext) {
        self.context = context
        var event: CUevent?
        context.must(context.driver.cuEventCreate!(&event, UInt32(OB_CU_EVENT_DISABLE_TIMING)), "cuEventCreate")
        self.event = event!
    }

    /// Marks the stream's end as it stands now.
    func record() {
        context.must(context.driver.cuEventRecord!(event, context.stream), "cuEventRecord")
    }

    /// Waits for what the stream held when the event was last recorded.
    func wait() {
        context.must(context.driver.cuEventSynchronize!(event), "cuEventSynchronize")
    }

    deinit {
        _ = context.driver.cuEventDestroy!(event)
    }
}

/// The text of a NUL-terminated C string held in an array.
func cString(_ bytes: [CChar]) -> String {
    bytes.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
}
