import Foundation
import Logging

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// How `qrlogin serve` writes its log: `text` (swift-log's stream handler's lines, through
/// ``TextLogHandler``, for people) or `json` (one object per line, for log collectors).
public enum LogFormat: String, CaseIterable, Sendable {
    case text, json
}

/// A log handler that writes one JSON object per line to standard error, for machines: the
/// collector (Loki, Elasticsearch, CloudWatch, journald's JSON) parses the line instead of
/// guessing at text.
///
/// Every line has `timestamp` (UTC, ISO 8601 with milliseconds), `level`, `label`, `message` and
/// `source`, then the metadata under its own keys (`hb.request.path`, `qrlogin.request.id`, …),
/// in key order; a nested value stays a JSON object or array. A metadata key that would
/// overwrite one of the five is written as `metadata.KEY`.
///
/// Written here because none of the packages the project builds on has one (swift-log ships a
/// text handler only); it is small, and the escaping is tested.
public struct JSONLogHandler: LogHandler {
    public var metadata: Logger.Metadata = [:]
    public var metadataProvider: Logger.MetadataProvider?
    public var logLevel: Logger.Level = .info
    private let label: String
    private let write: @Sendable (String) -> Void

    /// A handler for `label` writing to standard error.
    public init(label: String, metadataProvider: Logger.MetadataProvider? = LoggingSystem.metadataProvider) {
        self.init(label: label, metadataProvider: metadataProvider, write: Self.standardError)
    }

    /// A handler for `label` passing each line (with its newline) to `write`.
    public init(label: String, metadataProvider: Logger.MetadataProvider? = nil, write: @escaping @Sendable (String) -> Void) {
        self.label = label
        self.metadataProvider = metadataProvider
        self.write = write
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    private static let reserved: Set<String> = ["timestamp", "level", "label", "message", "source"]

    public func log(event: LogEvent) {
        var fields = metadata
        if let provided = metadataProvider?.get() { fields.merge(provided) { $1 } }
        if let explicit = event.metadata { fields.merge(explicit) { $1 } }
        if let error = event.error {
            fields["error.message"] = "\(error)"
            fields["error.type"] = "\(String(reflecting: type(of: error)))"
        }
        var line = "{\"timestamp\":"
        Self.append(string: Self.timestamp(), to: &line)
        line += ",\"level\":"
        Self.append(string: event.level.rawValue, to: &line)
        line += ",\"label\":"
        Self.append(string: label, to: &line)
        line += ",\"message\":"
        Self.append(string: event.message.description, to: &line)
        line += ",\"source\":"
        Self.append(string: event.source, to: &line)
        for key in fields.keys.sorted() {
            line += ","
            Self.append(string: Self.reserved.contains(key) ? "metadata." + key : key, to: &line)
            line += ":"
            Self.append(value: fields[key]!, to: &line)
        }
        line += "}\n"
        write(line)
    }

    private static func append(value: Logger.Metadata.Value, to line: inout String) {
        switch value {
        case .string(let text):
            append(string: text, to: &line)
        case .stringConvertible(let convertible):
            append(string: convertible.description, to: &line)
        case .dictionary(let dictionary):
            line += "{"
            for (index, key) in dictionary.keys.sorted().enumerated() {
                if index > 0 { line += "," }
                append(string: key, to: &line)
                line += ":"
                append(value: dictionary[key]!, to: &line)
            }
            line += "}"
        case .array(let values):
            line += "["
            for (index, element) in values.enumerated() {
                if index > 0 { line += "," }
                append(value: element, to: &line)
            }
            line += "]"
        }
    }

    /// `text` as a JSON string (RFC 8259 §7): quote, backslash and control characters escaped,
    /// so a message or a client-supplied value can never end the line or the object.
    static func append(string text: String, to line: inout String) {
        line += "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": line += "\\\""
            case "\\": line += "\\\\"
            case "\n": line += "\\n"
            case "\r": line += "\\r"
            case "\t": line += "\\t"
            case "\u{2028}": line += "\\u2028"
            case "\u{2029}": line += "\\u2029"
            default:
                if scalar.value < 0x20 || scalar.value == 0x7f {
                    let hex = String(scalar.value, radix: 16)
                    line += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
                } else {
                    line.unicodeScalars.append(scalar)
                }
            }
        }
        line += "\""
    }

    /// Now in UTC, e.g. `2026-12-04T21:40:07.123Z`.
    static func timestamp() -> String {
        let now = Date().timeIntervalSince1970
        var seconds = time_t(now.rounded(.down))
        let millis = min(999, Int((now - now.rounded(.down)) * 1000))
        var parts = tm()
        gmtime_r(&seconds, &parts)
        func pad(_ value: Int, _ width: Int) -> String {
            let digits = String(value)
            return String(repeating: "0", count: max(0, width - digits.count)) + digits
        }
        return "\(pad(Int(parts.tm_year) + 1900, 4))-\(pad(Int(parts.tm_mon) + 1, 2))-\(pad(Int(parts.tm_mday), 2))T"
            + "\(pad(Int(parts.tm_hour), 2)):\(pad(Int(parts.tm_min), 2)):\(pad(Int(parts.tm_sec), 2)).\(pad(millis, 3))Z"
    }

    /// One write per line (FileHandle writes it whole), so lines from different threads do not
    /// interleave.
    private static let standardError: @Sendable (String) -> Void = { line in
        FileHandle.standardError.write(Data(line.utf8))
    }
}
