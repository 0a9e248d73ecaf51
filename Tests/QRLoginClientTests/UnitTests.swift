import Crypto
import Foundation
@testable import QRLoginClient
import QRLoginCore
import Testing

@Suite("Parsing")
struct ParsingTests {
    @Test("QR urls and bare ids give the request id", arguments: [
        ("https://login.example.com/q/-2UKdG_kcYccMM2vGtpV5g", "-2UKdG_kcYccMM2vGtpV5g"),
        ("http://127.0.0.1:8080/q/abc_DEF-123", "abc_DEF-123"),
        ("  -2UKdG_kcYccMM2vGtpV5g\n", "-2UKdG_kcYccMM2vGtpV5g"),
    ])
    func loginIds(input: String, id: String) throws {
        #expect(try loginRequestId(fromURLOrId: input) == id)
    }

    @Test("anything else is refused", arguments: ["", "https://example.com/", "https://example.com/x/abc", "not an id!", "https://e.com/q/a%20b"])
    func badLoginIds(input: String) {
        #expect(throws: QRLoginClientError.self) { try loginRequestId(fromURLOrId: input) }
    }

    @Test("server-sent events split across chunks, CRLF and comments")
    func serverSentEvents() {
        var parser = ServerSentEventParser()
        #expect(parser.feed(Array(": heartbeat\n\nevent: pend".utf8)).isEmpty)
        #expect(parser.feed(Array("ing\r\ndata: {\"a\":".utf8)).isEmpty)
        let events = parser.feed(Array("1}\r\n\r\nevent: scanned\ndata: x\ndata: y\n\n".utf8))
        #expect(events == [ServerSentEvent(name: "pending", data: "{\"a\":1}"), ServerSentEvent(name: "scanned", data: "x\ny")])
        // A multi-byte character split between chunks survives.
        let bytes = Array("data: é\n\n".utf8)
        #expect(parser.feed(bytes[..<7]).isEmpty)
        #expect(parser.feed(bytes[7...]) == [ServerSentEvent(name: "message", data: "é")])
    }

    @Test("server URLs must be http(s)")
    func serverURL() throws {
        #expect(throws: QRLoginClientError.invalidServerURL("ftp://x")) { try QRLoginClient(server: "ftp://x", key: .init()) }
        #expect(try QRLoginClient(server: "http://127.0.0.1:8080/", key: .init()).server == "http://127.0.0.1:8080")
    }
}

/// Answers each request with the next canned answer and records what was sent.
private final class ScriptedTransport: ClientTransport, @unchecked Sendable {
    private let lock = NSLock()
    private var answers: [(Int, String)]
    private(set) var sent: [TransportRequest] = []

    init(_ answers: [(Int, String)]) { self.answers = answers }

    func send(_ request: TransportRequest) async throws -> TransportResponse {
        let (status, body) = lock.withLock {
            sent.append(request)
            return answers.removeFirst()
        }
        return TransportResponse(status: status, headers: [("Content-Type", "application/json")], body: ResponseBody(bytes: Array(body.utf8)))
    }
}

@Suite("A proof a proxy re-sent")
struct ProxyReplayTests {
    static let replayed = (401, #"{"status":401,"code":"dpop_proof_replayed","title":"Unauthorized","detail":"used"}"#)
    static let missing = (404, #"{"status":404,"code":"not_found","title":"Not Found","detail":"none"}"#)

    @Test("a GET answered dpop_proof_replayed is signed anew and sent once more, then the answer stands")
    func getIsRetriedOnceWithAFreshProof() async throws {
        let transport = ScriptedTransport([Self.replayed, Self.missing])
        let client = try QRLoginClient(server: "https://login.example.com", key: P256.Signing.PrivateKey(), transport: transport)
        await #expect { _ = try await client.exchange("GET", "/api/v1/qr/x", auth: .proof, token: nil, body: nil, timeout: .seconds(5)) } throws: {
            ($0 as? QRLoginClientError)?.code == "not_found"
        }
        #expect(transport.sent.count == 2)
        let proofs = transport.sent.compactMap { $0.header("DPoP") }
        #expect(proofs.count == 2 && proofs[0] != proofs[1], "each try carries its own proof")
    }

    @Test("a second replay answer, or one to a POST, is reported, not retried")
    func onlyOnceAndOnlyForReads() async throws {
        let twice = ScriptedTransport([Self.replayed, Self.replayed])
        let client = try QRLoginClient(server: "https://login.example.com", key: P256.Signing.PrivateKey(), transport: twice)
        await #expect { _ = try await client.exchange("GET", "/api/v1/qr/x", auth: .proof, token: nil, body: nil, timeout: .seconds(5)) } throws: {
            ($0 as? QRLoginClientError)?.code == "dpop_proof_replayed"
        }
        #expect(twice.sent.count == 2)

        let post = ScriptedTransport([Self.replayed])
        let poster = try QRLoginClient(server: "https://login.example.com", key: P256.Signing.PrivateKey(), transport: post)
        await #expect { _ = try await poster.exchange("POST", "/api/v1/qr", auth: .proof, token: nil, body: nil, timeout: .seconds(5)) } throws: {
            ($0 as? QRLoginClientError)?.code == "dpop_proof_replayed"
        }
        #expect(post.sent.count == 1, "a POST may have been carried out the first time")
    }
}
