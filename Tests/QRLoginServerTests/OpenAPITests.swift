import AsyncHTTPClient
import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOHTTP1
import QRLoginCore
@testable import QRLoginServer
import Testing

/// The OpenAPI document (`Resources/openapi.json`, served at `/openapi.json`) and the router
/// must describe the same API: every route the router has is in the document, and every path
/// and method of the document is a route. (The bodies the HTTP tests receive are checked
/// against the document's schemas by scripts/openapi/validate_responses.py in scripts/test.sh.)
@Suite("OpenAPI document")
struct OpenAPITests {
    static let methods: Set<String> = ["get", "put", "post", "delete", "options", "head", "patch", "trace"]

    /// The document as the server serves it.
    static func document() throws -> [String: Any] {
        let assets = try WebAssets.load()
        return try #require(try JSONSerialization.jsonObject(with: Data(assets.openAPI)) as? [String: Any])
    }

    /// `METHOD /path` of every route of the server's router, `:name` written `{name}`.
    static func routerRoutes() async throws -> Set<String> {
        let store = MemoryStore()
        let clock = ManualClock(Date())
        let configuration = ServerConfiguration()
        let shared = try await SharedState.make(for: store, given: nil, logger: Logger(label: "test"))
        let verifier = DPoPVerifier(publicBaseURL: configuration.publicBaseURL, replayCache: shared.replayCache, clock: clock)
        let service = LoginService(
            store: store, verifier: verifier, notifier: shared.notifier, clock: clock, settings: configuration.flow, codeSender: CapturingCodeSender()
        )
        let keyring = Keyring(store: store, clock: clock, tokenLifetime: configuration.oauth.idTokenTTL)
        let router = buildRouter(
            service: service, keyring: keyring, configuration: configuration, clock: clock, assets: try WebAssets.load(), shared: shared
        )
        return Set(router.routes.map { "\($0.method.rawValue) \($0.path.description)" })
    }

    @Test("Every route of the router is in the document, and every operation of the document is a route")
    func routesAndDocumentAgree() async throws {
        let document = try Self.document()
        let paths = try #require(document["paths"] as? [String: [String: Any]])
        let documented = Set(paths.flatMap { path, item in
            item.keys.filter(Self.methods.contains).map { "\($0.uppercased()) \(path)" }
        })
        let routes = try await Self.routerRoutes()
        #expect(routes.count > 40, "too few routes to judge: \(routes.sorted())")
        let undocumented = routes.subtracting(documented).sorted()
        let missing = documented.subtracting(routes).sorted()
        #expect(undocumented.isEmpty, "routes the document lacks: \(undocumented)")
        #expect(missing.isEmpty, "operations of the document the router lacks: \(missing)")
    }

    @Test("Every operation has a unique operationId, its path parameters declared, and its responses described")
    func operationsAreComplete() throws {
        let document = try Self.document()
        #expect(document["openapi"] as? String == "3.1.0")
        let paths = try #require(document["paths"] as? [String: [String: Any]])
        var ids: [String] = []
        for (path, item) in paths {
            let names = Set(path.matches(of: /\{([A-Za-z]+)\}/).map { String($0.1) })
            for (method, value) in item where Self.methods.contains(method) {
                let operation = try #require(value as? [String: Any])
                ids.append(try #require(operation["operationId"] as? String, "\(method) \(path)"))
                let declared = ((operation["parameters"] as? [[String: Any]] ?? []) + (item["parameters"] as? [[String: Any]] ?? []))
                    .compactMap { parameter -> String? in
                        if let reference = parameter["$ref"] as? String {
                            let name = reference.split(separator: "/").last.map(String.init) ?? ""
                            let components = (document["components"] as? [String: Any])?["parameters"] as? [String: [String: Any]]
                            return components?[name]?["in"] as? String == "path" ? components?[name]?["name"] as? String : nil
                        }
                        return parameter["in"] as? String == "path" ? parameter["name"] as? String : nil
                    }
                #expect(Set(declared) == names, "\(method) \(path): path parameters \(declared) for \(names.sorted())")
                let responses = try #require(operation["responses"] as? [String: Any], "\(method) \(path)")
                #expect(!responses.isEmpty, "\(method) \(path)")
            }
        }
        #expect(Set(ids).count == ids.count, "duplicate operationIds")
    }

    @Test("Every path answers the methods it lacks with 405 and an Allow header naming exactly its own; unknown paths 404")
    func otherMethodsAre405WithAllow() async throws {
        var byPath: [String: Set<String>] = [:]
        for route in try await Self.routerRoutes() {
            let parts = route.split(separator: " ", maxSplits: 1)
            byPath[String(parts[1]), default: []].insert(String(parts[0]))
        }
        let tried: [HTTPRequest.Method] = [.get, .head, .post, .put, .patch, .delete, .options]
        let routes = byPath
        try await withAPI { api, _ in
            var checked = 0
            for (pattern, methods) in routes {
                // A concrete path for the pattern: every capture or wildcard component is "x".
                let path = "/" + pattern.split(separator: "/").map { $0.hasPrefix("{") || $0.hasPrefix(":") || $0.hasPrefix("*") ? "x" : $0 }.joined(separator: "/")
                for method in tried where !methods.contains(method.rawValue) {
                    let reply = try await api.call(method, path)
                    #expect(reply.status == .methodNotAllowed, "\(method) \(path)")
                    let allow = Set((reply.headers[.allow] ?? "").split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) })
                    #expect(allow == methods, "\(method) \(path): Allow \(allow.sorted()), routes \(methods.sorted())")
                    if method != .head { #expect(reply.code == "method_not_allowed", "\(method) \(path)") }
                    checked += 1
                }
            }
            #expect(checked > 150, "too few checked: \(checked)")
            for path in ["/api/v1/nothing-here", "/oauth", "/api/v1/qr/x/y/z", "/nope/x"] {
                #expect(try await api.call(.delete, path).status == .notFound, "\(path)")
            }
            // The routes still answer their own methods.
            #expect(try await api.call(.get, "/health").status == .ok)
            #expect(try await api.call(.head, "/health").status == .ok)
        }
    }

    @Test("GET /openapi.json serves the document")
    func served() async throws {
        let server = try await LiveServer.start()
        let response = try await server.call(.GET, "/openapi.json")
        #expect(response.status == .ok)
        #expect(response.headers["Content-Type"].first == "application/json")
        let served = try await server.json(response)
        #expect(served["openapi"] as? String == "3.1.0")
        #expect((served["paths"] as? [String: Any])?["/api/v1/qr/{id}/scan"] != nil)
        try await server.stop()
    }
}
