import FoundationEssentials
import OnebitModel

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// The specialists one can run: the built-ins, then the user's `*.toml` files (a file may replace a built-in of
/// its name).
public struct SpecialistCatalog: Sendable {
    /// Every specialist, built-ins first, then user files in file-name order.
    public private(set) var specialists: [SpecialistDefinition]

    /// The built-in specialists only.
    public static func builtIn() -> SpecialistCatalog {
        SpecialistCatalog(
            specialists: BuiltinSpecialists.files.map { name, text in
                do {
                    return try DefinitionParser.parse(text, file: "built-in \(name).toml")
                } catch {
                    preconditionFailure("a built-in specialist must parse: \(error)")
                }
            })
    }

    /// The built-ins plus every `*.toml` file in `configDirectory` (none when it is `nil` or does not exist).
    public static func load(configDirectory: String?) throws(SpecialistError) -> SpecialistCatalog {
        var catalog = builtIn()
        guard let configDirectory else { return catalog }
        let files = FileManager.default
        var isDirectory = false
        guard files.fileExists(atPath: configDirectory, isDirectory: &isDirectory) else { return catalog }
        guard isDirectory else {
            throw .invalidDefinition(file: configDirectory, key: "", reason: "is not a directory of *.toml files")
        }
        let names: [String]
        do {
            names = try files.contentsOfDirectory(atPath: configDirectory).filter { $0.hasSuffix(".toml") }.sorted()
        } catch {
            throw .invalidDefinition(file: configDirectory, key: "", reason: "cannot be listed: \(error)")
        }
        var origins: [String: String] = [:]
        for name in names {
            let path = configDirectory + "/" + name
            let data: Data
            do {
                data = try Data(contentsOf: URL(filePath: path))
            } catch {
                throw .invalidDefinition(file: path, key: "", reason: "cannot be read: \(error)")
            }
            guard let text = String(validating: data, as: UTF8.self) else {
                throw .invalidDefinition(file: path, key: "", reason: "is not UTF-8 text")
            }
            let definition = try DefinitionParser.parse(text, file: path)
            if let earlier = origins[definition.name] {
                throw .duplicateName(name: definition.name, files: [earlier, path])
            }
            origins[definition.name] = path
            catalog.add(definition)
        }
        return catalog
    }

    /// The specialist named `name`.
    public func specialist(named name: String) -> SpecialistDefinition? {
        specialists.first { $0.name == name }
    }

    /// Adds `definition`, replacing the one of the same name.
    public mutating func add(_ definition: SpecialistDefinition) {
        if let index = specialists.firstIndex(where: { $0.name == definition.name }) {
            specialists[index] = definition
        } else {
            specialists.append(definition)
        }
    }
}

/// Where onebit keeps its configuration and the specialists' reports.
public enum SpecialistPaths {
    /// `$ONEBIT_CONFIG_DIR`, else `$XDG_CONFIG_HOME/onebit`, else `~/.config/onebit`; `nil` without a home.
    public static func configRoot(environment: (String) -> String? = environmentValue) -> String? {
        if let root = environment("ONEBIT_CONFIG_DIR"), !root.isEmpty { return root }
        if let xdg = environment("XDG_CONFIG_HOME"), !xdg.isEmpty { return xdg + "/onebit" }
        if let home = environment("HOME"), !home.isEmpty { return home + "/.config/onebit" }
        return nil
    }

    /// The user's specialist definitions: `<config root>/specialists`.
    public static func specialistsDirectory(root: String?) -> String? { root.map { $0 + "/specialists" } }

    /// Where reports are written: `<config root>/reports`.
    public static func reportsDirectory(root: String?) -> String? { root.map { $0 + "/reports" } }

    /// The process environment's value of `name`.
    public static func environmentValue(_ name: String) -> String? {
        getenv(name).map { String(cString: $0) }
    }
}

extension SpecialistCatalog {
    /// Adds an anvil that runs `command` on every new commit of `repository` (what `serve --watch` sets up), named
    /// `anvil-` and the repository's folder name; returns its name.
    @discardableResult
    public mutating func watch(repository: String, command: String, interval: Int) -> String {
        var definition = SpecialistCatalog.builtIn().specialist(named: "anvil")!
        let folder = repository.split(separator: "/").last.map(String.init) ?? "repository"
        let slug = String(folder.lowercased().map { $0.isLetter || $0.isNumber ? $0 : "-" })
        var name = "anvil-" + slug
        var suffix = 2
        while specialist(named: name) != nil {
            name = "anvil-\(slug)-\(suffix)"
            suffix += 1
        }
        definition.name = name
        definition.origin = "--watch \(repository)"
        definition.trigger = .gitCommit(
            repository: repository, interval: interval, input: .object(["command": .string(command)]))
        add(definition)
        return name
    }
}
