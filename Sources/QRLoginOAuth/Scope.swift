/// OAuth scopes (RFC 6749 §3.3): space-delimited, case-sensitive tokens of printable ASCII
/// other than space, `"` and `\`.
public enum Scope {
    /// The scopes every client may ask for, with what the phone shows for each.
    public static let standard: [(name: String, description: String)] = [
        ("openid", "Sign you in with your QRLogin account"),
        ("profile", "See your name and username"),
        ("phone", "See your phone number"),
        ("offline_access", "Stay signed in when you are not using it"),
    ]

    /// The scope that makes a grant come with a refresh token.
    public static let offlineAccess = "offline_access"

    /// The longest scope parameter accepted, in bytes.
    public static let maxLength = 1024

    /// Parses a scope parameter into its tokens, in order, without duplicates. Nil or an empty
    /// parameter gives an empty list.
    /// - Throws: `invalid_scope` for a malformed parameter.
    public static func parse(_ value: String?) throws(OAuthError) -> [String] {
        guard let value, !value.isEmpty else { return [] }
        guard value.utf8.count <= maxLength else { throw .invalidScope("scope is longer than \(maxLength) bytes") }
        var result: [String] = []
        for token in value.split(separator: " ", omittingEmptySubsequences: false) {
            guard !token.isEmpty else { throw .invalidScope("scope tokens are separated by single spaces") }
            guard token.utf8.allSatisfy(isScopeCharacter) else {
                throw .invalidScope("scope tokens are printable ASCII without '\"' or '\\'")
            }
            let name = String(token)
            if !result.contains(name) { result.append(name) }
        }
        return result
    }

    /// A scope token's characters: %x21 / %x23-5B / %x5D-7E.
    public static func isScopeCharacter(_ byte: UInt8) -> Bool {
        byte == 0x21 || (0x23...0x5B).contains(byte) || (0x5D...0x7E).contains(byte)
    }

    /// What the phone shows for `name`: the standard wording, or the name itself.
    public static func describe(_ name: String) -> String {
        standard.first { $0.name == name }?.description ?? name
    }

    /// The scope parameter for `tokens`.
    public static func format(_ tokens: [String]) -> String {
        tokens.joined(separator: " ")
    }
}
