/// RFC 6749 §2.1 client types.
public enum ClientType: String, Codable, Sendable, CaseIterable {
    /// Cannot keep a secret (a CLI, a native or single-page app): identified by its id only.
    case `public`
    /// Holds a secret and authenticates with it.
    case confidential
}

/// The grant types a client may be allowed to use.
public enum GrantType: String, Codable, Sendable, CaseIterable {
    /// RFC 8628 device authorization grant.
    case deviceCode = "urn:ietf:params:oauth:grant-type:device_code"
    /// RFC 6749 §6 refresh.
    case refreshToken = "refresh_token"
    /// RFC 6749 §4.1 authorization code (OpenID Connect sign-in for web apps).
    case authorizationCode = "authorization_code"

    /// The short name used on the command line and in client files (`device_code`, …).
    public var shortName: String {
        switch self {
        case .deviceCode: "device_code"
        case .refreshToken: "refresh_token"
        case .authorizationCode: "authorization_code"
        }
    }

    /// Parses a grant type by its URI or its short name.
    public init?(name: String) {
        guard let type = GrantType(rawValue: name) ?? GrantType.allCases.first(where: { $0.shortName == name }) else { return nil }
        self = type
    }
}

/// RFC 8414 / RFC 7591 client authentication methods at the token endpoint.
public enum ClientAuthMethod: String, Codable, Sendable, CaseIterable {
    case none
    case clientSecretBasic = "client_secret_basic"
    case clientSecretPost = "client_secret_post"
}
