import FoundationEssentials
import OnebitModel
import Synchronization

/// The reports of recent runs: in memory, and as one JSON file each in a directory when one is given.
///
/// Bounded: past `capacity` reports, the oldest is forgotten and its file deleted, so a watcher running for months
/// does not fill the disk. Files left by an earlier process are read back at start.
public final class ReportStore: Sendable {
    /// Where report files go (`nil`: memory only).
    public let directory: String?
    /// Most reports kept.
    public let capacity: Int
    /// Oldest first.
    private let reports = Mutex<[SpecialistReport]>([])

    /// A store over `directory` (created with the first report), holding at most `capacity` reports.
    public init(directory: String?, capacity: Int = 500) {
        self.directory = directory
        self.capacity = max(1, capacity)
        guard let directory else { return }
        let files = FileManager.default
        var loaded: [SpecialistReport] = []
        for name in (try? files.contentsOfDirectory(atPath: directory)) ?? [] where name.hasSuffix(".json") {
            guard let data = try? Data(contentsOf: URL(filePath: directory + "/" + name)),
                let json = try? JSONValue(parsing: data), let report = SpecialistReport(json: json)
            else { continue }
            loaded.append(report)
        }
        loaded.sort { ($0.createdAt, $0.id) < ($1.createdAt, $1.id) }
        for old in loaded.dropLast(self.capacity) { try? files.removeItem(atPath: path(of: old.id)) }
        reports.withLock { $0 = Array(loaded.suffix(self.capacity)) }
    }

    /// Keeps `report`, writing its file; the oldest report goes when the store is full.
    public func add(_ report: SpecialistReport) throws(SpecialistError) {
        if let directory {
            let path = path(of: report.id)
            do {
                try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
                try Data(report.json.jsonText.utf8).write(to: URL(filePath: path), options: .atomic)
            } catch {
                throw .storage(path: path, reason: "cannot write the report: \(error)")
            }
        }
        let dropped: [SpecialistReport] = reports.withLock { reports in
            reports.append(report)
            let extra = max(0, reports.count - capacity)
            defer { reports.removeFirst(extra) }
            return Array(reports.prefix(extra))
        }
        if directory != nil {
            for old in dropped { try? FileManager.default.removeItem(atPath: path(of: old.id)) }
        }
    }

    /// The newest reports first, of `specialist` only when given, at most `limit`.
    public func list(specialist: String? = nil, limit: Int = 50) -> [SpecialistReport] {
        reports.withLock { reports in
            Array(reports.reversed().filter { specialist == nil || $0.specialist == specialist }.prefix(max(0, limit)))
        }
    }

    /// The report with this id.
    public func report(id: String) -> SpecialistReport? {
        reports.withLock { reports in reports.last { $0.id == id } }
    }

    private func path(of id: String) -> String { (directory ?? ".") + "/" + id + ".json" }
}
