import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import QRLoginCore
import QRLoginServer
import Testing

@Suite("Live server: push and shutdown", .serialized)
struct LiveTests {
    @Test("SSE streams every change, wakes within milliseconds of the confirm, and ends after the final state", arguments: StreamConnection.allCases)
    func sse(connection: StreamConnection) async throws {
        let server = try await LiveServer.start()
        let phone = try await server.signedInPhone("alice")
        let login = try await server.newLogin()
        let stream = try await server.openStream(login, on: connection)
        #expect(stream.status == .ok)
        #expect(stream.headers["Content-Type"].first == "text/event-stream")
        #expect(stream.headers["Cache-Control"].first == "no-store")
        #expect(stream.headers["Server"].first == "qrlogin")
        #expect(stream.headers["Date"].first?.hasSuffix(" GMT") == true)
        var events = EventReader(stream)
        #expect(try await events.next()?.name == "pending")

        let scan = try await server.json(try await server.call(.POST, "/api/v1/qr/\(login.id)/scan", device: phone, token: phone.token))
        let scanned = try #require(try await events.next())
        #expect(scanned.name == "scanned")
        #expect((scanned.data["scanner"] as? [String: Any])?["displayName"] as? String == "Alice")
        let match = try #require(scanned.data["match"] as? Int)

        let confirm = try await server.call(.POST, "/api/v1/qr/\(login.id)/confirm", json: ["ticket": scan["ticket"] as? String ?? "", "match": match], device: phone, token: phone.token)
        let confirmedAt = ContinuousClock.now
        #expect(confirm.status == .ok)
        let confirmed = try #require(try await events.next())
        let latency = ContinuousClock.now - confirmedAt
        #expect(confirmed.name == "confirmed")
        // Woken by the confirm itself: without push the event would wait for the 15 s heartbeat.
        // The bound leaves room for a busy machine; the millisecond figures are in BENCHMARKS.md.
        #expect(latency < .seconds(2), "push took \(latency)")
        let token = try #require((confirmed.data["token"] as? [String: Any])?["accessToken"] as? String)
        #expect(try await events.next() == nil, "the stream ends after a final state")

        var pc = login.device
        pc.token = token
        #expect(try await server.call(.GET, "/api/v1/me", device: pc, token: token).status == .ok)
        try await server.stop()
    }

    @Test("HEAD on the wire: the page's headers and length, no body, and the connection stays usable")
    func headOnTheWire() async throws {
        let server = try await LiveServer.start()
        let get = try await server.call(.GET, "/")
        let page = try await get.body.collect(upTo: 1 << 20)
        let head = try await server.call(.HEAD, "/")
        #expect(head.status == .ok)
        #expect(head.headers["Content-Length"].first == String(page.readableBytes))
        #expect(head.headers["Content-Type"].first == "text/html; charset=utf-8")
        #expect(try await head.body.collect(upTo: 1 << 20).readableBytes == 0)
        #expect(try await server.call(.GET, "/health").status == .ok)
        try await server.stop()
    }

    @Test("A stale stream the PC has replaced does not collect: the reconnected stream's token works", arguments: StreamConnection.allCases)
    func staleStreamDoesNotCollect(connection: StreamConnection) async throws {
        let server = try await LiveServer.start()
        let phone = try await server.signedInPhone("dora")
        let login = try await server.newLogin()
        func open() async throws -> EventReader {
            let response = try await server.openStream(login, on: connection)
            var events = EventReader(response)
            #expect(try await events.next()?.name == "pending")
            return events
        }
        // The first connection looks alive to the server, but the PC has given up on it.
        var stale = try await open()
        var fresh = try await open()

        let scan = try await server.json(try await server.call(.POST, "/api/v1/qr/\(login.id)/scan", device: phone, token: phone.token))
        let scanned = try #require(try await fresh.next())
        // A plain read that cannot collect (the request is only scanned) does not take over.
        let peek = try await server.json(try await server.call(.GET, "/api/v1/qr/\(login.id)", device: login.device, token: login.pollSecret, scheme: "Bearer"))
        #expect(peek["state"] as? String == "scanned")
        let match = try #require(scanned.data["match"] as? Int)
        _ = try await server.call(.POST, "/api/v1/qr/\(login.id)/confirm", json: ["ticket": scan["ticket"] as? String ?? "", "match": match], device: phone, token: phone.token)
        let confirmed = try #require(try await fresh.next())
        let token = try #require((confirmed.data["token"] as? [String: Any])?["accessToken"] as? String)

        // The stale stream may still relay `scanned`, but never a token.
        while let event = try await stale.next() {
            #expect(event.data["token"] == nil, "a superseded stream must not collect")
        }
        #expect(stale.comments.contains { $0.contains("superseded") })
        var pc = login.device
        pc.token = token
        #expect(try await server.call(.GET, "/api/v1/me", device: pc, token: token).status == .ok)
        try await server.stop()
    }

    @Test("Long-poll returns as soon as the state changes, and at the timeout otherwise")
    func longPoll() async throws {
        let server = try await LiveServer.start()
        let phone = try await server.signedInPhone("bob")
        let login = try await server.newLogin()

        let started = ContinuousClock.now
        let idle = try await server.json(try await server.call(.GET, "/api/v1/qr/\(login.id)?wait=1&state=pending", device: login.device, token: login.pollSecret, scheme: "Bearer"))
        #expect(idle["state"] as? String == "pending")
        #expect(ContinuousClock.now - started >= .milliseconds(900))

        async let waited = server.call(.GET, "/api/v1/qr/\(login.id)?wait=30&state=pending", device: login.device, token: login.pollSecret, scheme: "Bearer")
        try await Task.sleep(for: .milliseconds(200))
        _ = try await server.call(.POST, "/api/v1/qr/\(login.id)/scan", device: phone, token: phone.token)
        let scannedAt = ContinuousClock.now
        let result = try await server.json(try await waited)
        // Woken by the scan, not by the 30 s timeout (see the SSE test for the bound's slack).
        #expect(ContinuousClock.now - scannedAt < .seconds(2))
        #expect(result["state"] as? String == "scanned")
        #expect(result["match"] as? Int != nil)

        let badWait = try await server.call(.GET, "/api/v1/qr/\(login.id)?wait=61", device: login.device, token: login.pollSecret, scheme: "Bearer")
        #expect(badWait.status == .badRequest)
        try await server.stop()
    }

    @Test("Expiry is pushed to a waiting PC", arguments: StreamConnection.allCases)
    func expiryPushed(connection: StreamConnection) async throws {
        let server = try await LiveServer.start { $0.flow.requestTTL = 1 }
        let login = try await server.newLogin()
        let stream = try await server.openStream(login, on: connection)
        var events = EventReader(stream)
        #expect(try await events.next()?.name == "pending")
        // The server's clock is a manual one: move it past the deadline; the stream's timer
        // fires at the (real) deadline and reports the expiry.
        server.clock.advance(by: 2)
        let expired = try #require(try await events.next())
        #expect(expired.name == "expired")
        #expect(try await events.next() == nil)
        try await server.stop()
    }

    @Test("Graceful shutdown ends waiting streams cleanly", arguments: StreamConnection.allCases)
    func gracefulShutdown(connection: StreamConnection) async throws {
        let server = try await LiveServer.start()
        let login = try await server.newLogin()
        let stream = try await server.openStream(login, on: connection)
        var events = EventReader(stream)
        #expect(try await events.next()?.name == "pending")
        let stopping = Task { try await server.shutDown() }
        let end = try await events.next()
        #expect(end == nil, "clean end of stream, not an error")
        #expect(events.comments.contains { $0.contains("shutting down") })
        try await stopping.value
        try await server.stop()
    }

    @Test("X-Forwarded-For is believed from a trusted proxy only")
    func trustedProxy() async throws {
        let server = try await LiveServer.start { $0.trustedProxies = ["127.0.0.1"] }
        let phone = try await server.signedInPhone("carol")
        let login = try await server.newLogin(headers: [("X-Forwarded-For", "198.51.100.7, 203.0.113.5")])
        let scan = try await server.json(try await server.call(.POST, "/api/v1/qr/\(login.id)/scan", device: phone, token: phone.token))
        let requester = try #require(scan["requester"] as? [String: Any])
        #expect(requester["ip"] as? String == "203.0.113.5")
        try await server.stop()
    }

    @Test("QRLjacking: a scan says whether the PC asked from the phone's network (same IPv4, same IPv6 /64)", arguments: [
        ("203.0.113.5", "203.0.113.5", true),
        ("203.0.113.5", "198.51.100.9", false),
        ("2001:db8:1:2::5", "2001:db8:1:2:aaaa::9", true),
        ("2001:db8:1:2::5", "2001:db8:1:3::5", false),
    ])
    func sameNetwork(pcIP: String, phoneIP: String, same: Bool) async throws {
        let server = try await LiveServer.start(store: try await OAuthClients.store()) { $0.trustedProxies = ["127.0.0.1"] }
        let phone = try await server.signedInPhone("dave")
        let login = try await server.newLogin(headers: [("X-Forwarded-For", pcIP)])
        let scan = try await server.json(try await server.call(.POST, "/api/v1/qr/\(login.id)/scan", device: phone, token: phone.token, headers: [("X-Forwarded-For", phoneIP)]))
        let requester = try #require(scan["requester"] as? [String: Any])
        #expect(requester["sameNetwork"] as? Bool == same)

        // A device grant's code typed at /device is compared the same way.
        let device = TestDevice()
        var start = HTTPClientRequest(url: "http://127.0.0.1:\(server.port)/oauth/device_authorization")
        start.method = .POST
        start.headers.add(name: "Content-Type", value: "application/x-www-form-urlencoded")
        start.headers.add(name: "X-Forwarded-For", value: pcIP)
        start.headers.add(name: "DPoP", value: try device.signer.proof(method: "POST", url: testBaseURL + "/oauth/device_authorization", issuedAt: server.clock.now))
        start.body = .bytes(ByteBuffer(string: "client_id=cli&scope=openid"))
        let started = try await server.json(try await server.http.execute(start, timeout: .seconds(30)))
        let userCode = try #require(started["user_code"] as? String)
        let typed = try await server.json(try await server.call(.POST, "/api/v1/device", json: ["userCode": userCode], device: phone, token: phone.token, headers: [("X-Forwarded-For", phoneIP)]))
        #expect((typed["requester"] as? [String: Any])?["sameNetwork"] as? Bool == same)
        try await server.stop()
    }

    @Test("Idle connections are closed after the idle timeout; an event stream and a long poll outlive it", arguments: StreamConnection.allCases)
    func idleTimeout(connection: StreamConnection) async throws {
        let server = try await LiveServer.start { $0.idleTimeout = 1 }
        // A connection that never sends a request, and one idle after a keep-alive response.
        let silent = try RawConnection(port: server.port)
        let keptAlive = try RawConnection(port: server.port)
        try keptAlive.send("GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        #expect(try keptAlive.readSome().hasPrefix("HTTP/1.1 200"))
        let started = ContinuousClock.now
        #expect(try silent.waitForClose(within: .seconds(5)), "a silent connection stays open")
        #expect(try keptAlive.waitForClose(within: .seconds(5)), "an idle keep-alive connection stays open")
        #expect(ContinuousClock.now - started >= .milliseconds(900), "closed before the timeout")

        let phone = try await server.signedInPhone("erin")
        let login = try await server.newLogin()
        let stream = try await server.openStream(login, on: connection)
        var events = EventReader(stream)
        #expect(try await events.next()?.name == "pending")
        let polled = Task {
            try await server.json(try await server.call(.GET, "/api/v1/qr/\(login.id)?wait=3&state=pending", device: login.device, token: login.pollSecret, scheme: "Bearer"))["state"] as? String
        }
        try await Task.sleep(for: .milliseconds(2_500))
        _ = try await server.call(.POST, "/api/v1/qr/\(login.id)/scan", device: phone, token: phone.token)
        #expect(try await events.next()?.name == "scanned", "the stream was cut while idle")
        #expect(try await polled.value == "scanned", "the long poll was cut while idle")
        try await server.stop()
    }

    @Test("An idle timeout of zero set in code means no timeout, not an instant close")
    func zeroIdleTimeoutMeansNever() async throws {
        let server = try await LiveServer.start { $0.idleTimeout = 0 }
        let connection = try RawConnection(port: server.port)
        try await Task.sleep(for: .milliseconds(200))
        try connection.send("GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        #expect(try connection.readSome().hasPrefix("HTTP/1.1 200"))
        #expect(try connection.waitForClose(within: .milliseconds(1_500)) == false)
        try await server.stop()
    }

    @Test("Streams whose PCs went away give their subscriptions back")
    func droppedStreamsUnsubscribe() async throws {
        let notifier = InProcessNotifier()
        let server = try await LiveServer.start(notifier: notifier) { $0.flow.heartbeat = 1 }
        let login = try await server.newLogin()
        // Three streams over raw sockets, each read to its first event, then dropped unannounced.
        var connections: [RawConnection] = []
        for _ in 0..<3 {
            let connection = try RawConnection(port: server.port)
            let proof = try login.device.signer.proof(method: "GET", url: testBaseURL + "/api/v1/qr/\(login.id)", accessToken: login.pollSecret, issuedAt: server.clock.now)
            try connection.send("GET /api/v1/qr/\(login.id) HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\nAuthorization: Bearer \(login.pollSecret)\r\nDPoP: \(proof)\r\n\r\n")
            #expect(try connection.read(until: "event: pending").hasPrefix("HTTP/1.1 200"))
            connections.append(connection)
        }
        #expect(notifier.subscriptionCount == 3)
        connections.removeAll()
        // Each stream finds out at its next write at the latest (a heartbeat a second) and ends.
        let deadline = ContinuousClock.now + .seconds(10)
        while notifier.subscriptionCount > 0, ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(50))
        }
        #expect(notifier.subscriptionCount == 0, "subscriptions of gone PCs are never freed")
        try await server.stop()
    }
}

/// A blocking loopback TCP connection, for what an HTTP client would not do (send nothing).
final class RawConnection {
    private let socket: Int32

    init(port: Int) throws {
        socket = Glibc.socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = UInt16(port).bigEndian
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(socket, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard socket >= 0, connected == 0 else { throw POSIXError(.ECONNREFUSED) }
        // A server that never answers fails the read after 30 s instead of hanging the run.
        var timeout = timeval(tv_sec: 30, tv_usec: 0)
        setsockopt(socket, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
    }

    deinit { close(socket) }

    func send(_ text: String) throws {
        let bytes = Array(text.utf8)
        guard write(socket, bytes, bytes.count) == bytes.count else { throw POSIXError(.EIO) }
    }

    /// Closes the client's sending side (a half-close: the server sees the end of its input).
    func shutdownWrite() {
        shutdown(socket, Int32(SHUT_WR))
    }

    func readSome() throws -> String {
        var buffer = [UInt8](repeating: 0, count: 4096)
        let count = Glibc.read(socket, &buffer, buffer.count)
        guard count > 0 else { throw POSIXError(.EIO) }
        return String(decoding: buffer[..<count], as: UTF8.self)
    }

    /// Everything read until `text` has arrived (or the connection ends).
    func read(until text: String) throws -> String {
        var received = ""
        while !received.contains(text) {
            received += try readSome()
        }
        return received
    }

    /// Whether the server closes the connection (a read of 0 bytes) within `limit`.
    func waitForClose(within limit: Duration) throws -> Bool {
        var descriptor = pollfd(fd: socket, events: Int16(POLLIN), revents: 0)
        let milliseconds = Int32(limit.components.seconds * 1000 + limit.components.attoseconds / 1_000_000_000_000_000)
        guard poll(&descriptor, 1, milliseconds) == 1 else { return false }
        var byte: UInt8 = 0
        return Glibc.read(socket, &byte, 1) == 0
    }
}
