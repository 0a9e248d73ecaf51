import AsyncHTTPClient
import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import NIOHTTP1
import QRLoginCore
@testable import QRLoginServer
import ServiceLifecycle
import Synchronization
import QRLoginTestSupport
import Testing

/// Which connection a PC's event stream is opened on.
enum StreamConnection: String, CaseIterable, CustomTestStringConvertible {
    /// A connection of its own, whose first request is the stream: the server serves it off
    /// the router, from a channel handler (`EventStreamHandler`).
    case own
    /// A connection that has served a request before: the router's stream.
    case reused

    var testDescription: String { "stream on a \(rawValue) connection" }
}

/// HTTP clients made for one test, shut down when its server stops.
final class TestClients: Sendable {
    private let clients = Mutex<[HTTPClient]>([])

    /// A client with a pool of its own, so its first request opens a new connection.
    func make() -> HTTPClient {
        let client = HTTPClient(eventLoopGroupProvider: .singleton)
        clients.withLock { $0.append(client) }
        return client
    }

    func shutdown() async throws {
        for client in clients.withLock({ $0 }) { try await client.shutdown() }
    }
}

/// A real server on a loopback port, run in its own service group so a test can trigger its
/// graceful shutdown.
struct LiveServer {
    let port: Int
    let clock: ManualClock
    let group: ServiceGroup
    let running: Task<Void, any Error>
    let http = HTTPClient.shared
    let ownClients = TestClients()

    static func start(
        store: any Store = MemoryStore(), notifier: (any LoginEventNotifier)? = nil, metrics: ServerMetrics? = nil,
        configure: (inout ServerConfiguration) -> Void = { _ in }
    ) async throws -> LiveServer {
        let clock = ManualClock(Date())
        let server = try await ServerOnFreePort.start { port, onRunning in
            try await makeTestApp(
                store: store, clock: clock, notifier: notifier, metrics: metrics,
                configure: { config in
                    config.port = port
                    configure(&config)
                },
                onServerRunning: onRunning
            )
        }
        return LiveServer(port: server.port, clock: clock, group: server.group, running: server.running)
    }

    func stop() async throws {
        try await shutDown()
        try await ownClients.shutdown()
    }

    /// Shuts the server down gracefully and waits for it to end, leaving the test's clients up
    /// so that they can still read what the server sent before it closed.
    func shutDown() async throws {
        await group.triggerGracefulShutdown()
        // A shutdown that never ends fails the test after 20 s instead of hanging the run.
        let running = self.running
        let watchdog = Task {
            try await Task.sleep(for: .seconds(20))
            Issue.record("the server did not finish its graceful shutdown within 20 s")
            running.cancel()
        }
        defer { watchdog.cancel() }
        try await running.value
    }

    /// Sends a request through a real socket.
    func call(_ method: HTTPMethod, _ path: String, json: Any? = nil, rawBody: String? = nil, device: TestDevice? = nil, token: String? = nil, scheme: String = "DPoP", accept: String? = nil, headers extra: [(String, String)] = [], client: HTTPClient? = nil) async throws -> HTTPClientResponse {
        var request = HTTPClientRequest(url: "http://127.0.0.1:\(port)\(path)")
        request.method = method
        let pathOnly = String(path.split(separator: "?", maxSplits: 1)[0])
        if let device {
            request.headers.add(name: "DPoP", value: try device.signer.proof(method: method.rawValue, url: testBaseURL + pathOnly, accessToken: token, issuedAt: clock.now))
        }
        if let token { request.headers.add(name: "Authorization", value: "\(scheme) \(token)") }
        if let accept { request.headers.add(name: "Accept", value: accept) }
        for (name, value) in extra { request.headers.add(name: name, value: value) }
        if let rawBody { request.body = .bytes(ByteBuffer(string: rawBody)) }
        if let json {
            request.body = .bytes(ByteBuffer(bytes: try JSONSerialization.data(withJSONObject: json)))
            request.headers.add(name: "Content-Type", value: "application/json")
        }
        return try await (client ?? http).execute(request, timeout: .seconds(90))
    }

    /// Opens the PC's event stream for `login` on `connection`, and checks that the server
    /// served it from the path that connection gets (a stream on a connection of its own
    /// closes the connection at its end and says so).
    func openStream(_ login: API.PCLogin, on connection: StreamConnection, sourceLocation: SourceLocation = #_sourceLocation) async throws -> HTTPClientResponse {
        let client = ownClients.make()
        if connection == .reused {
            // One request first, read to its end, so the stream goes out on a warm connection.
            let warm = try await call(.GET, "/health", client: client)
            _ = try await warm.body.collect(upTo: 1 << 16)
        }
        let response = try await call(
            .GET, "/api/v1/qr/\(login.id)", device: login.device, token: login.pollSecret, scheme: "Bearer", accept: "text/event-stream",
            client: client
        )
        let closes = response.headers["Connection"].contains { $0.lowercased() == "close" }
        #expect(closes == (connection == .own), "served by the wrong path", sourceLocation: sourceLocation)
        return response
    }

    func json(_ response: HTTPClientResponse) async throws -> [String: Any] {
        let body = try await response.body.collect(upTo: 1 << 20)
        return (try JSONSerialization.jsonObject(with: Data(body.readableBytesView))) as? [String: Any] ?? [:]
    }

    func signedInPhone(_ username: String) async throws -> TestDevice {
        _ = try await call(.POST, "/api/v1/accounts", json: ["username": username, "password": "correct horse battery", "displayName": username.capitalized])
        var device = TestDevice()
        let session = try await json(try await call(.POST, "/api/v1/auth/password", json: ["username": username, "password": "correct horse battery", "device": ["type": "ios", "name": "phone"]], device: device))
        device.token = session["accessToken"] as? String
        return device
    }

    func newLogin(headers: [(String, String)] = []) async throws -> API.PCLogin {
        let pc = TestDevice()
        let body = try await json(try await call(.POST, "/api/v1/qr", json: ["device": ["type": "cli", "name": "terminal"]], device: pc, headers: headers))
        return API.PCLogin(device: pc, id: try #require(body["id"] as? String), pollSecret: try #require(body["pollSecret"] as? String), url: try #require(body["url"] as? String))
    }
}

/// Reads Server-Sent Events from a streaming body.
struct EventReader {
    struct Event {
        var name: String
        var data: [String: Any]
    }

    var iterator: HTTPClientResponse.Body.AsyncIterator
    var buffer = ""
    /// Comment lines seen so far (heartbeats, shutdown notice).
    var comments: [String] = []

    init(_ response: HTTPClientResponse) {
        iterator = response.body.makeAsyncIterator()
    }

    /// The next event, or nil when the stream ended cleanly.
    mutating func next() async throws -> Event? {
        while true {
            if let range = buffer.range(of: "\n\n") {
                let block = String(buffer[..<range.lowerBound])
                buffer.removeSubrange(..<range.upperBound)
                var name = "message", data = ""
                for line in block.split(separator: "\n") {
                    if line.hasPrefix(":") { comments.append(String(line)) }
                    else if line.hasPrefix("event: ") { name = String(line.dropFirst(7)) }
                    else if line.hasPrefix("data: ") { data += line.dropFirst(6) }
                }
                if data.isEmpty { continue }
                let object = (try JSONSerialization.jsonObject(with: Data(data.utf8))) as? [String: Any] ?? [:]
                return Event(name: name, data: object)
            }
            guard let chunk = try await iterator.next() else { return nil }
            buffer += String(buffer: chunk)
        }
    }
}
