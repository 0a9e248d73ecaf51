import Foundation

/// Rules for what a client record may hold, checked before anything is stored.
public enum ClientRules {
    /// The longest client id.
    public static let maxIdLength = 64
    /// The longest client name (shown on the phone).
    public static let maxNameLength = 64

    /// Whether `id` is a valid client id: 1 to 64 of letters, digits, `.`, `_`, `-`.
    public static func isValidId(_ id: String) -> Bool {
        !id.isEmpty && id.utf8.count <= maxIdLength
            && id.utf8.allSatisfy { byte in
                (0x30...0x39).contains(byte) || (0x41...0x5A).contains(byte) || (0x61...0x7A).contains(byte)
                    || byte == UInt8(ascii: ".") || byte == UInt8(ascii: "_") || byte == UInt8(ascii: "-")
            }
    }

    /// Checks every field of `client`.
    /// - Throws: `invalid_request` naming the field that breaks a rule.
    public static func validate(_ client: OAuthClient) throws(OAuthError) {
        guard isValidId(client.id) else {
            throw .invalidRequest("client id must be 1 to \(maxIdLength) letters, digits, '.', '_' or '-'")
        }
        let name = client.name
        guard !name.isEmpty, name.count <= maxNameLength, name == name.trimmingCharacters(in: .whitespacesAndNewlines),
              !name.unicodeScalars.contains(where: { CharacterSet.controlCharacters.contains($0) })
        else { throw .invalidRequest("client name must be 1 to \(maxNameLength) characters, no control characters") }
        switch client.type {
        case .public:
            guard client.secretHash == nil else { throw .invalidRequest("a public client has no secret") }
        case .confidential:
            guard client.secretHash != nil else { throw .invalidRequest("a confidential client needs a secret") }
        }
        for uri in client.redirectURIs {
            guard let url = URL(string: uri), let scheme = url.scheme?.lowercased(), url.host != nil || scheme != "https" && scheme != "http",
                  url.fragment == nil, uri.utf8.count <= 2048
            else { throw .invalidRequest("redirect URI '\(uri)' must be an absolute URI without a fragment") }
        }
        for uri in client.postLogoutRedirectURIs {
            guard let url = URL(string: uri), url.scheme != nil, url.fragment == nil, uri.utf8.count <= 2048 else {
                throw .invalidRequest("post-logout redirect URI '\(uri)' must be an absolute URI without a fragment")
            }
        }
        if client.grantTypes.contains(.authorizationCode), client.redirectURIs.isEmpty {
            throw .invalidRequest("the authorization_code grant needs at least one redirect URI")
        }
        for scope in client.scopes {
            guard !scope.isEmpty, scope.utf8.allSatisfy(Scope.isScopeCharacter) else {
                throw .invalidRequest("scope '\(scope)' must be printable ASCII without spaces, '\"' or '\\'")
            }
        }
    }
}
