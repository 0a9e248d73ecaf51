import Crypto
import Foundation

/// RFC 8628 user codes: 8 characters from 20 consonants (no vowels, so no words are spelled;
/// no lookalikes such as 0/O or 1/I), shown as `XXXX-XXXX`. 20^8 ≈ 2^34.6 codes.
public enum UserCode {
    /// The alphabet (RFC 8628 §6.1's example).
    public static let alphabet = Array("BCDFGHJKLMNPQRSTVWXZ")
    /// Characters in a code, without the dash.
    public static let length = 8

    /// A new random code, normalised (no dash).
    public static func generate() -> String {
        var generator = SystemRandomNumberGenerator()
        return String((0..<length).map { _ in alphabet.randomElement(using: &generator)! })
    }

    /// `count` distinct codes other than `code`, to offer beside it on the phone.
    public static func decoys(for code: String, count: Int = 2) -> [String] {
        var decoys: [String] = []
        while decoys.count < count {
            let candidate = generate()
            if candidate != code, !decoys.contains(candidate) { decoys.append(candidate) }
        }
        return decoys
    }

    /// `XXXX-XXXX` for a normalised code.
    public static func display(_ code: String) -> String {
        guard code.count == length else { return code }
        return String(code.prefix(4)) + "-" + String(code.suffix(4))
    }

    /// The normalised form of what a user typed: dashes and spaces dropped, upper case. Nil if
    /// the result is not 8 characters of the alphabet.
    public static func normalize(_ typed: String) -> String? {
        guard typed.utf8.count <= 64 else { return nil }
        let code = String(typed.uppercased().filter { $0 != "-" && $0 != " " })
        guard code.count == length, code.allSatisfy(alphabet.contains) else { return nil }
        return code
    }
}
