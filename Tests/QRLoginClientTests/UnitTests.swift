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
