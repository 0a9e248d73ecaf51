import Logging
import QRLoginServer
import Synchronization
import Testing

@Suite("Text log lines")
struct TextLogHandlerTests {
    /// What a stream handler wrote.
    private final class Capture: TextOutputStream, Sendable {
        private let text = Mutex("")
        func write(_ string: String) { text.withLock { $0 += string } }
        var lines: [String] { text.withLock { $0 }.split(separator: "\n").map(String.init) }
    }

    /// A line without its timestamp (its first field), which two handlers cannot share.
    private func untimed(_ line: String) -> String {
        String(line.drop { $0 != " " })
    }

    @Test("The same lines as swift-log's StreamLogHandler: logger metadata, a provider's, the line's own and an error, merged alike")
    func sameLinesAsStreamLogHandler() throws {
        struct Broken: Error {}
        let provider = Logger.MetadataProvider { ["trace.id": "t-1", "shared": "provider"] }
        let plain = Capture(), deferred = Capture()
        var reference = Logger(label: "qrlogin.test") { label in
            StreamLogHandler(label: label, stream: plain, metadataProvider: provider)
        }
        var ours = Logger(label: "qrlogin.test") { label in
            TextLogHandler(wrapping: StreamLogHandler(label: label, stream: deferred), metadataProvider: provider)
        }
        for index in 0..<2 {
            var logger = index == 0 ? reference : ours
            logger.logLevel = .debug
            logger.trace("not written")
            logger.info("no metadata of its own")
            logger[metadataKey: "hb.request.id"] = "42"
            logger[metadataKey: "shared"] = "logger"
            logger.info("request", metadata: ["qrlogin.client.id": "app", "count": .stringConvertible(3)])
            logger.warning("overridden", metadata: ["shared": "line", "list": ["a", "b"], "map": ["k": "v"]])
            logger.error("failed", error: Broken())
            logger[metadataKey: "hb.request.id"] = nil
            logger.debug("key removed")
            if index == 0 { reference = logger } else { ours = logger }
        }
        #expect(plain.lines.count == 5)
        #expect(deferred.lines.map(untimed) == plain.lines.map(untimed))
        #expect(deferred.lines[1].contains("hb.request.id=42"))
        #expect(!deferred.lines[4].contains("hb.request.id"))
        #expect(ours[metadataKey: "shared"] == "logger")
    }
}
