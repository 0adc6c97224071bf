import ArgumentParser
import FoundationEssentials
import OnebitEngine
import OnebitModel
import OnebitSpecialists

/// `onebit specialists`: list, show and run the specialist agents.
struct Specialists: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "List, show and run specialists: small agents with a role, local tools and a strict output schema.",
        discussion: """
            Built-in specialists: magistrate, librarian, quartermaster, anvil, sentinel, scribe. Add your own as TOML \
            files in $ONEBIT_CONFIG_DIR/specialists (default $XDG_CONFIG_HOME/onebit/specialists or \
            ~/.config/onebit/specialists); a file named like a built-in replaces it.
            """,
        subcommands: [List.self, Show.self, Run.self]
    )

    /// Where definitions are read from, shared by the subcommands.
    struct Location: ParsableArguments {
        @Option(
            help: ArgumentHelp(
                "The configuration directory (default: $ONEBIT_CONFIG_DIR, $XDG_CONFIG_HOME/onebit or "
                    + "~/.config/onebit); specialists are read from its specialists/ folder, reports kept in reports/.",
                valueName: "dir"))
        var configDir: String?

        var root: String? { configDir ?? SpecialistPaths.configRoot() }

        func catalog() throws -> SpecialistCatalog {
            try SpecialistCatalog.load(configDirectory: SpecialistPaths.specialistsDirectory(root: root))
        }
    }

    /// `onebit specialists list`.
    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List the specialists.")

        @OptionGroup var location: Location

        @Flag(help: "Print the definitions as one JSON array.")
        var json = false

        func run() throws {
            let catalog = try location.catalog()
            if json {
                print(JSONValue.array(catalog.specialists.map(\.json)).jsonText)
                return
            }
            let width = catalog.specialists.map(\.name.count).max() ?? 0
            for definition in catalog.specialists {
                let name = definition.name.padding(to: width)
                let trigger = definition.trigger == .onDemand ? "" : " [\(definition.trigger.kind)]"
                print("\(name)  \(definition.description)\(trigger)")
            }
        }
    }

    /// `onebit specialists show NAME`.
    struct Show: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print a specialist's definition as JSON (schemas, tools, trigger, prompt).")

        @OptionGroup var location: Location

        @Argument(help: "The specialist's name.")
        var name: String

        func run() throws {
            let catalog = try location.catalog()
            guard let definition = catalog.specialist(named: name) else {
                throw SpecialistError.unknownSpecialist(name: name, known: catalog.specialists.map(\.name))
            }
            print(definition.json.jsonText)
        }
    }

    /// `onebit specialists run NAME`.
    struct Run: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Run a specialist once and print its report as JSON (also kept in the reports directory).")

        @OptionGroup var location: Location
        @OptionGroup var options: ModelOptions

        @Argument(help: "The specialist's name.")
        var name: String

        @Option(help: ArgumentHelp("The input as JSON text.", valueName: "json"))
        var input: String?

        @Option(help: ArgumentHelp("A file holding the input as JSON.", valueName: "path"))
        var inputFile: String?

        @Flag(help: "Do not keep the report in the reports directory.")
        var noSave = false

        func validate() throws {
            if input != nil, inputFile != nil { throw ValidationError("give --input or --input-file, not both") }
        }

        func run() async throws {
            let catalog = try location.catalog()
            guard catalog.specialist(named: name) != nil else {
                throw SpecialistError.unknownSpecialist(name: name, known: catalog.specialists.map(\.name))
            }
            let value = try parsedInput()
            let language = try options.loadPrepared()
            let tokenizer = language.model.tokenizer
            let chatTemplate = language.model.chatTemplate
            let context = min(language.model.config.contextLength, 4096)
            let scheduler = Scheduler(
                model: language, configuration: SchedulerConfiguration(maxConcurrency: 1, contextLength: context))
            defer { scheduler.shutdown() }
            let reports = ReportStore(
                directory: noSave ? nil : SpecialistPaths.reportsDirectory(root: location.root))
            let runner = SpecialistRunner(
                catalog: catalog,
                model: SpecialistModel(scheduler: scheduler, tokenizer: tokenizer, chatTemplate: chatTemplate),
                reports: reports)
            let report = try await runner.run(name, input: value)
            print(report.json.jsonText)
        }

        private func parsedInput() throws -> JSONValue {
            var text = input ?? "{}"
            if let inputFile {
                let data: Data
                do {
                    data = try Data(contentsOf: URL(filePath: inputFile))
                } catch {
                    throw ValidationError("cannot read --input-file \(inputFile): \(error)")
                }
                text = String(decoding: data, as: UTF8.self)
            }
            do {
                return try JSONValue(parsing: text)
            } catch {
                throw ValidationError("the input is not valid JSON: \(error.description)")
            }
        }
    }
}

extension String {
    /// The string padded with spaces to `width` characters.
    fileprivate func padding(to width: Int) -> String {
        count >= width ? self : self + String(repeating: " ", count: width - count)
    }
}
