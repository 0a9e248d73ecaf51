import Foundation
import Hummingbird
import NIOCore

/// Writes the JSON of the hot responses (creating a login request, its status and its events,
/// scan, confirm, `me`) straight into a `ByteBuffer`, byte for byte what `JSONEncoder.qrlogin`
/// writes: keys in the order given (callers give them sorted, as `.sortedKeys` does), strings
/// escaped as Foundation escapes them (including `\/`), dates as ISO 8601 in whole UTC seconds.
///
/// Foundation's `JSONEncoder` goes through `Encodable`'s containers, boxes every value and sorts
/// keys at run time; on a status read it cost about as much as the SQLite read. No package of
/// ours writes JSON without it, so this small writer is hand-made, and `JSONWriterTests` holds
/// it to `JSONEncoder`'s bytes for every view it writes.
struct JSONWriter {
    private(set) var buffer: ByteBuffer
    private var needsComma = false

    init(capacity: Int = 256) {
        buffer = ByteBufferAllocator().buffer(capacity: capacity)
    }

    /// Writes `{`, the fields `body` writes, and `}`.
    mutating func object(_ body: (inout JSONWriter) -> Void) {
        if needsComma { buffer.writeInteger(UInt8(ascii: ",")) }
        buffer.writeInteger(UInt8(ascii: "{"))
        needsComma = false
        body(&self)
        buffer.writeInteger(UInt8(ascii: "}"))
        needsComma = true
    }

    private mutating func key(_ name: StaticString) {
        if needsComma { buffer.writeInteger(UInt8(ascii: ",")) }
        buffer.writeInteger(UInt8(ascii: "\""))
        buffer.writeStaticString(name)
        buffer.writeStaticString("\":")
        needsComma = true
    }

    mutating func field(_ name: StaticString, _ value: String) {
        key(name)
        writeString(value)
    }

    mutating func field(_ name: StaticString, _ value: String?) {
        guard let value else { return }
        field(name, value)
    }

    mutating func field(_ name: StaticString, _ value: Int) {
        key(name)
        buffer.writeString(String(value))
    }

    mutating func field(_ name: StaticString, _ value: Int?) {
        guard let value else { return }
        field(name, value)
    }

    mutating func field(_ name: StaticString, _ value: Date) {
        key(name)
        writeDate(value)
    }

    mutating func field(_ name: StaticString, _ values: [Int]) {
        key(name)
        buffer.writeInteger(UInt8(ascii: "["))
        for (index, value) in values.enumerated() {
            if index > 0 { buffer.writeInteger(UInt8(ascii: ",")) }
            buffer.writeString(String(value))
        }
        buffer.writeInteger(UInt8(ascii: "]"))
    }

    mutating func field(_ name: StaticString, _ values: [String]) {
        key(name)
        buffer.writeInteger(UInt8(ascii: "["))
        for (index, value) in values.enumerated() {
            if index > 0 { buffer.writeInteger(UInt8(ascii: ",")) }
            writeString(value)
        }
        buffer.writeInteger(UInt8(ascii: "]"))
    }

    /// An array of objects under `name`, each written by `body`.
    mutating func field<Element>(_ name: StaticString, array elements: [Element], _ body: (inout JSONWriter, Element) -> Void) {
        key(name)
        buffer.writeInteger(UInt8(ascii: "["))
        needsComma = false
        for element in elements {
            object { body(&$0, element) }
        }
        buffer.writeInteger(UInt8(ascii: "]"))
        needsComma = true
    }

    mutating func field(_ name: StaticString, _ value: Bool) {
        key(name)
        buffer.writeStaticString(value ? "true" : "false")
    }

    mutating func field<Value: RawRepresentable<String>>(_ name: StaticString, _ value: Value?) {
        guard let value else { return }
        field(name, value.rawValue)
    }

    /// A nested object under `name`, written by `body`.
    mutating func field(_ name: StaticString, object body: (inout JSONWriter) -> Void) {
        key(name)
        needsComma = false
        object(body)
    }

    /// A nested value under `name`; nothing if nil, as `JSONEncoder` leaves out nil.
    mutating func field(_ name: StaticString, _ value: (some JSONWritable)?) {
        guard let value else { return }
        key(name)
        needsComma = false
        value.write(to: &self)
    }

    private mutating func writeString(_ value: String) {
        buffer.writeInteger(UInt8(ascii: "\""))
        var value = value
        value.withUTF8 { bytes in
            // Runs of bytes that need no escape are copied at once (a URL's slashes do).
            var start = 0
            for (index, byte) in bytes.enumerated() {
                let escape: StaticString
                var code = false
                switch byte {
                case UInt8(ascii: "\""): escape = "\\\""
                case UInt8(ascii: "\\"): escape = "\\\\"
                case UInt8(ascii: "/"): escape = "\\/"
                case 0x08: escape = "\\b"
                case 0x09: escape = "\\t"
                case 0x0A: escape = "\\n"
                case 0x0C: escape = "\\f"
                case 0x0D: escape = "\\r"
                case ..<0x20: escape = "\\u00"; code = true
                default: continue
                }
                buffer.writeBytes(UnsafeRawBufferPointer(UnsafeBufferPointer(rebasing: bytes[start..<index])))
                buffer.writeStaticString(escape)
                if code {
                    buffer.writeInteger(Self.hex[Int(byte >> 4)])
                    buffer.writeInteger(Self.hex[Int(byte & 0x0F)])
                }
                start = index + 1
            }
            buffer.writeBytes(UnsafeRawBufferPointer(UnsafeBufferPointer(rebasing: bytes[start...])))
        }
        buffer.writeInteger(UInt8(ascii: "\""))
    }

    private static let hex: [UInt8] = Array("0123456789abcdef".utf8)

    /// `"yyyy-MM-ddTHH:mm:ssZ"`, the second rounded down, as `.iso8601` writes it.
    private mutating func writeDate(_ date: Date) {
        var seconds = time_t(date.timeIntervalSince1970.rounded(.down))
        var parts = tm()
        gmtime_r(&seconds, &parts)
        buffer.writeInteger(UInt8(ascii: "\""))
        writeDigits(Int(parts.tm_year) + 1900, width: 4)
        buffer.writeInteger(UInt8(ascii: "-"))
        writeDigits(Int(parts.tm_mon) + 1, width: 2)
        buffer.writeInteger(UInt8(ascii: "-"))
        writeDigits(Int(parts.tm_mday), width: 2)
        buffer.writeInteger(UInt8(ascii: "T"))
        writeDigits(Int(parts.tm_hour), width: 2)
        buffer.writeInteger(UInt8(ascii: ":"))
        writeDigits(Int(parts.tm_min), width: 2)
        buffer.writeInteger(UInt8(ascii: ":"))
        writeDigits(Int(parts.tm_sec), width: 2)
        buffer.writeStaticString("Z\"")
    }

    private mutating func writeDigits(_ value: Int, width: Int) {
        let digits = String(value)
        for _ in digits.utf8.count..<max(width, digits.utf8.count) { buffer.writeInteger(UInt8(ascii: "0")) }
        buffer.writeString(digits)
    }
}

/// A response body written by ``JSONWriter`` instead of `JSONEncoder`; it stays `Encodable` so
/// tests can compare the two.
protocol JSONWritable: Encodable {
    /// Writes this value as one JSON object.
    func write(to writer: inout JSONWriter)
}

extension JSONWritable {
    /// The JSON bytes of this value.
    var json: ByteBuffer {
        var writer = JSONWriter()
        write(to: &writer)
        return writer.buffer
    }
}

/// A JSON response of a ``JSONWritable`` value. `no-store`, because these bodies carry poll
/// secrets, tickets, tokens and account facts that no cache should keep.
extension JSONWritable where Self: ResponseGenerator {
    func response(from request: Request, context: some RequestContext) throws -> Response {
        let body = json
        return Response(
            status: .ok,
            headers: [.contentType: "application/json; charset=utf-8", .contentLength: String(body.readableBytes), .cacheControl: "no-store"],
            body: .init(byteBuffer: body)
        )
    }
}
