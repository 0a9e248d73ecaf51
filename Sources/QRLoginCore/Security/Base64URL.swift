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
    ///
    /// Called across modules, where a generic function runs unspecialized (an iterator through
    /// witness tables, byte by byte): the bytes are taken as one buffer instead, and sequences
    /// without contiguous storage (a digest) are copied into one first.
    public static func encode(_ bytes: some Sequence<UInt8>) -> String {
        if let encoded = bytes.withContiguousStorageIfAvailable({ encode(UnsafeRawBufferPointer($0)) }) { return encoded }
        return Array(bytes).withUnsafeBytes { encode($0) }
    }

    /// Encodes the bytes of `data` (contiguous storage of its own).
    public static func encode(_ data: Data) -> String {
        data.withUnsafeBytes { encode($0) }
    }

    /// Encodes raw bytes: three bytes to four symbols, the last group shortened (no padding).
    static func encode(_ bytes: UnsafeRawBufferPointer) -> String {
        let count = bytes.count
        let length = count / 3 * 4 + [0, 2, 3][count % 3]
        guard length > 0 else { return "" }
        return alphabet.withUnsafeBufferPointer { symbols in
            String(unsafeUninitializedCapacity: length) { output in
                var read = 0
                var written = 0
                while read + 3 <= count {
                    let group = UInt32(bytes[read]) << 16 | UInt32(bytes[read + 1]) << 8 | UInt32(bytes[read + 2])
                    output[written] = symbols[Int(group >> 18)]
                    output[written + 1] = symbols[Int(group >> 12 & 0x3F)]
                    output[written + 2] = symbols[Int(group >> 6 & 0x3F)]
                    output[written + 3] = symbols[Int(group & 0x3F)]
                    read += 3
                    written += 4
                }
                switch count - read {
                case 1:
                    let group = UInt32(bytes[read]) << 16
                    output[written] = symbols[Int(group >> 18)]
                    output[written + 1] = symbols[Int(group >> 12 & 0x3F)]
                case 2:
                    let group = UInt32(bytes[read]) << 16 | UInt32(bytes[read + 1]) << 8
                    output[written] = symbols[Int(group >> 18)]
                    output[written + 1] = symbols[Int(group >> 12 & 0x3F)]
                    output[written + 2] = symbols[Int(group >> 6 & 0x3F)]
                default:
                    break
                }
                return length
            }
        }
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
