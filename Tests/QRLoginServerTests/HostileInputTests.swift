import Foundation
import HTTPTypes
import QRLoginCore
import QRLoginServer
import Testing

@Suite("Bad and hostile input")
struct HostileInputTests {
    @Test("Malformed JSON, wrong types and missing fields get 400 problem JSON and change nothing", arguments: [
        #"{"username": "x""#,
        #"{"username": 5, "password": "long enough"}"#,
        #"{"password": "long enough"}"#,
        #"[]"#,
        #"{"username": "has space", "password": "long enough"}"#,
        #"{"username": "ok", "password": "short"}"#,
        #"{"username": "ok", "password": "long enough", "phone": "12345"}"#,
    ])
    func badRegistration(raw: String) async throws {
        let store = MemoryStore()
        try await withAPI(store: store) { api, _ in
            let reply = try await api.call(.post, "/api/v1/accounts", raw: raw)
            #expect(reply.status == .badRequest)
            #expect(reply.headers[.contentType] == "application/problem+json")
            #expect(reply.code == "invalid_request")
            #expect(reply["status"] as? Int == 400)
            #expect(reply["title"] as? String != nil)
            #expect(reply["detail"] as? String != nil)
        }
        #expect(try await store.account(username: "ok") == nil)
    }

    @Test("Bad device fields on create get 400", arguments: [
        #"{"device": {"type": "toaster", "name": "x"}}"#,
        #"{"device": {"type": "pc", "name": ""}}"#,
        #"{"device": {"type": "pc", "name": "bell\u0007"}}"#,
        #"{"device": {"type": "pc"}}"#,
    ])
    func badCreate(raw: String) async throws {
        try await withAPI { api, _ in
            let reply = try await api.call(.post, "/api/v1/qr", raw: raw, device: TestDevice())
            #expect(reply.status == .badRequest, "\(reply.text)")
        }
    }

    @Test("A script in a device name comes back as JSON-escaped data")
    func scriptName() async throws {
        try await withAPI { api, _ in
            let phone = try await api.signedInPhone("alice")
            let login = try await api.newLogin(name: "<script>alert(1)</script>")
            let scanned = try await api.scan(login, by: phone)
            #expect((scanned["requester"] as? [String: Any])?["name"] as? String == "<script>alert(1)</script>")
            #expect(scanned.headers[.contentType]?.hasPrefix("application/json") == true)
        }
    }

    @Test("A 100 KB name is refused with 413 and nothing is stored")
    func hugeName() async throws {
        let store = MemoryStore()
        try await withAPI(store: store) { api, _ in
            let huge = String(repeating: "A", count: 100_000)
            let create = try await api.call(.post, "/api/v1/qr", json: ["device": ["type": "pc", "name": huge]], device: TestDevice())
            #expect(create.status == .contentTooLarge)
            #expect(create.code == "body_too_large")
            let register = try await api.call(.post, "/api/v1/accounts", json: ["username": "big", "password": "long enough", "displayName": huge])
            #expect(register.status == .contentTooLarge)
            // Under the body limit but over the field limit: 400.
            let long = try await api.call(.post, "/api/v1/accounts", json: ["username": "big", "password": "long enough", "displayName": String(repeating: "B", count: 65)])
            #expect(long.status == .badRequest)
        }
        #expect(try await store.account(username: "big") == nil)
        #expect(try await store.deleteLoginRequests(expiredBefore: .distantFuture) == 0)
    }

    @Test("Unknown ids get 404; garbage ids get 404, not a crash")
    func unknownIds() async throws {
        try await withAPI { api, _ in
            let phone = try await api.signedInPhone("bob")
            let unknown = try await api.call(.post, "/api/v1/qr/AAAAAAAAAAAAAAAAAAAAAA/scan", device: phone, token: phone.token)
            #expect(unknown.status == .notFound)
            #expect(unknown.code == "not_found")
            let garbage = try await api.call(.post, "/api/v1/qr/%00%27;DROP/scan", device: phone, token: phone.token)
            #expect(garbage.status == .notFound)
            let route = try await api.call(.get, "/api/v1/nothing-here")
            #expect(route.status == .notFound)
            #expect(route.headers[.contentType] == "application/problem+json")
        }
    }

    @Test("Missing credentials get 401 with a DPoP challenge")
    func missingCredentials() async throws {
        try await withAPI { api, _ in
            let reply = try await api.call(.get, "/api/v1/me")
            #expect(reply.status == .unauthorized)
            #expect(reply.code == "missing_credentials")
            #expect(reply.headers[.wwwAuthenticate]?.hasPrefix("DPoP") == true)
        }
    }

    @Test("Rate limits answer 429 with Retry-After")
    func rateLimited() async throws {
        try await withAPI(configure: { $0.rateLimits = [.create: 3] }) { api, clock in
            for _ in 0..<3 { _ = try await api.newLogin() }
            let limited = try await api.call(.post, "/api/v1/qr", json: ["device": ["type": "pc", "name": "x"]], device: TestDevice())
            #expect(limited.status == .tooManyRequests)
            #expect(limited.code == "rate_limited")
            let retry = try #require(limited.headers[.retryAfter].flatMap(Int.init))
            #expect(retry >= 1 && retry <= 20)
            clock.advance(by: Double(retry))
            _ = try await api.newLogin()
        }
    }

    @Test("X-Forwarded-For from an untrusted peer is ignored")
    func forwardedFor() async throws {
        try await withAPI(configure: { $0.trustedProxies = [] }) { api, _ in
            let alice = try await api.signedInPhone("alice")
            let pc = TestDevice()
            let reply = try await api.call(.post, "/api/v1/qr", json: ["device": ["type": "pc", "name": "x"]], device: pc, headers: [.init("X-Forwarded-For")!: "203.0.113.9"])
            let id = try #require(reply["id"] as? String)
            let scanned = try await api.call(.post, "/api/v1/qr/\(id)/scan", device: alice, token: alice.token)
            #expect((scanned["requester"] as? [String: Any])?["ip"] as? String != "203.0.113.9")
        }
    }
}
