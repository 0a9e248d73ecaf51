import HTTPTypes
import Hummingbird

/// The methods each route path of a router takes, to answer a request for a path that exists
/// with a method it lacks by 405 and `Allow` (RFC 9110 §15.5.6), not 404.
struct AllowedMethods: Sendable {
    private struct Route: Sendable {
        var path: RouterPath
        var methods: [HTTPRequest.Method]
        /// Components that must match literally: the router prefers such a route over one that
        /// captures the same component.
        var literals: Int
    }

    private let routes: [Route]

    /// The routes of `router`, as registered so far.
    init<Context>(_ router: Router<Context>) {
        var byPath: [String: Route] = [:]
        for route in router.routes {
            // `==` with a string holds only for a literal component that spells it.
            let literals = route.path.components.count { $0 == $0.description }
            byPath[route.path.description, default: Route(path: route.path, methods: [], literals: literals)].methods.append(route.method)
        }
        routes = Array(byPath.values)
    }

    /// The methods `path` takes, in a stable order; empty when no route has this path.
    func methods(for path: String) -> [HTTPRequest.Method] {
        let components = path.split(separator: "/", omittingEmptySubsequences: true)
        let matching = routes.filter { Self.matches($0.path, components) }
        // Of the routes that match, the router serves the most literal ones.
        guard let best = matching.map(\.literals).max() else { return [] }
        let methods = Set(matching.filter { $0.literals == best }.flatMap(\.methods))
        return methods.sorted { $0.rawValue < $1.rawValue }
    }

    /// Whether `pattern` matches the path's `components`. Simpler than the router's own trie (not
    /// public), which resolves one component at a time: the two agree while no literal route
    /// shares a prefix with a capture route of another length, as in this server's routes (the
    /// route test tries every path with every method).
    private static func matches(_ pattern: RouterPath, _ components: [Substring]) -> Bool {
        var index = 0
        for element in pattern.components {
            // `**` takes the rest, at least one component.
            if element.description == "**" { return index < components.count }
            guard index < components.count, element ~= components[index] else { return false }
            index += 1
        }
        return index == components.count
    }
}

/// Answers what reaches the router's not-found responder: 405 with `Allow` when the path exists
/// with other methods, else the 404 it was. Added after every route, so it wraps only that
/// responder (Hummingbird applies a middleware to the routes added after it, and all of them to
/// the not-found responder).
struct MethodNotAllowedMiddleware<Context: RequestContext>: RouterMiddleware {
    let allowed: AllowedMethods

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let methods = allowed.methods(for: request.uri.path)
        guard !methods.isEmpty, !methods.contains(request.method) else { return try await next(request, context) }
        let allow = methods.map(\.rawValue).joined(separator: ", ")
        var answer = ProblemMiddleware<Context>.problem(status: .methodNotAllowed, code: "method_not_allowed", detail: "This path takes \(allow).")
        answer.headers[.allow] = allow
        return answer.response
    }
}
