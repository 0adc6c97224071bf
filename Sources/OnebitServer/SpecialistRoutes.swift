import Hummingbird
import OnebitModel
import OnebitSpecialists

/// The specialists over HTTP: `GET /v1/specialists`, `GET /v1/specialists/{name}`, `POST /v1/specialists/{name}`
/// (the body is the input), `GET /v1/reports?specialist=&limit=` and `GET /v1/reports/{id}`.
enum SpecialistRoutes {
    /// Most reports one listing returns.
    static let listLimit = 500

    /// Adds the routes to `api` (the group that carries the API key check).
    static func add(to api: RouterGroup<ServerContext>, runner: SpecialistRunner) {
        api.get("v1/specialists") { _, _ in
            CompletionService.json(
                .object([
                    "object": .string("list"),
                    "data": .array(runner.catalog.specialists.map(\.json)),
                ]))
        }
        api.get("v1/specialists/{name}") { _, context in
            let name = context.parameters.get("name") ?? ""
            guard let definition = runner.catalog.specialist(named: name) else {
                throw error(for: .unknownSpecialist(name: name, known: runner.catalog.specialists.map(\.name)))
            }
            return CompletionService.json(definition.json)
        }
        api.post("v1/specialists/{name}") { request, context in
            let name = context.parameters.get("name") ?? ""
            var request = request
            let body = try await request.collectBody(upTo: context.maxUploadSize)
            let input: JSONValue
            if body.readableBytes == 0 {
                input = .object([:])
            } else {
                do {
                    input = try JSONValue(parsing: body.readableBytesView)
                } catch {
                    throw APIError(
                        status: .badRequest, message: "the request body is not valid JSON: \(error)")
                }
            }
            do {
                return CompletionService.json(try await runner.run(name, input: input).json)
            } catch let error as SpecialistError {
                throw Self.error(for: error)
            }
        }
        api.get("v1/reports") { request, _ in
            let query = request.uri.queryParameters
            let limit = query.get("limit", as: Int.self) ?? 50
            guard (1...listLimit).contains(limit) else {
                throw APIError.invalid("limit", "limit must be 1 to \(listLimit)")
            }
            let reports = runner.reports.list(specialist: query.get("specialist"), limit: limit)
            return CompletionService.json(.object(["object": .string("list"), "data": .array(reports.map(\.json))]))
        }
        api.get("v1/reports/{id}") { _, context in
            let id = context.parameters.get("id") ?? ""
            guard let report = runner.reports.report(id: id) else {
                throw APIError(
                    status: .notFound, message: "no report has the id '\(id)'; GET /v1/reports lists them",
                    param: "id", code: "report_not_found")
            }
            return CompletionService.json(report.json)
        }
    }

    /// The HTTP answer to a specialist's failure.
    static func error(for error: SpecialistError) -> APIError {
        switch error {
        case .unknownSpecialist:
            APIError(status: .notFound, message: error.description, param: "name", code: "specialist_not_found")
        case .invalidInput(let path, _):
            APIError.invalid(
                path.hasPrefix("input.") ? String(path.dropFirst(6)) : path, error.description, code: "invalid_input")
        case .toolFailed:
            APIError(status: .unprocessableContent, message: error.description, code: "tool_failed")
        case .generationFailed:
            APIError(status: .serviceUnavailable, message: error.description, type: "server_error", retryAfter: 1)
        case .invalidDefinition, .duplicateName, .invalidOutput, .toolNotAllowed, .storage:
            APIError(status: .internalServerError, message: error.description, type: "server_error")
        }
    }
}
