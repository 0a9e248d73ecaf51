import Foundation
import QRLoginCore
import QRLoginOAuth

extension SQLiteStore {
    // MARK: Clients

    /// Inserts `client`, or replaces the client with its id.
    public func upsertClient(_ client: OAuthClient) async throws {
        let redirects = String(decoding: try JSONEncoder().encode(client.redirectURIs), as: UTF8.self)
        let logoutRedirects = String(decoding: try JSONEncoder().encode(client.postLogoutRedirectURIs), as: UTF8.self)
        try exclusively { connection in
            clientCache.clear()
            try connection.execute(
                """
                INSERT INTO oauth_clients (id, name, type, secret_hash, redirect_uris, grant_types, scopes, require_dpop, id_token_alg,
                    post_logout_redirect_uris, require_par, created_at)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                ON CONFLICT (id) DO UPDATE SET
                    name = excluded.name, type = excluded.type, secret_hash = excluded.secret_hash,
                    redirect_uris = excluded.redirect_uris, grant_types = excluded.grant_types, scopes = excluded.scopes,
                    require_dpop = excluded.require_dpop, id_token_alg = excluded.id_token_alg,
                    post_logout_redirect_uris = excluded.post_logout_redirect_uris, require_par = excluded.require_par,
                    created_at = excluded.created_at
                """,
                [.text(client.id), .text(client.name), .text(client.type.rawValue), client.secretHash.sqlite, .text(redirects),
                 .text(client.grantTypes.map(\.rawValue).joined(separator: " ")), .text(Scope.format(client.scopes)),
                 (client.requireDPoP ? 1 : 0).sqlite, .text(client.idTokenAlgorithm.rawValue), .text(logoutRedirects),
                 (client.requirePAR ? 1 : 0).sqlite, client.createdAt.sqlite]
            )
        }
    }

    /// The client `id`, if registered.
    ///
    /// Every OAuth request reads its client, so registered clients are kept in memory. The copy
    /// is dropped when this store changes a client, and when any other connection (`qrlogin
    /// clients` in another process) has committed to the database since the last look:
    /// `PRAGMA data_version` moves only for other connections' commits, so a change made by the
    /// CLI is seen by the next request, as without the cache.
    public func client(id: String) async throws -> OAuthClient? {
        try exclusively { connection in
            let version = try connection.queryFirst("PRAGMA data_version") { try $0.int("data_version") }
            if let cached = clientCache.client(id: id, dataVersion: version) { return cached }
            let client = try connection.queryFirst("SELECT * FROM oauth_clients WHERE id = ?", [.text(id)], Self.client(from:))
            if let client { clientCache.keep(client, dataVersion: version) }
            return client
        }
    }

    /// Every client, by id.
    public func clients() async throws -> [OAuthClient] {
        try exclusively { connection in
            try connection.query("SELECT * FROM oauth_clients ORDER BY id", [], Self.client(from:))
        }
    }

    /// Removes client `id` and revokes its live families, in one transaction.
    public func removeClient(id: String, at date: Date) async throws -> Bool {
        try transaction { connection in
            clientCache.clear()
            try connection.execute(
                "UPDATE token_families SET revoked_at = ? WHERE client_id = ? AND revoked_at IS NULL", [date.sqlite, .text(id)]
            )
            return !(try connection.query("DELETE FROM oauth_clients WHERE id = ? RETURNING id", [.text(id)]) { _ in true }).isEmpty
        }
    }

    private static func client(from row: SQLiteRow) throws -> OAuthClient {
        guard let redirects = try? JSONDecoder().decode([String].self, from: Data(try row.text("redirect_uris").utf8)) else {
            throw SQLiteStoreError.malformedRow(column: "redirect_uris")
        }
        guard let logoutRedirects = try? JSONDecoder().decode([String].self, from: Data(try row.text("post_logout_redirect_uris").utf8)) else {
            throw SQLiteStoreError.malformedRow(column: "post_logout_redirect_uris")
        }
        let grants = try row.text("grant_types").split(separator: " ").map { name in
            guard let grant = GrantType(rawValue: String(name)) else { throw SQLiteStoreError.malformedRow(column: "grant_types") }
            return grant
        }
        return OAuthClient(
            id: try row.text("id"), name: try row.text("name"), type: try row.enumValue("type"),
            secretHash: try row.optionalText("secret_hash"), redirectURIs: redirects, grantTypes: grants,
            scopes: scopes(try row.text("scopes")), requireDPoP: try row.int("require_dpop") != 0,
            idTokenAlgorithm: try row.enumValue("id_token_alg"), postLogoutRedirectURIs: logoutRedirects,
            requirePAR: try row.int("require_par") != 0, createdAt: try row.date("created_at")
        )
    }

    // MARK: Tokens

    /// Inserts a new family and its first tokens; shared with device-grant redemptions, which
    /// write them inside their own transaction.
    static func insert(_ grant: IssuedGrant, on connection: SQLiteConnection) throws {
        let family = grant.family
        try connection.execute(
            """
            INSERT INTO token_families (id, client_id, account_id, scopes, refresh_jkt, origin, created_at, expires_at, revoked_at)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
            """,
            [.text(family.id), .text(family.clientId), .text(family.accountId), .text(Scope.format(family.scopes)),
             family.refreshJKT.sqlite, .text(family.origin.rawValue), family.createdAt.sqlite, family.expiresAt.sqlite,
             family.revokedAt.sqlite]
        )
        for token in grant.tokens { try insert(token, on: connection) }
    }

    private static func insert(_ token: OAuthToken, on connection: SQLiteConnection) throws {
        try connection.execute(
            """
            INSERT INTO oauth_tokens (family_id, hash, id, kind, scopes, jkt, created_at, expires_at, used_at, revoked_at)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
            """,
            [.text(token.familyId), .text(token.hash), .text(token.id), .text(token.kind.rawValue), .text(Scope.format(token.scopes)),
             token.jkt.sqlite, token.createdAt.sqlite, token.expiresAt.sqlite, token.usedAt.sqlite, token.revokedAt.sqlite]
        )
    }

    /// Families whose expired tokens one cleanup transaction deletes.
    static let cleanupFamilies = 256

    /// The statements on one of the two token tables. `oauth_tokens` keeps each family's tokens
    /// together and finds one by its family and hash; `oauth_tokens_v1` holds the tokens issued
    /// before tokens named their family, found by hash alone until they expire. Every statement
    /// takes the same three binds: `?1` the time it writes (none for the lookup: bind null),
    /// `?2` the family, `?3` the hash.
    struct TokenStatements {
        /// The token with its family (the username comes from ``UsernameCache``).
        let lookup: String
        let markUsed: String
        let revoke: String

        private init(table: String, key: String) {
            lookup = """
                SELECT t.hash, t.id, t.kind, t.family_id, t.scopes, t.jkt, t.created_at, t.expires_at, t.used_at, t.revoked_at,
                       f.client_id AS f_client_id, f.account_id AS f_account_id, f.scopes AS f_scopes, f.refresh_jkt AS f_refresh_jkt,
                       f.origin AS f_origin, f.created_at AS f_created_at, f.expires_at AS f_expires_at, f.revoked_at AS f_revoked_at
                FROM \(table) t JOIN token_families f ON f.id = t.family_id
                WHERE \(key)
                """
            // Conditional on the token being unused: a second writer outside this store (another
            // process on the file) cannot make two rotations of one token.
            markUsed = "UPDATE \(table) SET used_at = ?1 WHERE \(key) AND used_at IS NULL RETURNING hash"
            revoke = "UPDATE \(table) SET revoked_at = ?1 WHERE \(key) AND revoked_at IS NULL"
        }

        static let byFamily = TokenStatements(table: "oauth_tokens", key: "family_id = ?2 AND hash = ?3")
        static let v1 = TokenStatements(table: "oauth_tokens_v1", key: "hash = ?3 AND ?2 IS NULL")

        /// Where a token of `family` (nil: it names none) is.
        static func `for`(family: String?) -> TokenStatements { family == nil ? v1 : byFamily }
    }

    /// The token with its family, in one query, and its account's username, which never
    /// changes, from memory once read.
    public func oauthToken(hash: String, family: String?) async throws -> OAuthTokenLookup? {
        try exclusively { connection in
            guard let (token, family) = try Self.token(hash: hash, family: family, on: connection) else { return nil }
            if let username = usernames.username(of: family.accountId) {
                return OAuthTokenLookup(token: token, family: family, username: username)
            }
            guard let account = try Self.account(id: family.accountId, on: connection) else { return nil }
            usernames.keep(account.username, of: account.id)
            return OAuthTokenLookup(token: token, family: family, username: account.username)
        }
    }

    /// The token with its family.
    private static func token(hash: String, family: String?, on connection: SQLiteConnection) throws -> (OAuthToken, TokenFamily)? {
        try connection.queryFirst(TokenStatements.for(family: family).lookup, [.null, family.sqlite, .text(hash)]) { row in
            try tokenAndFamily(from: row)
        }
    }

    private static func tokenAndFamily(from row: SQLiteRow) throws -> (OAuthToken, TokenFamily) {
        let token = OAuthToken(
            id: try row.text("id"), kind: try row.enumValue("kind"), hash: try row.text("hash"), familyId: try row.text("family_id"),
            scopes: scopes(try row.text("scopes")), jkt: try row.optionalText("jkt"), createdAt: try row.date("created_at"),
            expiresAt: try row.date("expires_at"), usedAt: try row.optionalDate("used_at"), revokedAt: try row.optionalDate("revoked_at")
        )
        let family = TokenFamily(
            id: token.familyId, clientId: try row.text("f_client_id"), accountId: try row.text("f_account_id"),
            scopes: scopes(try row.text("f_scopes")), refreshJKT: try row.optionalText("f_refresh_jkt"),
            origin: try row.enumValue("f_origin"), createdAt: try row.date("f_created_at"),
            expiresAt: try row.date("f_expires_at"), revokedAt: try row.optionalDate("f_revoked_at")
        )
        return (token, family)
    }

    /// Records `proof` in the replay table, then reads, decides and writes the refresh, all in
    /// one transaction: one commit per refresh. A refused refresh commits the proof alone.
    public func useRefreshToken(
        hash: String, family: String?, at now: Date, recording proof: ProofRecord?,
        _ decide: @Sendable (OAuthToken, TokenFamily) throws -> RefreshDecision
    ) async throws -> RefreshDecision? {
        try transaction { connection -> Result<RefreshDecision?, any Error> in
            if let proof, try !Self.insertReplayKey(proof.key, expiresAt: proof.expiresAt, now: proof.now, on: connection) {
                throw QRLoginError.replayedProof
            }
            guard let (token, tokenFamily) = try Self.token(hash: hash, family: family, on: connection), token.kind == .refresh else {
                return .success(nil)
            }
            let decision: RefreshDecision
            do {
                decision = try decide(token, tokenFamily)
            } catch {
                // Nothing of the refresh is written yet: the commit keeps the proof's record only.
                return .failure(error)
            }
            switch decision {
            case .rotate(let tokens, let expiresAt):
                let marked = try connection.query(
                    TokenStatements.for(family: family).markUsed, [now.sqlite, family.sqlite, .text(hash)]
                ) { _ in true }
                guard !marked.isEmpty else { throw SQLiteStoreError.concurrentModification(requestId: token.id) }
                for new in tokens { try Self.insert(new, on: connection) }
                if let expiresAt {
                    try connection.execute("UPDATE token_families SET expires_at = ? WHERE id = ?", [expiresAt.sqlite, .text(tokenFamily.id)])
                }
            case .revokeFamily:
                try connection.execute(
                    "UPDATE token_families SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL", [now.sqlite, .text(tokenFamily.id)]
                )
            }
            return .success(decision)
        }.get()
    }

    /// Revokes an access token, or a refresh token's family, of `clientId`.
    public func revokeOAuthToken(hash: String, family: String?, clientId: String, at date: Date) async throws -> OAuthRevocation {
        try transaction { connection in
            guard let (token, tokenFamily) = try Self.token(hash: hash, family: family, on: connection) else { return .unknown }
            guard tokenFamily.clientId == clientId else { return .otherClient }
            switch token.kind {
            case .access:
                try connection.execute(TokenStatements.for(family: family).revoke, [date.sqlite, family.sqlite, .text(hash)])
                return .accessToken
            case .refresh:
                try connection.execute(
                    "UPDATE token_families SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL", [date.sqlite, .text(tokenFamily.id)]
                )
                return .family
            }
        }
    }

    /// The families of `accountId` that hold a working token, oldest first, each with the
    /// expiry of its last working token.
    public func tokenFamilies(accountId: String, at now: Date) async throws -> [TokenFamily] {
        try exclusively { connection in
            try connection.query(
                """
                SELECT * FROM (
                    SELECT f.*, max(
                        coalesce((SELECT max(t.expires_at) FROM oauth_tokens t
                                  WHERE t.family_id = f.id AND t.used_at IS NULL AND t.revoked_at IS NULL), 0),
                        coalesce((SELECT max(t.expires_at) FROM oauth_tokens_v1 t
                                  WHERE t.family_id = f.id AND t.used_at IS NULL AND t.revoked_at IS NULL), 0)
                    ) AS working_until
                    FROM token_families f WHERE f.account_id = ?1 AND f.revoked_at IS NULL AND f.expires_at > ?2
                ) WHERE working_until > ?2
                ORDER BY created_at, id
                """,
                [.text(accountId), now.sqlite]
            ) { row in
                TokenFamily(
                    id: try row.text("id"), clientId: try row.text("client_id"), accountId: try row.text("account_id"),
                    scopes: Self.scopes(try row.text("scopes")), refreshJKT: try row.optionalText("refresh_jkt"),
                    origin: try row.enumValue("origin"), createdAt: try row.date("created_at"),
                    expiresAt: try row.date("working_until"), revokedAt: try row.optionalDate("revoked_at")
                )
            }
        }
    }

    /// Revokes family `id` of `accountId` if it is not revoked yet.
    public func revokeTokenFamily(id: String, accountId: String, at date: Date) async throws -> Bool {
        try exclusively { connection in
            !(try connection.query(
                "UPDATE token_families SET revoked_at = ? WHERE id = ? AND account_id = ? AND revoked_at IS NULL RETURNING id",
                [date.sqlite, .text(id), .text(accountId)]
            ) { _ in true }).isEmpty
        }
    }

    /// Deletes the tokens that expired before `cutoff`, a few hundred families at a time, then
    /// the families, codes, sessions and pushed requests that did, in one transaction.
    public func deleteOAuthTokens(expiredBefore cutoff: Date) async throws -> Int {
        // Tokens family by family, ``cleanupFamilies`` families per transaction. Their expiry has
        // no index (it would cost every refresh pages of its own), so the cleanup reads every
        // token; in one statement that held the store for about 120 ms per million tokens, and
        // a short transaction at a time lets requests in between.
        var tokens = 0
        var after = ""
        while true {
            let (deleted, last) = try transaction { connection -> (Int, String?) in
                let last = try connection.queryFirst(
                    "SELECT max(id) AS last FROM (SELECT id FROM token_families WHERE id > ? ORDER BY id LIMIT ?)",
                    [.text(after), Self.cleanupFamilies.sqlite]
                ) { try $0.optionalText("last") }
                guard let last = last ?? nil else { return (0, nil) }
                try connection.execute(
                    "DELETE FROM oauth_tokens WHERE family_id > ?1 AND family_id <= ?2 AND expires_at < ?3", [.text(after), .text(last), cutoff.sqlite]
                )
                var deleted = connection.changes
                try connection.execute(
                    "DELETE FROM oauth_tokens_v1 WHERE family_id > ?1 AND family_id <= ?2 AND expires_at < ?3", [.text(after), .text(last), cutoff.sqlite]
                )
                deleted += connection.changes
                return (deleted, last)
            }
            tokens += deleted
            guard let last else { break }
            after = last
        }
        return try transaction { connection in
            // Tokens of a deleted family go with it (ON DELETE CASCADE); a family outlives its tokens.
            try connection.execute("DELETE FROM token_families WHERE expires_at < ?", [cutoff.sqlite])
            let families = connection.changes
            try connection.execute("DELETE FROM authorization_codes WHERE expires_at < ?", [cutoff.sqlite])
            let codes = connection.changes
            try connection.execute("DELETE FROM browser_sessions WHERE expires_at < ?", [cutoff.sqlite])
            let sessions = connection.changes
            try connection.execute("DELETE FROM pushed_requests WHERE expires_at < ?", [cutoff.sqlite])
            let pushed = connection.changes
            // A password or code session's stand-in device goes once its session is gone.
            try connection.execute(
                """
                DELETE FROM devices WHERE id LIKE 'browser-%' AND NOT EXISTS (
                    SELECT 1 FROM browser_sessions s WHERE s.account_id = devices.account_id AND s.device_id = devices.id)
                """
            )
            return tokens + families + codes + sessions + pushed + connection.changes
        }
    }

    // MARK: Signing keys

    /// Every signing key, oldest first.
    public func signingKeys() async throws -> [SigningKey] {
        try exclusively { connection in
            try connection.query("SELECT * FROM signing_keys ORDER BY created_at, kid", []) { row in
                SigningKey(
                    kid: try row.text("kid"), algorithm: try row.enumValue("algorithm"), privateKeyPEM: try row.text("private_key_pem"),
                    createdAt: try row.date("created_at"), retiredAt: try row.optionalDate("retired_at")
                )
            }
        }
    }

    /// Adds `key` and retires the other active keys of its algorithm, in one transaction.
    public func addSigningKey(_ key: SigningKey) async throws {
        try transaction { connection in
            try connection.execute(
                "UPDATE signing_keys SET retired_at = ? WHERE algorithm = ? AND retired_at IS NULL",
                [key.createdAt.sqlite, .text(key.algorithm.rawValue)]
            )
            try connection.execute(
                "INSERT INTO signing_keys (kid, algorithm, private_key_pem, created_at, retired_at) VALUES (?, ?, ?, ?, ?)",
                [.text(key.kid), .text(key.algorithm.rawValue), .text(key.privateKeyPEM), key.createdAt.sqlite, key.retiredAt.sqlite]
            )
        }
    }

    /// Deletes keys retired before `cutoff`.
    public func deleteSigningKeys(retiredBefore cutoff: Date) async throws -> Int {
        try exclusively { connection in
            try connection.execute("DELETE FROM signing_keys WHERE retired_at < ?", [cutoff.sqlite])
            return connection.changes
        }
    }

    // MARK: Authorization codes and browser sessions

    /// Inserts a new authorization code.
    public func insertAuthorizationCode(_ code: AuthorizationCode) async throws {
        try exclusively { connection in
            try connection.execute(
                """
                INSERT INTO authorization_codes (hash, client_id, account_id, redirect_uri, scopes, nonce, code_challenge, dpop_jkt,
                    auth_time, amr, session_id, created_at, expires_at, used_at, family_id)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                """,
                [.text(code.hash), .text(code.clientId), .text(code.accountId), .text(code.redirectURI), .text(Scope.format(code.scopes)),
                 code.nonce.sqlite, code.codeChallenge.sqlite, code.dpopJKT.sqlite, code.authTime.sqlite, .text(code.amr.joined(separator: " ")),
                 code.sessionId.sqlite, code.createdAt.sqlite, code.expiresAt.sqlite, code.usedAt.sqlite, code.familyId.sqlite]
            )
        }
    }

    /// Reads, decides and writes a code's redemption in one transaction.
    public func redeemAuthorizationCode(hash: String, at now: Date, _ decide: @Sendable (AuthorizationCode) throws -> CodeRedemption) async throws -> CodeRedemption? {
        try transaction { connection in
            let found = try connection.queryFirst("SELECT * FROM authorization_codes WHERE hash = ?", [.text(hash)]) { row in
                var code = AuthorizationCode(
                    hash: try row.text("hash"), clientId: try row.text("client_id"), accountId: try row.text("account_id"),
                    redirectURI: try row.text("redirect_uri"), scopes: Self.scopes(try row.text("scopes")), nonce: try row.optionalText("nonce"),
                    codeChallenge: try row.optionalText("code_challenge"), dpopJKT: try row.optionalText("dpop_jkt"),
                    authTime: try row.date("auth_time"), amr: Self.scopes(try row.text("amr")), sessionId: try row.optionalText("session_id"),
                    createdAt: try row.date("created_at"), expiresAt: try row.date("expires_at")
                )
                code.usedAt = try row.optionalDate("used_at")
                code.familyId = try row.optionalText("family_id")
                return code
            }
            guard let code = found else { return nil }
            let decision = try decide(code)
            switch decision {
            case .issue(let grant):
                // Conditional on the code being unused, as a second line of defence.
                let marked = try connection.query(
                    "UPDATE authorization_codes SET used_at = ?, family_id = ? WHERE hash = ? AND used_at IS NULL RETURNING hash",
                    [now.sqlite, .text(grant.family.id), .text(hash)]
                ) { _ in true }
                guard !marked.isEmpty else { throw SQLiteStoreError.concurrentModification(requestId: hash) }
                try Self.insert(grant, on: connection)
            case .revokeIssued:
                if let familyId = code.familyId {
                    try connection.execute(
                        "UPDATE token_families SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL", [now.sqlite, .text(familyId)]
                    )
                }
            }
            return decision
        }
    }

    /// Inserts a new browser session.
    public func insertBrowserSession(_ session: BrowserSession) async throws {
        try exclusively { connection in
            try connection.execute(
                """
                INSERT INTO browser_sessions (id, secret_hash, account_id, device_id, auth_time, amr, created_at, expires_at, revoked_at)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
                """,
                [.text(session.id), .text(session.secretHash), .text(session.accountId), session.deviceId.sqlite, session.authTime.sqlite,
                 .text(session.amr.joined(separator: " ")), session.createdAt.sqlite, session.expiresAt.sqlite, session.revokedAt.sqlite]
            )
        }
    }

    /// The session with this cookie secret hash, live or not.
    public func browserSession(secretHash: String) async throws -> BrowserSession? {
        try exclusively { connection in
            try connection.queryFirst("SELECT * FROM browser_sessions WHERE secret_hash = ?", [.text(secretHash)]) { row in
                BrowserSession(
                    id: try row.text("id"), secretHash: try row.text("secret_hash"), accountId: try row.text("account_id"),
                    deviceId: try row.optionalText("device_id"), authTime: try row.date("auth_time"), amr: Self.scopes(try row.text("amr")),
                    createdAt: try row.date("created_at"), expiresAt: try row.date("expires_at"), revokedAt: try row.optionalDate("revoked_at")
                )
            }
        }
    }

    /// Ends session `id` if it is live.
    public func revokeBrowserSession(id: String, at date: Date) async throws -> Bool {
        try exclusively { connection in
            !(try connection.query(
                "UPDATE browser_sessions SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL RETURNING id", [date.sqlite, .text(id)]
            ) { _ in true }).isEmpty
        }
    }

    // MARK: Pushed authorization requests

    /// Inserts a pushed authorization request.
    public func insertPushedRequest(_ request: PushedRequest) async throws {
        try exclusively { connection in
            try connection.execute(
                "INSERT INTO pushed_requests (request_uri, client_id, query, expires_at) VALUES (?, ?, ?, ?)",
                [.text(request.requestURI), .text(request.clientId), .text(request.query), request.expiresAt.sqlite]
            )
        }
    }

    /// The pushed request behind `requestURI`, expired or not.
    public func pushedRequest(uri: String) async throws -> PushedRequest? {
        try exclusively { connection in
            try connection.queryFirst("SELECT * FROM pushed_requests WHERE request_uri = ?", [.text(uri)]) { row in
                PushedRequest(requestURI: try row.text("request_uri"), clientId: try row.text("client_id"), query: try row.text("query"), expiresAt: try row.date("expires_at"))
            }
        }
    }

    private static func scopes(_ text: String) -> [String] {
        // Over bytes: scopes are ASCII (RFC 6749 §3.3), and String's own split walks Characters.
        text.utf8.split(separator: UInt8(ascii: " ")).map { String(Substring($0)) }
    }
}

/// Usernames by account id, for token lookups. An account's username never changes and no
/// account is deleted, so an entry never goes stale; only ``SQLiteStore`` uses it, under its
/// lock. More accounts than ``limit`` in use empties it rather than grow it.
final class UsernameCache {
    static let limit = 16_384

    private var usernames: [String: String] = [:]

    func username(of accountId: String) -> String? { usernames[accountId] }

    func keep(_ username: String, of accountId: String) {
        if usernames.count >= Self.limit { usernames.removeAll(keepingCapacity: true) }
        usernames[accountId] = username
    }
}

/// The clients a ``SQLiteStore`` has read, valid while the database's `data_version` stays the
/// one they were read at. Used only under the store's lock.
final class ClientCache {
    /// More distinct clients than this in use at once empties the cache rather than grow it.
    static let limit = 1024

    private var clients: [String: OAuthClient] = [:]
    private var dataVersion: Int?

    /// The client `id` as read before, if no other connection has committed since.
    func client(id: String, dataVersion version: Int?) -> OAuthClient? {
        if version != dataVersion {
            clients.removeAll(keepingCapacity: true)
            dataVersion = version
            return nil
        }
        return clients[id]
    }

    /// Keeps `client`, read at `version`.
    func keep(_ client: OAuthClient, dataVersion version: Int?) {
        if version != dataVersion || clients.count >= Self.limit {
            clients.removeAll(keepingCapacity: true)
            dataVersion = version
        }
        clients[client.id] = client
    }

    /// Forgets every client (this store changed one).
    func clear() {
        clients.removeAll(keepingCapacity: true)
    }
}
