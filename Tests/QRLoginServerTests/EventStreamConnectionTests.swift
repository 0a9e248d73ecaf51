import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import QRLoginCore
import QRLoginServer
import Testing

/// Event streams on connections of their own are served off the router (EventStreamHandler).
/// The events are held to the router's by the SSE tests in LiveTests, which run on both paths;
/// these are the checks that path does itself: refusals, hostile requests, what it must not
/// let a stranger do, and that a connection it takes is given back.
@Suite("Live server: event streams on connections of their own", .serialized)
struct EventStreamConnectionTests {
    /// The stream request of `login` on a new connection, with what a test changes in it.
    private func stream(_ server: LiveServer, _ login: API.PCLogin, device: TestDevice? = nil, token: String?, proof: String? = nil, path: String? = nil) async throws -> HTTPClientResponse {
        let path = path ?? "/api/v1/qr/\(login.id)"
        var request = HTTPClientRequest(url: "http://127.0.0.1:\(server.port)\(path)")
        let signer = (device ?? login.device).signer
        request.headers.add(name: "DPoP", value: try proof ?? signer.proof(method: "GET", url: testBaseURL + path, accessToken: token ?? login.pollSecret, issuedAt: server.clock.now))
        if let token { request.headers.add(name: "Authorization", value: "Bearer \(token)") }
        request.headers.add(name: "Accept", value: "text/event-stream")
        return try await server.ownClients.make().execute(request, timeout: .seconds(30))
    }

    /// The PC's stream request as raw bytes, with a fresh proof; `extra` goes after its headers.
    private func rawStreamRequest(_ server: LiveServer, _ login: API.PCLogin, extraHeaders: String = "", then extra: String = "") throws -> String {
        let proof = try login.device.signer.proof(method: "GET", url: testBaseURL + "/api/v1/qr/\(login.id)", accessToken: login.pollSecret, issuedAt: server.clock.now)
        return "GET /api/v1/qr/\(login.id) HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\nAuthorization: Bearer \(login.pollSecret)\r\nDPoP: \(proof)\r\n\(extraHeaders)\r\n\(extra)"
    }

    @Test("Refusals are the router's problem documents, word for word, and the connection closes")
    func refusalsMatchTheRouter() async throws {
        let server = try await LiveServer.start()
        let login = try await server.newLogin()
        let stranger = TestDevice()
        let unknown = API.PCLogin(device: login.device, id: Secrets.publicId(), pollSecret: login.pollSecret, url: "")
        let cases: [(name: String, status: HTTPResponseStatus, code: String, send: (HTTPClient?) async throws -> HTTPClientResponse)] = [
            ("no poll secret", .unauthorized, "missing_credentials", { client in
                try await server.call(.GET, "/api/v1/qr/\(login.id)", device: login.device, accept: "text/event-stream", client: client)
            }),
            ("a wrong poll secret", .unauthorized, "invalid_poll_secret", { client in
                let wrong = Secrets.secret(prefix: Secrets.pollSecretPrefix)
                return try await server.call(.GET, "/api/v1/qr/\(login.id)", device: login.device, token: wrong, scheme: "Bearer", accept: "text/event-stream", client: client)
            }),
            ("the poll secret with another key's proof", .unauthorized, "invalid_poll_secret", { client in
                try await server.call(.GET, "/api/v1/qr/\(login.id)", device: stranger, token: login.pollSecret, scheme: "Bearer", accept: "text/event-stream", client: client)
            }),
            ("the poll secret under another scheme", .unauthorized, "invalid_token", { client in
                try await server.call(.GET, "/api/v1/qr/\(login.id)", device: login.device, token: login.pollSecret, scheme: "DPoP", accept: "text/event-stream", client: client)
            }),
            ("an unknown id", .notFound, "not_found", { client in
                try await server.call(.GET, "/api/v1/qr/\(unknown.id)", device: login.device, token: login.pollSecret, scheme: "Bearer", accept: "text/event-stream", client: client)
            }),
        ]
        for refusal in cases {
            let own = try await refusal.send(server.ownClients.make())
            let routed = try await refusal.send(nil)
            #expect(own.status == refusal.status, "\(refusal.name)")
            #expect(own.headers["Connection"].first == "close", "\(refusal.name): not answered off the router")
            #expect(routed.headers["Connection"].isEmpty, "\(refusal.name): the comparison was not routed")
            #expect(own.headers["Content-Type"].first == "application/problem+json")
            #expect(own.headers["WWW-Authenticate"] == routed.headers["WWW-Authenticate"], "\(refusal.name)")
            let ownBody = try await own.body.collect(upTo: 1 << 16)
            let routedBody = try await routed.body.collect(upTo: 1 << 16)
            #expect(ownBody == routedBody, "\(refusal.name): \(String(buffer: ownBody)) vs \(String(buffer: routedBody))")
            #expect(String(buffer: ownBody).contains("\"code\":\"\(refusal.code)\""), "\(refusal.name): \(String(buffer: ownBody))")
        }
        try await server.stop()
    }

    @Test("A replayed stream proof is refused, and an expired request answers 410")
    func replayAndExpiry() async throws {
        let server = try await LiveServer.start { $0.flow.requestTTL = 30 }
        let login = try await server.newLogin()
        let proof = try login.device.signer.proof(method: "GET", url: testBaseURL + "/api/v1/qr/\(login.id)", accessToken: login.pollSecret, issuedAt: server.clock.now)
        let first = try await stream(server, login, token: login.pollSecret, proof: proof)
        #expect(first.status == .ok)
        var events = EventReader(first)
        #expect(try await events.next()?.name == "pending")
        let replayed = try await stream(server, login, token: login.pollSecret, proof: proof)
        #expect(replayed.status == .unauthorized)
        #expect(String(buffer: try await replayed.body.collect(upTo: 1 << 16)).contains("\"code\":\"dpop_proof_replayed\""))

        // Past its deadline the request is expired: a new stream gets the final event at once.
        server.clock.advance(by: 31)
        let late = try await stream(server, login, token: login.pollSecret)
        var lateEvents = EventReader(late)
        #expect(try await lateEvents.next()?.name == "expired")
        #expect(try await lateEvents.next() == nil)
        try await server.stop()
    }

    @Test("Strangers who know the id cannot disturb the PC's stream: it still collects the token")
    func strangersCannotTakeOver() async throws {
        let server = try await LiveServer.start()
        let phone = try await server.signedInPhone("fred")
        let login = try await server.newLogin()
        let response = try await server.openStream(login, on: .own)
        var events = EventReader(response)
        #expect(try await events.next()?.name == "pending")
        // The id is public (it is in the QR). Streams without the secret, with a wrong one, or
        // with the secret but another key, are refused, and none of them takes over the pickup.
        let stranger = TestDevice()
        for attempt in [
            try await stream(server, login, token: nil),
            try await stream(server, login, token: Secrets.secret(prefix: Secrets.pollSecretPrefix)),
            try await stream(server, login, device: stranger, token: login.pollSecret),
        ] {
            #expect(attempt.status == .unauthorized)
        }
        let scan = try await server.json(try await server.call(.POST, "/api/v1/qr/\(login.id)/scan", device: phone, token: phone.token))
        let scanned = try #require(try await events.next())
        #expect(scanned.name == "scanned")
        let match = try #require(scanned.data["match"] as? Int)
        let confirm = try await server.call(.POST, "/api/v1/qr/\(login.id)/confirm", json: ["ticket": scan["ticket"] as? String ?? "", "match": match], device: phone, token: phone.token)
        #expect(confirm.status == .ok)
        let confirmed = try #require(try await events.next())
        #expect(confirmed.name == "confirmed")
        let token = try #require((confirmed.data["token"] as? [String: Any])?["accessToken"] as? String)
        var pc = login.device
        pc.token = token
        #expect(try await server.call(.GET, "/api/v1/me", device: pc, token: token).status == .ok)
        // A stolen token is still refused elsewhere: the stranger's key does not match it.
        var thief = stranger
        thief.token = token
        #expect(try await server.call(.GET, "/api/v1/me", device: thief, token: token).status == .unauthorized)
        try await server.stop()
    }

    @Test("Odd first requests go to the router: a stream with a body, odd ids, other methods")
    func oddRequestsAreRouted() async throws {
        let server = try await LiveServer.start()
        let login = try await server.newLogin()
        // A body: the router's stream (no `Connection: close`), which works as ever.
        let withBody = try RawConnection(port: server.port)
        try withBody.send(rawStreamRequest(server, login, extraHeaders: "Content-Length: 4\r\n", then: "abcd"))
        let routed = try withBody.read(until: "event: pending")
        #expect(routed.hasPrefix("HTTP/1.1 200"))
        #expect(!routed.lowercased().contains("connection: close"))

        // Ids that are not made of id characters, or too long, are the router's (404 there).
        for path in ["/api/v1/qr/%2e%2e", "/api/v1/qr/" + String(repeating: "A", count: 65), "/api/v1/qr/abc/", "/api/v1/qr/"] {
            let raw = try RawConnection(port: server.port)
            try raw.send("GET \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n\r\n")
            let answer = try raw.read(until: "\r\n\r\n")
            #expect(!answer.lowercased().contains("connection: close"), "\(path) was not routed: \(answer)")
            #expect(answer.hasPrefix("HTTP/1.1 4"), "\(path): \(answer)")
        }
        // Malformed bytes as the first request: the router's answer (400, then the connection
        // closes), and the server lives on.
        let garbage = try RawConnection(port: server.port)
        try garbage.send("\u{1}\u{2}NOT HTTP\r\n\r\n")
        let refused = try garbage.read(until: "\r\n\r\n")
        #expect(refused.hasPrefix("HTTP/1.1 400"), "\(refused)")
        #expect(refused.lowercased().contains("connection: close"))
        #expect(try garbage.waitForClose(within: .seconds(5)))
        #expect(try await server.call(.GET, "/health").status == .ok)
        try await server.stop()
    }

    @Test("Whatever the PC sends after its stream request is ignored; the stream goes on")
    func bytesAfterTheRequestAreIgnored() async throws {
        let server = try await LiveServer.start()
        let phone = try await server.signedInPhone("gina")
        let login = try await server.newLogin()
        let raw = try RawConnection(port: server.port)
        // A pipelined second request and then junk: neither is answered nor breaks the stream.
        try raw.send(rawStreamRequest(server, login, then: "GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"))
        let head = try raw.read(until: "event: pending")
        #expect(head.hasPrefix("HTTP/1.1 200"))
        #expect(head.lowercased().contains("connection: close"))
        try raw.send(String(repeating: "\u{0}junk", count: 2_000))
        _ = try await server.call(.POST, "/api/v1/qr/\(login.id)/scan", device: phone, token: phone.token)
        let after = try raw.read(until: "event: scanned")
        #expect(!after.contains("\"status\":\"ok\""), "the pipelined request was answered")
        try await server.stop()
    }

    @Test("A PC that closes its stream's connection gives its subscription back at once")
    func closedStreamsUnsubscribe() async throws {
        let notifier = InProcessNotifier()
        // Heartbeats far apart: the subscription must go when the PC closes, not at a write.
        let server = try await LiveServer.start(notifier: notifier) { $0.flow.heartbeat = 60 }
        let login = try await server.newLogin()
        do {
            let raw = try RawConnection(port: server.port)
            try raw.send(rawStreamRequest(server, login))
            _ = try raw.read(until: "event: pending")
            #expect(notifier.subscriptionCount == 1)
        }
        // Ends as soon as it is given back; the bound only catches "never" on a busy machine.
        let deadline = ContinuousClock.now + .seconds(60)
        while notifier.subscriptionCount > 0, ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(20))
        }
        #expect(notifier.subscriptionCount == 0)
        // Refused streams never keep one either.
        _ = try await stream(server, login, token: nil)
        try await Task.sleep(for: .milliseconds(100))
        #expect(notifier.subscriptionCount == 0)
        try await server.stop()
    }

    @Test("A change signalled while the stream re-reads the request is not lost", arguments: StreamConnection.allCases)
    func changeDuringARead(connection: StreamConnection) async throws {
        let store = HeldStore(MemoryStore())
        let notifier = InProcessNotifier()
        let server = try await LiveServer.start(store: store, notifier: notifier)
        let phone = try await server.signedInPhone("alice")
        let login = try await server.newLogin()
        let response = try await server.openStream(login, on: connection)
        // The events' names as they come, and a note if nothing came for 5 s.
        let (names, arrived) = AsyncStream.makeStream(of: String.self)
        let reader = Task {
            var events = EventReader(response)
            while let event = try await events.next() { arrived.yield(event.name) }
            arrived.finish()
        }
        var next = names.makeAsyncIterator()
        #expect(await next.next() == "pending")

        // A signal with no change (as a shared notifier sends after reconnecting) makes the
        // stream read the request again; that read gets its copy (still pending) and is held.
        await store.holdNextRead(of: login.id) { await notifier.publish(requestId: login.id) }
        // Meanwhile a phone scans: committed and signalled while the stream's read is out.
        let scan = try await server.call(.POST, "/api/v1/qr/\(login.id)/scan", device: phone, token: phone.token)
        #expect(scan.status == .ok)
        store.release()

        // The stream sends the scan at once, not at the request's deadline minutes later.
        let patience = Task {
            try await Task.sleep(for: .seconds(5))
            arrived.yield("nothing within 5 s")
        }
        #expect(await next.next() == "scanned", "the scan signalled during the read was lost")
        patience.cancel()
        reader.cancel()
        try await server.stop()
    }

    @Test("A change between the PC's read of its request and its subscription is not lost", arguments: ["long poll", "stream on a own connection", "stream on a reused connection"])
    func changeBeforeTheSubscription(path: String) async throws {
        let store = HeldStore(MemoryStore())
        let server = try await LiveServer.start(store: store)
        let phone = try await server.signedInPhone("alice")
        let login = try await server.newLogin()
        let (names, arrived) = AsyncStream.makeStream(of: String.self)
        // The PC's request reads the request (still pending) and is held there, before it
        // subscribes to changes; meanwhile the phone scans, which signals nobody yet.
        let pc: @Sendable () async -> Void = {
            do {
                if path == "long poll" {
                    let answer = try await server.json(try await server.call(
                        .GET, "/api/v1/qr/\(login.id)?wait=5&state=pending", device: login.device, token: login.pollSecret, scheme: "Bearer"
                    ))
                    arrived.yield(answer["state"] as? String ?? "?")
                } else {
                    let response = try await server.openStream(login, on: path.contains("own") ? .own : .reused)
                    var events = EventReader(response)
                    while let event = try await events.next() { arrived.yield(event.name) }
                }
            } catch {
                arrived.yield("error: \(error)")
            }
        }
        await store.holdNextRead(of: login.id, causedBy: pc)
        let scan = try await server.call(.POST, "/api/v1/qr/\(login.id)/scan", device: phone, token: phone.token)
        #expect(scan.status == .ok)
        store.release()
        let patience = Task {
            try await Task.sleep(for: .seconds(3))
            arrived.yield("nothing within 3 s")
        }
        var seen: [String] = []
        for await name in names {
            seen.append(name)
            if name == "scanned" || name.hasPrefix("nothing") { break }
        }
        #expect(seen.last == "scanned", "\(path): \(seen)")
        patience.cancel()
        try await server.stop()
    }
}
