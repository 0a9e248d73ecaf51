import Foundation

/// The `prompt` values of OpenID Connect Core §3.1.2.1.
public enum Prompt: String, Codable, Sendable, CaseIterable {
    case none, login, consent
    case selectAccount = "select_account"
}

/// A checked authorization request (RFC 6749 §4.1.1, OpenID Connect Core §3.1.2.1, RFC 7636,
/// RFC 9449 §10): the authorization code flow only.
public struct AuthorizationRequest: Codable, Sendable, Equatable {
    public var clientId: String
    /// Exactly one of the client's registered redirect URIs.
    public var redirectURI: String
    /// The scopes asked for; always with `openid`.
    public var scopes: [String]
    public var state: String?
    public var nonce: String?
    /// The PKCE S256 challenge; required for public clients.
    public var codeChallenge: String?
    public var prompt: [Prompt]
    /// `max_age` in seconds: a session older than this must log in again.
    public var maxAge: Int?
    public var loginHint: String?
    /// `dpop_jkt`: the thumbprint of the key the code is bound to.
    public var dpopJKT: String?
}

/// Why an authorization request is refused, and whether the answer may go to the redirect URI.
public enum AuthorizationRequestError: Error, Sendable, Equatable {
    /// The client or redirect URI is missing, unknown or does not match: never redirect (an
    /// open redirector otherwise); show the message on an error page.
    case noRedirect(String)
    /// Send `error` to the (checked) redirect URI with `state` and `iss` (RFC 6749 §4.1.2.1).
    case redirect(OAuthError, redirectURI: String, state: String?)
}

/// The rules of an authorization request, in the order RFC 6749 §4.1.2.1 sets: first the
/// client and redirect URI (errors shown to the user), then everything else (errors sent back).
public enum AuthorizationRequestRules {
    /// Longest value accepted for free-text parameters (`state`, `nonce`, `login_hint`).
    public static let maxParameterLength = 512

    /// Checks `parameters` (single-valued: a repeated parameter must already be refused) for
    /// `client`, the client `client_id` names (nil when unknown).
    /// - Throws: ``AuthorizationRequestError``.
    /// `pushed` says the parameters came from a pushed request (RFC 9126); a client that must
    /// push gets `invalid_request` otherwise.
    public static func check(_ parameters: [String: String], client: OAuthClient?, pushed: Bool = false) throws(AuthorizationRequestError) -> AuthorizationRequest {
        func value(_ name: String) -> String? { parameters[name].flatMap { $0.isEmpty ? nil : $0 } }
        guard let clientId = value("client_id") else { throw .noRedirect("The request names no client (client_id is missing).") }
        guard let client, client.id == clientId else { throw .noRedirect("No application is registered as \"\(clientId.prefix(64))\".") }
        guard let redirectURI = value("redirect_uri") else { throw .noRedirect("The request has no redirect_uri.") }
        guard client.redirectURIs.contains(redirectURI) else {
            throw .noRedirect("The redirect_uri is not one that \(client.name) registered.")
        }
        let state = value("state")
        func fail(_ code: OAuthError.Code, _ description: String) -> AuthorizationRequestError {
            .redirect(OAuthError(code, description), redirectURI: redirectURI, state: state)
        }
        if let state, state.utf8.count > maxParameterLength { throw .redirect(.invalidRequest("state is too long"), redirectURI: redirectURI, state: nil) }
        guard let responseType = value("response_type") else { throw fail(.invalidRequest, "response_type is missing") }
        guard responseType == "code" else { throw fail(.unsupportedResponseType, "only response_type=code is supported") }
        guard client.grantTypes.contains(.authorizationCode) else {
            throw fail(.unauthorizedClient, "this client may not use the authorization code flow")
        }
        let scopes: [String]
        do { scopes = try Scope.parse(value("scope")) } catch { throw fail(error.code, error.description) }
        guard scopes.contains("openid") else { throw fail(.invalidScope, "scope must contain openid") }
        do { try client.checkScopes(scopes) } catch { throw fail(error.code, error.description) }
        if let mode = value("response_mode"), mode != "query" { throw fail(.invalidRequest, "only response_mode=query is supported") }
        if value("request") != nil { throw fail(.requestNotSupported, "request objects are not supported") }
        if value("request_uri") != nil { throw fail(.invalidRequest, "request_uri cannot be inside a request") }
        if client.requirePAR, !pushed { throw fail(.invalidRequest, "this client must push its authorization requests (RFC 9126)") }

        let challenge = value("code_challenge")
        if let challenge {
            guard value("code_challenge_method") == "S256" else { throw fail(.invalidRequest, "code_challenge_method must be S256") }
            guard PKCE.isValidChallenge(challenge) else { throw fail(.invalidRequest, "code_challenge must be 43 base64url characters") }
        } else if value("code_challenge_method") != nil {
            throw fail(.invalidRequest, "code_challenge_method without code_challenge")
        } else if client.type == .public {
            throw fail(.invalidRequest, "a public client must use PKCE (code_challenge with S256)")
        }

        var prompt: [Prompt] = []
        for name in (value("prompt") ?? "").split(separator: " ") {
            guard let entry = Prompt(rawValue: String(name)) else { throw fail(.invalidRequest, "unknown prompt value '\(name.prefix(32))'") }
            if !prompt.contains(entry) { prompt.append(entry) }
        }
        if prompt.contains(.none), prompt.count > 1 { throw fail(.invalidRequest, "prompt=none cannot be combined with other values") }
        var maxAge: Int?
        if let text = value("max_age") {
            guard let seconds = Int(text), seconds >= 0, text.utf8.allSatisfy({ (0x30...0x39).contains($0) }) else {
                throw fail(.invalidRequest, "max_age must be a whole number of seconds")
            }
            maxAge = seconds
        }
        for name in ["nonce", "login_hint"] where (value(name)?.utf8.count ?? 0) > maxParameterLength {
            throw fail(.invalidRequest, "\(name) is too long")
        }
        let jkt = value("dpop_jkt")
        if let jkt, !PKCE.isValidChallenge(jkt) { throw fail(.invalidRequest, "dpop_jkt must be a base64url SHA-256 thumbprint") }
        return AuthorizationRequest(
            clientId: clientId, redirectURI: redirectURI, scopes: scopes, state: state, nonce: value("nonce"),
            codeChallenge: challenge, prompt: prompt, maxAge: maxAge, loginHint: value("login_hint"), dpopJKT: jkt
        )
    }
}

/// RFC 7636 PKCE with S256 only.
public enum PKCE {
    /// Whether `text` looks like a base64url SHA-256: 43 characters of the base64url alphabet.
    public static func isValidChallenge(_ text: String) -> Bool {
        text.utf8.count == 43 && text.utf8.allSatisfy(isBase64URL)
    }

    /// Whether `verifier` (43 to 128 characters of `[A-Za-z0-9-._~]`, §4.1) hashes to `challenge`.
    public static func verify(_ verifier: String, challenge: String) -> Bool {
        let bytes = verifier.utf8
        guard (43...128).contains(bytes.count), bytes.allSatisfy({ isBase64URL($0) || $0 == UInt8(ascii: ".") || $0 == UInt8(ascii: "~") }) else {
            return false
        }
        return ClientSecret.constantTimeEquals(ClientSecret.hash(verifier), challenge)
    }

    static func isBase64URL(_ byte: UInt8) -> Bool {
        (0x30...0x39).contains(byte) || (0x41...0x5A).contains(byte) || (0x61...0x7A).contains(byte)
            || byte == UInt8(ascii: "-") || byte == UInt8(ascii: "_")
    }
}

/// The app a browser signs in to when a QR login runs as an OpenID Connect login screen: the
/// phone names it and what it asks for.
public struct AppSignIn: Codable, Sendable, Equatable {
    /// The client the browser is signing in to.
    public var clientId: String
    /// The scopes it asks for.
    public var scopes: [String]

    /// Names the app and its scopes.
    public init(clientId: String, scopes: [String]) {
        self.clientId = clientId
        self.scopes = scopes
    }
}

/// An authorization request pushed by its client (RFC 9126), found again by its `request_uri`.
public struct PushedRequest: Codable, Sendable, Equatable {
    /// `urn:ietf:params:oauth:request_uri:` and 128 random bits.
    public var requestURI: String
    /// The client that pushed it (and authenticated doing so).
    public var clientId: String
    /// The request's parameters, form-encoded, as they were pushed and checked.
    public var query: String
    public var expiresAt: Date

    /// Creates a pushed request record.
    public init(requestURI: String, clientId: String, query: String, expiresAt: Date) {
        self.requestURI = requestURI
        self.clientId = clientId
        self.query = query
        self.expiresAt = expiresAt
    }
}
