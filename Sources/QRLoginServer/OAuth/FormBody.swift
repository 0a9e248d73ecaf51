import Foundation
import Hummingbird
import QRLoginOAuth

/// An `application/x-www-form-urlencoded` body, as every OAuth endpoint takes (RFC 6749 §3.2).
/// Strict: another content type, bytes that do not decode, or a parameter given twice
/// (RFC 6749 §3.1) is `invalid_request`, before anything else is looked at.
struct FormBody: Sendable {
    private var values: [String: String]

    /// The largest body read.
    static let maxLength = 16 * 1024

    /// Reads and parses the body of `request`.
    /// - Throws: `invalid_request`.
    // Inlined: a call of a nonisolated async function that is not inlined costs two trips
    // through the event loop's queue (BENCHMARKS.md, "The server on a core of its own").
    @inline(__always)
    static func read(_ request: Request, context: some RequestContext) async throws -> FormBody {
        guard let type = request.headers[.contentType], isFormType(type) else {
            throw OAuthError.invalidRequest("the body must be application/x-www-form-urlencoded")
        }
        var request = request
        let buffer: ByteBuffer
        do {
            buffer = try await request.collectBody(upTo: maxLength)
        } catch {
            throw OAuthError.invalidRequest("the body is larger than \(maxLength) bytes")
        }
        return try FormBody(String(buffer: buffer))
    }

    /// Whether a `Content-Type` value names `application/x-www-form-urlencoded`, in any case,
    /// with or without parameters (`; charset=UTF-8`). Compared over bytes: Foundation's
    /// trimming bridges through `NSString`, on every OAuth request.
    static func isFormType(_ value: String) -> Bool {
        equalsIgnoringASCIICase(value.utf8.prefix { $0 != UInt8(ascii: ";") }.trimmingSpaces, "application/x-www-form-urlencoded")
    }

    /// Whether `bytes` spell `lowercase` with any ASCII letters in either case (media types and
    /// authentication schemes are case-insensitive).
    static func equalsIgnoringASCIICase(_ bytes: some Collection<UInt8>, _ lowercase: StaticString) -> Bool {
        let expected = UnsafeBufferPointer(start: lowercase.utf8Start, count: lowercase.utf8CodeUnitCount)
        return bytes.count == expected.count && zip(bytes, expected).allSatisfy { byte, wanted in
            ((UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(byte) ? byte + 32 : byte) == wanted
        }
    }

    /// Parses form-encoded `text`.
    /// - Throws: `invalid_request` for a malformed body or a repeated parameter.
    init(_ text: String) throws(OAuthError) {
        values = [:]
        // Split over bytes: splitting the String itself walks it by Characters (grapheme
        // clusters), several times slower, and '&' and '=' are ASCII.
        for pair in text.utf8.split(separator: UInt8(ascii: "&"), omittingEmptySubsequences: true) {
            let equals = pair.firstIndex(of: UInt8(ascii: "=")) ?? pair.endIndex
            let rawValue = equals == pair.endIndex ? pair[equals...] : pair[pair.index(after: equals)...]
            guard let name = Self.decode(pair[..<equals]), let value = Self.decode(rawValue) else {
                throw .invalidRequest("the body is not valid form encoding")
            }
            guard values[name] == nil else { throw .invalidRequest("the parameter '\(name)' is given more than once") }
            values[name] = value
        }
    }

    /// ``decode(_:)-(Substring.UTF8View)`` of a string's part.
    static func decode(_ part: Substring) -> String? {
        decode(part.utf8)
    }

    /// `+` is a space, `%XX` a byte; the result must be UTF-8. Over bytes: every OAuth request
    /// goes through here, and Foundation's string bridging cost several microseconds a field.
    static func decode(_ utf8: Substring.UTF8View) -> String? {
        guard utf8.contains(where: { $0 == UInt8(ascii: "%") || $0 == UInt8(ascii: "+") }) else { return String(Substring(utf8)) }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(utf8.count)
        var index = utf8.startIndex
        while index != utf8.endIndex {
            let byte = utf8[index]
            utf8.formIndex(after: &index)
            switch byte {
            case UInt8(ascii: "+"):
                bytes.append(UInt8(ascii: " "))
            case UInt8(ascii: "%"):
                guard index != utf8.endIndex, let high = hexValue(utf8[index]) else { return nil }
                utf8.formIndex(after: &index)
                guard index != utf8.endIndex, let low = hexValue(utf8[index]) else { return nil }
                utf8.formIndex(after: &index)
                bytes.append(high << 4 | low)
            default:
                bytes.append(byte)
            }
        }
        return String(validating: bytes, as: UTF8.self)
    }

    private static func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): byte - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): byte - UInt8(ascii: "A") + 10
        default: nil
        }
    }

    /// Every parameter with a value.
    var all: [String: String] { values.filter { !$0.value.isEmpty } }

    /// The parameter `name`; an empty value counts as absent (RFC 6749 §3.1).
    subscript(name: String) -> String? {
        values[name].flatMap { $0.isEmpty ? nil : $0 }
    }

    /// The parameter `name`.
    /// - Throws: `invalid_request` when it is missing.
    func require(_ name: String) throws(OAuthError) -> String {
        guard let value = self[name] else { throw .invalidRequest("the parameter '\(name)' is missing") }
        return value
    }
}

extension BidirectionalCollection<UInt8> where SubSequence == Self {
    /// Without leading and trailing spaces and tabs (HTTP's optional whitespace).
    var trimmingSpaces: SubSequence {
        let isSpace = { (byte: UInt8) in byte == UInt8(ascii: " ") || byte == UInt8(ascii: "\t") }
        var trimmed = drop(while: isSpace)
        while let last = trimmed.last, isSpace(last) { trimmed = trimmed.dropLast() }
        return trimmed
    }
}
