import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Logging
import NIOCore
import QRLoginCore
import QRLoginOAuth
@testable import QRLoginServer
import Synchronization
import Testing

let testBaseURL = "http://localhost:8080"

/// A one-time-code sender that keeps the codes for the test to read.
final class CapturingCodeSender: OneTimeCodeSender {
    private let codes = Mutex<[String: String]>([:])
    func send(code: String, to phone: String) async throws { codes.withLock { $0[phone] = code } }
    func code(for phone: String) -> String? { codes.withLock { $0[phone] } }
}

/// A JSON response as tests see it.
struct Reply {
    var status: HTTPResponse.Status
    var headers: HTTPFields
    var body: ByteBuffer

    var json: [String: Any] {
        (try? JSONSerialization.jsonObject(with: Data(body.readableBytesView))) as? [String: Any] ?? [:]
    }
    var text: String { String(buffer: body) }
    var code: String? { json["code"] as? String }
    subscript(key: String) -> Any? { json[key] }
}

/// A device in a test: its own P-256 key, and optionally a token.
struct TestDevice {
    var signer = DPoPSigner()
    var token: String?
    var id: String { signer.thumbprint }
}

/// Drives the HTTP API the way a client would: every call carries a fresh proof.
struct API {
    let client: any TestClientProtocol
    let clock: any NowClock

    /// Sends a request. `device` signs a proof; `token` goes in `Authorization` with `scheme`.
    @discardableResult
    func call(_ method: HTTPRequest.Method, _ path: String, json: Any? = nil, raw: String? = nil, device: TestDevice? = nil, token: String? = nil, scheme: String = "DPoP", headers extra: HTTPFields = [:], proof: String? = nil) async throws -> Reply {
        var headers = extra
        let pathOnly = String(path.split(separator: "?", maxSplits: 1)[0])
        if let proof {
            headers[.dpop] = proof
        } else if let device {
            headers[.dpop] = try device.signer.proof(method: method.rawValue, url: testBaseURL + pathOnly, accessToken: token, issuedAt: clock.now)
        }
        if let token { headers[.authorization] = "\(scheme) \(token)" }
        var body: ByteBuffer?
        if let json {
            body = ByteBuffer(bytes: try JSONSerialization.data(withJSONObject: json))
            headers[.contentType] = "application/json"
        } else if let raw {
            body = ByteBuffer(string: raw)
            headers[.contentType] = "application/json"
        }
        let reply = try await client.execute(uri: path, method: method, headers: headers, body: body) { response in
            Reply(status: response.status, headers: response.headers, body: response.body)
        }
        ResponseRecorder.record(method, path, reply)
        return reply
    }

    /// Registers `username` and signs in on a new phone.
    func signedInPhone(_ username: String, displayName: String? = nil, phone: String? = nil) async throws -> TestDevice {
        var body: [String: Any] = ["username": username, "password": "correct horse battery"]
        if let displayName { body["displayName"] = displayName }
        if let phone { body["phone"] = phone }
        let registered = try await call(.post, "/api/v1/accounts", json: body)
        #expect(registered.status == .created, "\(registered.text)")
        var device = TestDevice()
        let session = try await call(.post, "/api/v1/auth/password", json: ["username": username, "password": "correct horse battery", "device": ["type": "ios", "name": "\(username)'s phone"]], device: device)
        #expect(session.status == .created, "\(session.text)")
        device.token = session["accessToken"] as? String
        return device
    }

    /// A PC's login request.
    struct PCLogin {
        var device: TestDevice
        var id: String
        var pollSecret: String
        var url: String
    }

    /// Creates a login request from a new PC.
    func newLogin(name: String = "Work laptop", type: String = "web", pc: TestDevice = TestDevice()) async throws -> PCLogin {
        let reply = try await call(.post, "/api/v1/qr", json: ["device": ["type": type, "name": name]], device: pc)
        #expect(reply.status == .created, "\(reply.text)")
        return PCLogin(device: pc, id: try #require(reply["id"] as? String), pollSecret: try #require(reply["pollSecret"] as? String), url: try #require(reply["url"] as? String))
    }

    /// The PC reads its request (poll secret + proof).
    func pcStatus(_ login: PCLogin, query: String = "") async throws -> Reply {
        try await call(.get, "/api/v1/qr/\(login.id)\(query)", device: login.device, token: login.pollSecret, scheme: "Bearer")
    }

    /// The phone scans.
    func scan(_ login: PCLogin, by phone: TestDevice) async throws -> Reply {
        try await call(.post, "/api/v1/qr/\(login.id)/scan", device: phone, token: phone.token)
    }

    /// The phone confirms with `match`, or the right number when nil.
    func confirm(_ login: PCLogin, by phone: TestDevice, scan: Reply, match: Int? = nil) async throws -> Reply {
        let ticket = scan["ticket"] as? String ?? ""
        let pick: Int
        if let match {
            pick = match
        } else {
            pick = try #require(try await pcStatus(login)["match"] as? Int)
        }
        return try await call(.post, "/api/v1/qr/\(login.id)/confirm", json: ["ticket": ticket, "match": pick], device: phone, token: phone.token)
    }

    /// Runs the whole flow and returns the PC device holding its new token.
    func loggedInPC(phone: TestDevice, name: String = "Work laptop") async throws -> TestDevice {
        let login = try await newLogin(name: name)
        let scanned = try await scan(login, by: phone)
        #expect(scanned.status == .ok, "\(scanned.text)")
        let confirmed = try await confirm(login, by: phone, scan: scanned)
        #expect(confirmed.status == .ok, "\(confirmed.text)")
        let status = try await pcStatus(login)
        var pc = login.device
        pc.token = (status["token"] as? [String: Any])?["accessToken"] as? String
        _ = try #require(pc.token)
        return pc
    }
}

/// Builds an application over `store` with a manual clock and fast bcrypt.
func makeTestApp(
    store: any Store = MemoryStore(),
    clock: ManualClock = ManualClock(Date()),
    codes: CapturingCodeSender = CapturingCodeSender(),
    notifier: (any LoginEventNotifier)? = nil,
    metrics: ServerMetrics? = nil,
    configure: (inout ServerConfiguration) -> Void = { _ in },
    onServerRunning: @escaping @Sendable (any Channel) async -> Void = { _ in }
) async throws -> some ApplicationProtocol {
    var config = ServerConfiguration()
    config.publicURL = testBaseURL
    config.port = 0
    config.flow.bcryptCost = 4
    config.rateLimits = [:]
    configure(&config)
    var logger = Logger(label: "qrlogin-test")
    logger.logLevel = .warning
    // An RSA key takes long to make in a debug build: every test server starts with the same
    // pair, made once (SigningKeyServerTests makes its own).
    if try await store.signingKeys().isEmpty {
        for key in TestSigningKeys.shared { try await store.addSigningKey(key) }
    }
    return try await buildApplication(configuration: config, dependencies: ServerDependencies(store: store, clock: clock, codeSender: codes, notifier: notifier, metrics: metrics, onServerRunning: onServerRunning),
        logger: logger
    )
}

/// Runs `body` against a router-level test client (no sockets), or with `.live` against the
/// whole server on a loopback port.
func withAPI(
    testing: TestingSetup = .router,
    store: any Store = MemoryStore(),
    clock: ManualClock = ManualClock(Date()),
    codes: CapturingCodeSender = CapturingCodeSender(),
    configure: (inout ServerConfiguration) -> Void = { _ in },
    _ body: @escaping @Sendable (API, ManualClock) async throws -> Void
) async throws {
    let app = try await makeTestApp(store: store, clock: clock, codes: codes, configure: configure)
    try await app.test(testing) { client in
        try await body(API(client: client, clock: clock), clock)
    }
}

/// One ES256 and one RS256 signing key, made once per test run.
enum TestSigningKeys {
    static let shared: [SigningKey] = SigningAlgorithm.allCases.map { algorithm in
        // A failure to make a key fails every test that starts a server, with this message.
        (try? KeyMaker.generate(algorithm, at: Date(timeIntervalSince1970: 1_700_000_000))) ?? SigningKey(kid: "broken", algorithm: algorithm, privateKeyPEM: "", createdAt: Date())
    }
}
