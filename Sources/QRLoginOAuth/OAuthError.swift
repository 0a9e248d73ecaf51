/// An OAuth 2.0 error as the token, device authorization, introspection and revocation
/// endpoints report it (RFC 6749 §5.2, RFC 8628 §3.5, RFC 9449 §5 and §8, RFC 7009 §2.2.1).
/// The server maps the code to an HTTP status in one place; no case carries a secret.
public struct OAuthError: Error, Sendable, Equatable {
    /// The registered error code, e.g. `invalid_grant`.
    public var code: Code
    /// A human-readable explanation (`error_description`): ASCII, no secrets.
    public var description: String

    /// Creates an error with its description.
    public init(_ code: Code, _ description: String) {
        self.code = code
        self.description = description
    }

    /// The error codes this server answers with.
    public enum Code: String, Sendable, Equatable {
        case invalidRequest = "invalid_request"
        case invalidClient = "invalid_client"
        case invalidGrant = "invalid_grant"
        case unauthorizedClient = "unauthorized_client"
        case unsupportedGrantType = "unsupported_grant_type"
        case invalidScope = "invalid_scope"
        case authorizationPending = "authorization_pending"
        case slowDown = "slow_down"
        case accessDenied = "access_denied"
        case expiredToken = "expired_token"
        case invalidDPoPProof = "invalid_dpop_proof"
        case useDPoPNonce = "use_dpop_nonce"
        case unsupportedTokenType = "unsupported_token_type"
        case unsupportedResponseType = "unsupported_response_type"
        case loginRequired = "login_required"
        case consentRequired = "consent_required"
        case requestNotSupported = "request_not_supported"
        case requestURINotSupported = "request_uri_not_supported"
    }

    /// `invalid_request` with a description.
    public static func invalidRequest(_ description: String) -> OAuthError { OAuthError(.invalidRequest, description) }
    /// `invalid_grant` with a description.
    public static func invalidGrant(_ description: String) -> OAuthError { OAuthError(.invalidGrant, description) }
    /// `invalid_client` with a description.
    public static func invalidClient(_ description: String) -> OAuthError { OAuthError(.invalidClient, description) }
    /// `invalid_scope` with a description.
    public static func invalidScope(_ description: String) -> OAuthError { OAuthError(.invalidScope, description) }
}
