import Foundation

/// A client as JSON: what `qrlogin clients … --json` prints and what a client file
/// (`--client-file`, `QRLOGIN_CLIENTS`) holds, so the output of one can become the other.
///
/// ```json
/// {"clients": [{"id": "billing-cli", "name": "Billing CLI", "type": "public",
///   "grantTypes": ["device_code", "refresh_token"], "scopes": ["billing:read"],
///   "dpopBoundAccessTokens": true}]}
/// ```
/// A confidential client gives `secretSHA256` (base64url SHA-256 of the secret, as printed by
/// `clients show --json`) or, less safely, the `secret` itself.
public struct ClientDocument: Codable, Sendable, Equatable {
    public var id: String
    public var name: String
    public var type: ClientType
    public var secret: String?
    public var secretSHA256: String?
    public var redirectURIs: [String]?
    public var grantTypes: [String]
    public var scopes: [String]?
    public var dpopBoundAccessTokens: Bool?
    public var idTokenSignedResponseAlg: SigningAlgorithm?
    public var postLogoutRedirectURIs: [String]?
    public var requirePushedAuthorizationRequests: Bool?
    public var createdAt: Date?

    /// A document with every field given.
    public init(id: String, name: String, type: ClientType, secret: String? = nil, secretSHA256: String? = nil, redirectURIs: [String]? = nil, grantTypes: [String], scopes: [String]? = nil, dpopBoundAccessTokens: Bool? = nil, idTokenSignedResponseAlg: SigningAlgorithm? = nil, postLogoutRedirectURIs: [String]? = nil, requirePushedAuthorizationRequests: Bool? = nil, createdAt: Date? = nil) {
        self.requirePushedAuthorizationRequests = requirePushedAuthorizationRequests
        self.postLogoutRedirectURIs = postLogoutRedirectURIs
        self.idTokenSignedResponseAlg = idTokenSignedResponseAlg
        self.id = id
        self.name = name
        self.type = type
        self.secret = secret
        self.secretSHA256 = secretSHA256
        self.redirectURIs = redirectURIs
        self.grantTypes = grantTypes
        self.scopes = scopes
        self.dpopBoundAccessTokens = dpopBoundAccessTokens
        self.createdAt = createdAt
    }

    /// The document of a stored client (never with a secret, only its hash).
    public init(_ client: OAuthClient) {
        id = client.id
        name = client.name
        type = client.type
        secretSHA256 = client.secretHash
        redirectURIs = client.redirectURIs
        grantTypes = client.grantTypes.map(\.shortName)
        scopes = client.scopes
        dpopBoundAccessTokens = client.requireDPoP
        idTokenSignedResponseAlg = client.idTokenAlgorithm
        postLogoutRedirectURIs = client.postLogoutRedirectURIs
        requirePushedAuthorizationRequests = client.requirePAR
        createdAt = client.createdAt
    }

    /// The client this document describes, checked by ``ClientRules``.
    /// - Throws: `invalid_request` naming what is wrong.
    public func client(createdAt now: Date) throws(OAuthError) -> OAuthClient {
        var grants: [GrantType] = []
        for name in grantTypes {
            guard let grant = GrantType(name: name) else {
                throw .invalidRequest("client '\(id)': unknown grant type '\(name)' (use device_code, refresh_token or authorization_code)")
            }
            if !grants.contains(grant) { grants.append(grant) }
        }
        if secret != nil, secretSHA256 != nil { throw .invalidRequest("client '\(id)': give secret or secretSHA256, not both") }
        // A secret is stored as a plain SHA-256, which only a high-entropy secret makes safe.
        if let secret, secret.utf8.count < 32 { throw .invalidRequest("client '\(id)': a secret must have at least 32 characters (qrlogin clients add makes 256-bit ones)") }
        if let hash = secretSHA256, hash.utf8.count != 43 || Data(base64URL: hash)?.count != 32 {
            throw .invalidRequest("client '\(id)': secretSHA256 must be a base64url SHA-256 (43 characters)")
        }
        let client = OAuthClient(
            id: id, name: name, type: type, secretHash: secretSHA256 ?? secret.map(ClientSecret.hash),
            redirectURIs: redirectURIs ?? [], grantTypes: grants, scopes: scopes ?? [],
            requireDPoP: dpopBoundAccessTokens ?? false, idTokenAlgorithm: idTokenSignedResponseAlg ?? .es256,
            postLogoutRedirectURIs: postLogoutRedirectURIs ?? [], requirePAR: requirePushedAuthorizationRequests ?? false,
            createdAt: createdAt ?? now
        )
        do {
            try ClientRules.validate(client)
        } catch {
            throw .invalidRequest("client '\(id)': \(error.description)")
        }
        return client
    }
}

/// The whole of a client file.
public struct ClientFileDocument: Codable, Sendable {
    public var clients: [ClientDocument]

    public init(clients: [ClientDocument]) {
        self.clients = clients
    }
}

extension Data {
    /// Decodes unpadded base64url.
    init?(base64URL text: String) {
        var base64 = text.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        while base64.utf8.count % 4 != 0 { base64.append("=") }
        self.init(base64Encoded: base64)
    }
}
