import CKernels
import Synchronization

/// A read-bandwidth probe: the speed limit of memory-bound decoding on this machine.
public enum MemoryBandwidth {
    /// The best of `repetitions` timed passes of every thread of `pool` reading its share of a `byteCount` buffer
    /// (far larger than the caches), in bytes per second.
    public static func measure(pool: ThreadPool, byteCount: Int = 1 << 29, repetitions: Int = 5) -> Double {
        let words = byteCount / 8
        let buffer = AlignedBuffer<UInt64>(zeroed: words)
        let base = buffer.pointer
        // Each thread first touches the part it reads, so the pages live where that thread runs.
        pool.parallelFor(words, granularity: 512) { range in
            for i in stride(from: range.lowerBound, to: range.upperBound, by: 512) { base[i] = UInt64(i) }
        }
        var best = 0.0
        let sink = Atomic<UInt64>(0)
        for _ in 0..<repetitions {
            let clock = ContinuousClock()
            let elapsed = clock.measure {
                pool.parallelFor(words, granularity: 1 << 16) { range in
                    sink.add(ob_read_words(base + range.lowerBound, range.count), ordering: .relaxed)
                }
            }
            best = max(best, Double(words * 8) / elapsed.seconds)
        }
        return best
    }
}

extension Duration {
    /// The duration in seconds.
    public var seconds: Double {
        let (whole, fraction) = components
        return Double(whole) + Double(fraction) * 1e-18
    }
}
