import Foundation

/// Unpadded base64url (RFC 4648 §5), as JOSE and every identifier and secret here use it.
///
/// Table-driven over bytes, so a proof's parts are decoded without building intermediate
/// strings. Decoding is strict: it accepts exactly the canonical spelling of a byte string, so
/// one key has one spelling and so one thumbprint.
public enum Base64URL {
    private static let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_".utf8)

    private static let decodeTable: [UInt8] = {
        var table = [UInt8](repeating: 0xFF, count: 256)
        for (value, symbol) in alphabet.enumerated() { table[Int(symbol)] = UInt8(value) }
        return table
    }()

    /// Encodes `bytes` as unpadded base64url. Never fails.
    public static func encode(_ bytes: some Sequence<UInt8>) -> String {
        var output: [UInt8] = []
        output.reserveCapacity((bytes.underestimatedCount * 4 + 2) / 3)
        var iterator = bytes.makeIterator()
        while let b0 = iterator.next() {
            let b1 = iterator.next(), b2 = iterator.next()
            output.append(alphabet[Int(b0 >> 2)])
            output.append(alphabet[Int((b0 & 0x03) << 4 | (b1 ?? 0) >> 4)])
            guard let b1 else { break }
            output.append(alphabet[Int((b1 & 0x0F) << 2 | (b2 ?? 0) >> 6)])
            guard let b2 else { break }
            output.append(alphabet[Int(b2 & 0x3F)])
        }
        return String(decoding: output, as: UTF8.self)
    }

    /// Decodes unpadded base64url. Returns nil for padding, characters outside the base64url
    /// alphabet (including `+` and `/`), a length of 1 mod 4, or non-zero trailing bits.
    public static func decode(_ string: String) -> Data? {
        decodeBytes(string.utf8).map { Data($0) }
    }

    /// Decodes unpadded base64url; nil for exactly what the `String` overload refuses.
    public static func decode(_ string: Substring) -> Data? {
        decodeBytes(string.utf8).map { Data($0) }
    }

    /// Decodes the UTF-8 bytes of unpadded base64url text into bytes; nil for exactly what `decode(_:)` refuses.
    static func decodeBytes<C: Collection<UInt8>>(_ text: C) -> [UInt8]? {
        let count = text.count
        guard count % 4 != 1 else { return nil }
        var output: [UInt8] = []
        output.reserveCapacity(count * 3 / 4)
        var accumulator: UInt32 = 0
        var bits = 0
        for symbol in text {
            let value = decodeTable[Int(symbol)]
            guard value != 0xFF else { return nil }
            accumulator = accumulator << 6 | UInt32(value)
            bits += 6
            if bits >= 8 {
                bits -= 8
                output.append(UInt8(truncatingIfNeeded: accumulator >> UInt32(bits)))
                accumulator &= (1 << UInt32(bits)) - 1
            }
        }
        guard accumulator == 0 else { return nil }
        return output
    }
}
