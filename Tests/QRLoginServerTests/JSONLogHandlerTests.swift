import Foundation
import Logging
import QRLoginServer
import Synchronization
import Testing

@Suite("JSON log lines")
struct JSONLogHandlerTests {
    /// The lines a handler wrote.
    private final class Lines: Sendable {
        private let kept = Mutex<[String]>([])
        func append(_ line: String) { kept.withLock { $0.append(line) } }
        var all: [String] { kept.withLock { $0 } }
    }

    /// A logger whose handler keeps its lines.
    private func logger(_ label: String = "qrlogin.test") -> (Logger, Lines) {
        let lines = Lines()
        let handler = JSONLogHandler(label: label) { lines.append($0) }
        var logger = Logger(label: label, factory: { _ in handler })
        logger.logLevel = .trace
        return (logger, lines)
    }

    private func object(_ line: String) throws -> [String: Any] {
        #expect(line.hasSuffix("\n"))
        #expect(line.dropLast().firstIndex(of: "\n") == nil, "more than one line: \(line)")
        return try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any], "not a JSON object: \(line)")
    }

    @Test("One object per line: time, level, label, message, source and the metadata under its own keys")
    func fields() throws {
        var (logger, lines) = logger()
        logger[metadataKey: "hb.request.id"] = "42"
        logger.info("login request scanned", metadata: [
            "qrlogin.request.id": "abc", "count": .stringConvertible(3),
            "nested": .dictionary(["b": "2", "a": .array(["x", "y"])]),
        ])
        let line = try #require(lines.all.first)
        let json = try object(line)
        #expect(json["level"] as? String == "info")
        #expect(json["label"] as? String == "qrlogin.test")
        #expect(json["message"] as? String == "login request scanned")
        #expect(json["source"] as? String == "QRLoginServerTests")
        #expect(json["hb.request.id"] as? String == "42")
        #expect(json["qrlogin.request.id"] as? String == "abc")
        #expect(json["count"] as? String == "3")
        let nested = try #require(json["nested"] as? [String: Any])
        #expect(nested["b"] as? String == "2")
        #expect(nested["a"] as? [String] == ["x", "y"])
        let timestamp = try #require(json["timestamp"] as? String)
        #expect(timestamp.wholeMatch(of: /\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z/) != nil, "\(timestamp)")
        let parsed = try Date(timestamp, strategy: .iso8601.year().month().day().time(includingFractionalSeconds: true))
        #expect(abs(parsed.timeIntervalSinceNow) < 60)
    }

    @Test("Hostile text stays inside its string: quotes, backslashes, newlines, control characters, separators")
    func escaping() throws {
        let (logger, lines) = logger()
        let hostile = "a\"b\\c\nd\re\tf\u{0}g\u{1b}[31mh\u{7f}i\u{2028}j\u{2029}k ü 🙂 \"}, {\"level\": \"critical\""
        logger.warning("\(hostile)", metadata: ["user.agent": "\(hostile)", "\(hostile)": "key"])
        let all = lines.all
        #expect(all.count == 1)
        let json = try object(try #require(all.first))
        #expect(json["message"] as? String == hostile)
        #expect(json["user.agent"] as? String == hostile)
        #expect(json[hostile] as? String == "key")
        #expect(json["level"] as? String == "warning")
        let line = try #require(all.first)
        #expect(!line.unicodeScalars.contains { $0.value < 0x20 && $0 != "\n" }, "a raw control character in \(line.debugDescription)")
    }

    @Test("Metadata cannot overwrite the line's own fields; an error is written as error.message and error.type")
    func reservedKeysAndErrors() throws {
        struct Broken: Error {}
        let (logger, lines) = logger()
        logger.error("failed", error: Broken(), metadata: ["level": "debug", "message": "forged"])
        let json = try object(try #require(lines.all.first))
        #expect(json["level"] as? String == "error")
        #expect(json["message"] as? String == "failed")
        #expect(json["metadata.level"] as? String == "debug")
        #expect(json["metadata.message"] as? String == "forged")
        #expect(json["error.message"] as? String == "Broken()")
        #expect((json["error.type"] as? String)?.hasSuffix("Broken") == true)
    }
}
