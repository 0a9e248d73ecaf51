import Foundation
import Hummingbird
import Logging
import Synchronization
import QRLoginCore
@testable import QRLoginServer
import Testing

/// The OAuth endpoints' requests answered from the connection's channel handler
/// (`DirectRequestHandler`), on a real socket: in order with the requests Hummingbird answers
/// on the same connection, with the same answers, and with HTTP/1.1's rules for closing.
/// (OAuthTokenTests and OAuthDeviceGrantTests run every OAuth rule through this path too.)
@Suite("Live server: OAuth requests answered from the channel handler", .serialized)
struct DirectRequestTests {
    /// One response as read off the wire.
    struct RawResponse: Sendable {
        var status: Int
        var headers: [(name: String, value: String)]
        var body: String

        func header(_ name: String) -> String? {
            headers.first { $0.name.lowercased() == name.lowercased() }?.value
        }
    }

    static let rsAuthorization = OAuthClients.basic("rs", OAuthClients.rsSecret)

    /// `POST path` with a form body, as raw bytes; `chunked` sends the body in one chunk
    /// instead of with a Content-Length.
    static func post(_ path: String, _ form: String, authorization: String = rsAuthorization, extraHeaders: String = "", chunked: Bool = false) -> String {
        let framing = chunked ? "Transfer-Encoding: chunked\r\n" : "Content-Length: \(form.utf8.count)\r\n"
        let body = chunked ? String(form.utf8.count, radix: 16) + "\r\n" + form + "\r\n0\r\n\r\n" : form
        return "POST \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: \(authorization)\r\n"
            + "Content-Type: application/x-www-form-urlencoded\r\n\(framing)\(extraHeaders)\r\n\(body)"
    }

    /// Runs `body` against a live server with the OAuth test clients, stopped (and waited for)
    /// afterwards, failed or not.
    static func withServer(_ body: (LiveServer) async throws -> Void) async throws {
        let server = try await LiveServer.start(store: try await OAuthClients.store())
        do {
            try await body(server)
        } catch {
            try? await server.stop()
            throw error
        }
        try await server.stop()
    }

    static func get(_ path: String) -> String {
        "GET \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
    }

    /// Runs `body`, which blocks on a socket, on a thread of its own: blocked, it would hold one
    /// of the few threads Swift's tasks run on, which the in-process server needs too.
    static func onThread<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            Thread { continuation.resume(with: Result { try body() }) }.start()
        }
    }

    /// Reads `count` whole responses (each framed by its Content-Length), then whether the
    /// server closed the connection within a moment.
    static func read(_ count: Int, from connection: RawConnection) async throws -> (responses: [RawResponse], closed: Bool) {
        nonisolated(unsafe) let connection = connection
        return try await onThread { try readBlocking(count, from: connection) }
    }

    private static func readBlocking(_ count: Int, from connection: RawConnection) throws -> (responses: [RawResponse], closed: Bool) {
        var received = [UInt8]()
        var responses: [RawResponse] = []
        while responses.count < count {
            if let (response, used) = parse(received) {
                responses.append(response)
                received.removeFirst(used)
                continue
            }
            do {
                received += Array(try connection.readSome().utf8)
            } catch {
                Issue.record("after \(responses.map(\.status)), the connection ended or went quiet; unparsed: \(String(decoding: received, as: UTF8.self))")
                throw error
            }
        }
        #expect(received.isEmpty, "bytes after the last response: \(String(decoding: received, as: UTF8.self))")
        return (responses, try connection.waitForClose(within: .milliseconds(300)))
    }

    private static func parse(_ bytes: [UInt8]) -> (RawResponse, Int)? {
        let separator = Array("\r\n\r\n".utf8)
        guard let end = (0..<max(0, bytes.count - 3)).first(where: { Array(bytes[$0..<$0 + 4]) == separator }) else { return nil }
        let lines = String(decoding: bytes[..<end], as: UTF8.self).components(separatedBy: "\r\n")
        let status = Int(lines[0].split(separator: " ")[1]) ?? 0
        let headers = lines.dropFirst().map { line -> (String, String) in
            let parts = line.split(separator: ":", maxSplits: 1)
            return (String(parts[0]), parts.count > 1 ? parts[1].trimmingCharacters(in: .whitespaces) : "")
        }
        let length = headers.first { $0.0.lowercased() == "content-length" }.flatMap { Int($0.1) } ?? 0
        guard bytes.count >= end + 4 + length else { return nil }
        let body = String(decoding: bytes[(end + 4)..<(end + 4 + length)], as: UTF8.self)
        return (RawResponse(status: status, headers: headers, body: body), end + 4 + length)
    }

    @Test("Pipelined requests are answered in the order they came, whichever path answers them")
    func pipelinedRequestsAreAnsweredInOrder() async throws {
        try await Self.withServer { server in
            let connection = try RawConnection(port: server.port)
            let wrong = OAuthClients.basic("rs", "not-the-secret")
            try connection.send(
                Self.post("/oauth/introspect", "token=unknown") + Self.get("/health") + Self.post("/oauth/introspect", "token=unknown", authorization: wrong)
                    + Self.get("/.well-known/oauth-authorization-server") + Self.post("/oauth/revoke", "token=unknown")
                    + Self.post("/oauth/token", "grant_type=refresh_token&refresh_token=nope", authorization: wrong)
            )
            let (responses, closed) = try await Self.read(6, from: connection)
            #expect(responses.map(\.status) == [200, 200, 401, 200, 200, 401])
            #expect(responses[0].body == #"{"active":false}"#)
            #expect(responses[1].body.contains(#""status":"ok""#))
            #expect(responses[2].body.contains(#""error":"invalid_client""#))
            #expect(responses[3].body.replacingOccurrences(of: "\\/", with: "/").contains(#""issuer":"\#(testBaseURL)""#))
            #expect(responses[4].body.isEmpty)
            #expect(responses[5].body.contains(#""error":"invalid_client""#))
            #expect(!closed, "the connection stays open for more requests")

            // Many at once: answers alternate as the requests do.
            var many = ""
            for index in 0..<40 { many += Self.post("/oauth/introspect", "token=t\(index)", authorization: index % 2 == 0 ? Self.rsAuthorization : wrong) }
            try connection.send(many)
            let (answers, _) = try await Self.read(40, from: connection)
            #expect(answers.map(\.status) == (0..<40).map { $0 % 2 == 0 ? 200 : 401 })
        }
    }

    @Test("An answer from the channel handler is the router's: the same status, headers and body")
    func theAnswerIsTheRouters() async throws {
        try await Self.withServer { server in
            for (form, authorization) in [("token=unknown", Self.rsAuthorization), ("token=unknown", OAuthClients.basic("rs", "wrong")), ("token=a&token=b", Self.rsAuthorization)] {
                // A chunked body is never taken from Hummingbird: the same request on its path.
                var answers: [RawResponse] = []
                for chunked in [false, true] {
                    let connection = try RawConnection(port: server.port)
                    try connection.send(Self.post("/oauth/introspect", form, authorization: authorization, chunked: chunked))
                    answers.append(try await Self.read(1, from: connection).responses[0])
                }
                let (direct, routed) = (answers[0], answers[1])
                #expect(direct.status == routed.status)
                #expect(direct.body == routed.body)
                let names = { (response: RawResponse) in response.headers.map { $0.name.lowercased() }.filter { $0 != "date" }.sorted() }
                #expect(names(direct) == names(routed))
                for name in names(direct) { #expect(direct.header(name) == routed.header(name), "\(name)") }
                #expect(direct.header("date") != nil && direct.header("server") == "qrlogin")
            }
        }
    }

    @Test("Connection: close ends the connection after the answer; nothing after it is answered")
    func connectionCloseIsHonoured() async throws {
        try await Self.withServer { server in
            let connection = try RawConnection(port: server.port)
            try connection.send(Self.post("/oauth/introspect", "token=unknown", extraHeaders: "Connection: close\r\n") + Self.get("/health"))
            let (responses, closed) = try await Self.read(1, from: connection)
            #expect(responses[0].status == 200 && responses[0].body == #"{"active":false}"#)
            #expect(closed)
        }
    }

    @Test("A client that closes its side after OAuth requests has its connection closed at once")
    func aClientsCloseEndsTheConnection() async throws {
        try await Self.withServer { server in
            for pipelined in [false, true] {
                let connection = try RawConnection(port: server.port)
                try connection.send(Self.post("/oauth/introspect", "token=unknown") + (pipelined ? Self.post("/oauth/revoke", "token=unknown") : ""))
                if pipelined { connection.shutdownWrite() }
                let (responses, _) = try await Self.read(pipelined ? 2 : 1, from: connection)
                #expect(responses.map(\.status) == (pipelined ? [200, 200] : [200]))
                if !pipelined { connection.shutdownWrite() }
                // Without the close passed on, the server held the connection until its idle timeout.
                nonisolated(unsafe) let waiting = connection
                #expect(try await Self.onThread { try waiting.waitForClose(within: .seconds(2)) }, "pipelined: \(pipelined)")
            }
        }
    }

    @Test("Nothing is taken after a request that asked to close the connection")
    func nothingAfterAClose() async throws {
        try await Self.withServer { server in
            let connection = try RawConnection(port: server.port)
            try connection.send(
                "GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n" + Self.post("/oauth/introspect", "token=unknown")
            )
            let (responses, closed) = try await Self.read(1, from: connection)
            #expect(responses.map(\.status) == [200])
            #expect(closed)
        }
    }

    @Test("The server's shutdown waits for answers still under way")
    func shutdownWaitsForAnswers() async throws {
        let routes = DirectRoutes(responder: Router(context: AppRequestContext.self).buildResponder(), paths: [], maxBody: 0, serverName: nil, logger: Logger(label: "test"))
        await routes.drained()
        routes.began()
        routes.began()
        let done = Mutex(false)
        let waiting = Task {
            await routes.drained()
            done.withLock { $0 = true }
        }
        routes.ended()
        try await Task.sleep(for: .milliseconds(100))
        #expect(!done.withLock { $0 }, "one answer is still under way")
        routes.ended()
        await waiting.value
        #expect(done.withLock { $0 })
    }

    @Test("A body over the form limit, and malformed bytes after an answer, get the router's answers")
    func oversizedAndMalformedRequests() async throws {
        try await Self.withServer { server in
            let large = try RawConnection(port: server.port)
            try large.send(Self.post("/oauth/introspect", "token=" + String(repeating: "a", count: FormBody.maxLength)))
            let tooLarge = try await Self.read(1, from: large).responses[0]
            #expect(tooLarge.status == 400 && tooLarge.body.contains("larger than"))

            // Malformed from the first byte, on a connection of its own (this got no answer at all
            // once: the error was passed on from a handler already out of the pipeline).
            let malformed = try RawConnection(port: server.port)
            try malformed.send("NOT HTTP AT ALL\r\n\r\n")
            let refused = try await Self.read(1, from: malformed)
            #expect(refused.responses[0].status == 400 && refused.responses[0].header("connection") == "close")
            #expect(refused.closed)

            let garbled = try RawConnection(port: server.port)
            try garbled.send(Self.post("/oauth/introspect", "token=unknown") + "NOT HTTP AT ALL\r\n\r\n")
            let (responses, closed) = try await Self.read(2, from: garbled)
            #expect(responses.map(\.status) == [200, 400])
            #expect(closed)
        }
    }

    @Test("A PC's event stream after an OAuth request on the same connection is served")
    func aStreamAfterAnOAuthRequest() async throws {
        try await Self.withServer { server in
            let login = try await server.newLogin()
            let proof = try login.device.signer.proof(method: "GET", url: testBaseURL + "/api/v1/qr/\(login.id)", accessToken: login.pollSecret, issuedAt: server.clock.now)
            let connection = try RawConnection(port: server.port)
            try connection.send(
                Self.post("/oauth/introspect", "token=unknown")
                    + "GET /api/v1/qr/\(login.id) HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\nAuthorization: Bearer \(login.pollSecret)\r\nDPoP: \(proof)\r\n\r\n"
            )
            nonisolated(unsafe) let stream = connection
            let received = try await Self.onThread { try stream.read(until: "event: pending") }
            #expect(received.hasPrefix("HTTP/1.1 200 OK"))
            #expect(received.contains(#"{"active":false}"#))
            #expect(received.contains("text/event-stream"))
        }
    }
}
