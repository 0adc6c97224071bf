#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#endif

/// `strftime_now(format)`: the local time formatted like Python's `datetime.now().strftime(format)`, which hands
/// the format to the C library after expanding `%f` (microseconds) itself.
enum TemplateClock {
    static func formatNow(_ format: String) -> String {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        var seconds = now.tv_sec
        var parts = tm()
        localtime_r(&seconds, &parts)
        let microseconds = String(Int(now.tv_nsec) / 1000)
        let padded = String(repeating: "0", count: 6 - microseconds.count) + microseconds
        let expanded = PythonText.replace(format, "%f", with: padded, count: -1)
        var buffer = [CChar](repeating: 0, count: 1024)
        let length = strftime(&buffer, buffer.count, expanded, &parts)
        return String(decoding: buffer[..<length].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}
