import Crypto
import Foundation
import QRLoginOAuth
#if os(Linux)
import Glibc
#endif

/// Random identifiers, prefixed secrets and their hashes. Everything comes from the system
/// CSPRNG; secrets are stored only as their SHA-256.
public enum Secrets {
    /// Prefix of access tokens.
    public static let accessTokenPrefix = "qrl_at_"
    /// Prefix of poll secrets.
    public static let pollSecretPrefix = "qrl_ps_"
    /// Prefix of scan tickets.
    public static let scanTicketPrefix = "qrl_st_"

    /// `count` random bytes from the system CSPRNG. On Linux `getentropy` fills up to 256 of
    /// them with one system call (Swift's generator makes one per eight bytes: six per login
    /// request).
    public static func randomBytes(_ count: Int) -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: count)
        #if os(Linux)
        var filled = 0
        while filled < count {
            let chunk = min(count - filled, 256)
            let result = bytes.withUnsafeMutableBytes { getentropy($0.baseAddress! + filled, chunk) }
            guard result == 0 else { fatalError("getentropy failed: errno \(errno)") }
            filled += chunk
        }
        #else
        var generator = SystemRandomNumberGenerator()
        for index in bytes.indices { bytes[index] = generator.next() }
        #endif
        return bytes
    }

    /// A public identifier: 128 random bits, base64url (22 characters).
    public static func publicId() -> String {
        Base64URL.encode(randomBytes(16))
    }

    /// A secret: `prefix` followed by 256 random bits in base64url (43 characters).
    public static func secret(prefix: String) -> String {
        prefix + Base64URL.encode(randomBytes(32))
    }

    /// SHA-256 of `value`'s UTF-8 bytes, base64url: how secrets are stored and compared.
    public static func hash(_ value: String) -> String {
        Base64URL.encode(SHA256.hash(data: Data(value.utf8)))
    }

    /// A uniformly random integer in `range` from the CSPRNG.
    public static func randomInt(in range: ClosedRange<Int>) -> Int {
        var generator = SystemRandomNumberGenerator()
        return Int.random(in: range, using: &generator)
    }

    /// Three distinct two-digit numbers in random order, and the one the PC will show. All
    /// draws come from one fill of random bytes (one system call, not one per draw).
    public static func matchChoices() -> (match: Int, choices: [Int]) {
        var generator = BufferedRandom()
        var choices: [Int] = []
        while choices.count < 3 {
            let candidate = Int.random(in: 10...99, using: &generator)
            if !choices.contains(candidate) { choices.append(candidate) }
        }
        return (choices[Int.random(in: 0...2, using: &generator)], choices)
    }

    /// The system CSPRNG (``randomBytes(_:)``), 64 bytes at a time.
    struct BufferedRandom: RandomNumberGenerator {
        private var buffer: [UInt8] = []
        private var offset = 0

        mutating func next() -> UInt64 {
            if offset + 8 > buffer.count {
                buffer = Secrets.randomBytes(64)
                offset = 0
            }
            defer { offset += 8 }
            return buffer.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: offset, as: UInt64.self) }
        }
    }

    /// Compares two strings in time that depends only on their lengths (one implementation,
    /// in the lower OAuth target, which compares client secrets with it too).
    public static func constantTimeEquals(_ a: String, _ b: String) -> Bool {
        ClientSecret.constantTimeEquals(a, b)
    }
}
