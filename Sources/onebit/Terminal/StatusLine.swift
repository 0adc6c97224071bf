#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// A one-line status or progress bar on standard error, drawn only when standard error is a terminal so that
/// scripts and logs stay clean.
final class StatusLine {
    private let enabled = isatty(STDERR_FILENO) != 0
    private var lastDrawn = -1

    /// Shows `text` in place of the previous status.
    func show(_ text: String) {
        guard enabled else { return }
        write("\r\u{1B}[2K" + text)
    }

    /// Draws a progress bar for `fraction` of the work, redrawing only when the whole percentage changes.
    func progress(_ label: String, fraction: Double, detail: String = "") {
        let percent = Int((max(0, min(1, fraction)) * 100).rounded(.down))
        guard enabled, percent != lastDrawn else { return }
        lastDrawn = percent
        let width = 30
        let filled = percent * width / 100
        let bar = String(repeating: "█", count: filled) + String(repeating: "·", count: width - filled)
        show("\(label) [\(bar)] \(percent)% \(detail)")
    }

    /// Erases the status line.
    func clear() {
        guard enabled else { return }
        write("\r\u{1B}[2K")
    }

    private func write(_ text: String) { writeError(text) }
}
