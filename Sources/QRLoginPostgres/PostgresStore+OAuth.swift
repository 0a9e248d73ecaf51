import Foundation
import Logging
import PostgresNIO
import QRLoginCore
import QRLoginOAuth

/// OAuth clients, tokens and families, authorization codes, browser sessions, pushed requests and
/// signing keys: SQLiteStore+OAuth.swift statement for statement, with PostgreSQL's locking.
///
/// Text is ordered with `COLLATE "C"` (byte order), as SQLite and ``MemoryStore`` order it,
/// whatever collation the database was created with.
extension PostgresStore {
    // MARK: Clients

    /// Inserts `client`, or replaces the client with its id, in one statement.
    public func upsertClient(_ client: OAuthClient) async throws {
        // The very JSON SQLite's store writes, so both stores hold the same text.
        let redirects = String(decoding: try JSONEncoder().encode(client.redirectURIs), as: UTF8.self)
        let logoutRedirects = String(decoding: try JSONEncoder().encode(client.postLogoutRedirectURIs), as: UTF8.self)
        try await execute(
            """
            INSERT INTO oauth_clients (id, name, type, secret_hash, redirect_uris, grant_types, scopes, require_dpop, id_token_alg,
                post_logout_redirect_uris, require_par, created_at)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
            ON CONFLICT (id) DO UPDATE SET
                name = excluded.name, type = excluded.type, secret_hash = excluded.secret_hash,
                redirect_uris = excluded.redirect_uris, grant_types = excluded.grant_types, scopes = excluded.scopes,
                require_dpop = excluded.require_dpop, id_token_alg = excluded.id_token_alg,
                post_logout_redirect_uris = excluded.post_logout_redirect_uris, require_par = excluded.require_par,
                created_at = excluded.created_at
            """,
            QRLoginPostgres.binds(
                .text(client.id), .text(client.name), .text(client.type.rawValue), client.secretHash.pg, .text(redirects),
                .text(client.grantTypes.map(\.rawValue).joined(separator: " ")), .text(Scope.format(client.scopes)),
                .bool(client.requireDPoP), .text(client.idTokenAlgorithm.rawValue), .text(logoutRedirects),
                .bool(client.requirePAR), client.createdAt.pg
            )
        )
    }

    /// The client `id`, if registered.
    public func client(id: String) async throws -> OAuthClient? {
        try await first("SELECT * FROM oauth_clients WHERE id = $1", QRLoginPostgres.binds(.text(id)), Self.oauthClient(from:))
    }

    /// Every client, by id.
    public func clients() async throws -> [OAuthClient] {
        try await rows("SELECT * FROM oauth_clients ORDER BY id COLLATE \"C\"", QRLoginPostgres.binds(), Self.oauthClient(from:))
    }

    /// Revokes the client's live families and removes the client, in one transaction. Two
    /// statements, neither depending on what the other read: no row is read first, so nothing
    /// needs locking beyond what the statements lock themselves.
    public func removeClient(id: String, at date: Date) async throws -> Bool {
        let logger = self.logger
        return try await transaction { connection in
            try await Self.execute(
                "UPDATE token_families SET revoked_at = $1 WHERE client_id = $2 AND revoked_at IS NULL",
                QRLoginPostgres.binds(date.pg, .text(id)), on: connection, logger: logger
            )
            return try await Self.execute(
                "DELETE FROM oauth_clients WHERE id = $1 RETURNING id", QRLoginPostgres.binds(.text(id)), on: connection, logger: logger
            ) > 0
        }
    }

    private static func oauthClient(from row: PostgresRandomAccessRow) throws -> OAuthClient {
        guard let redirects = try? JSONDecoder().decode([String].self, from: Data(try row.text("redirect_uris").utf8)) else {
            throw PostgresStoreError.malformedRow(column: "redirect_uris")
        }
        guard let logoutRedirects = try? JSONDecoder().decode([String].self, from: Data(try row.text("post_logout_redirect_uris").utf8)) else {
            throw PostgresStoreError.malformedRow(column: "post_logout_redirect_uris")
        }
        let grants = try row.text("grant_types").split(separator: " ").map { name in
            guard let grant = GrantType(rawValue: String(name)) else { throw PostgresStoreError.malformedRow(column: "grant_types") }
            return grant
        }
        return OAuthClient(
            id: try row.text("id"), name: try row.text("name"), type: try row.enumValue("type"),
            secretHash: try row.optionalText("secret_hash"), redirectURIs: redirects, grantTypes: grants,
            scopes: oauthWords(try row.text("scopes")), requireDPoP: try row.bool("require_dpop"),
            idTokenAlgorithm: try row.enumValue("id_token_alg"), postLogoutRedirectURIs: logoutRedirects,
            requirePAR: try row.bool("require_par"), createdAt: try row.date("created_at")
        )
    }

    // MARK: Tokens

    /// Inserts a new family and its first tokens on `connection`; shared with device-grant
    /// redemptions, which write them inside their login-request transition's transaction.
    static func insert(_ grant: IssuedGrant, on connection: PostgresConnection, logger: Logger) async throws {
        let family = grant.family
        try await execute(
            """
            INSERT INTO token_families (id, client_id, account_id, scopes, refresh_jkt, origin, created_at, expires_at, revoked_at)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
            """,
            QRLoginPostgres.binds(
                .text(family.id), .text(family.clientId), .text(family.accountId), .text(Scope.format(family.scopes)),
                family.refreshJKT.pg, .text(family.origin.rawValue), family.createdAt.pg, family.expiresAt.pg, family.revokedAt.pg
            ),
            on: connection, logger: logger
        )
        for token in grant.tokens { try await insertOAuthToken(token, on: connection, logger: logger) }
    }

    private static func insertOAuthToken(_ token: OAuthToken, on connection: PostgresConnection, logger: Logger) async throws {
        try await execute(
            """
            INSERT INTO oauth_tokens (hash, id, kind, family_id, scopes, jkt, created_at, expires_at, used_at, revoked_at)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
            """,
            QRLoginPostgres.binds(
                .text(token.hash), .text(token.id), .text(token.kind.rawValue), .text(token.familyId), .text(Scope.format(token.scopes)),
                token.jkt.pg, token.createdAt.pg, token.expiresAt.pg, token.usedAt.pg, token.revokedAt.pg
            ),
            on: connection, logger: logger
        )
    }

    /// The token with its family and its account's username, in one query. Tokens are found by
    /// their hash alone here; one of another family than `family` is not found.
    public func oauthToken(hash: String, family: String?) async throws -> OAuthTokenLookup? {
        let found = try await first(Self.lookupSQL, QRLoginPostgres.binds(.text(hash)), Self.oauthTokenLookup(from:))
        return found.flatMap { Self.isIn(family, $0) ? $0 : nil }
    }

    /// Whether `found` is in `family` (nil: any).
    private static func isIn(_ family: String?, _ found: OAuthTokenLookup) -> Bool {
        family == nil || family == found.token.familyId
    }

    private static let lookupSQL = """
        SELECT t.hash, t.id, t.kind, t.family_id, t.scopes, t.jkt, t.created_at, t.expires_at, t.used_at, t.revoked_at,
               f.client_id AS f_client_id, f.account_id AS f_account_id, f.scopes AS f_scopes, f.refresh_jkt AS f_refresh_jkt,
               f.origin AS f_origin, f.created_at AS f_created_at, f.expires_at AS f_expires_at, f.revoked_at AS f_revoked_at,
               a.username AS username
        FROM oauth_tokens t JOIN token_families f ON f.id = t.family_id JOIN accounts a ON a.id = f.account_id
        WHERE t.hash = $1
        """

    /// ``lookupSQL`` locking the token row and its family row (not the account's) until the
    /// transaction ends: a concurrent caller waits, then reads them as this one left them.
    private static let lookupForUpdateSQL = lookupSQL + "\nFOR UPDATE OF t, f"

    private static func oauthTokenLookup(from row: PostgresRandomAccessRow) throws -> OAuthTokenLookup {
        let token = OAuthToken(
            id: try row.text("id"), kind: try row.enumValue("kind"), hash: try row.text("hash"), familyId: try row.text("family_id"),
            scopes: oauthWords(try row.text("scopes")), jkt: try row.optionalText("jkt"), createdAt: try row.date("created_at"),
            expiresAt: try row.date("expires_at"), usedAt: try row.optionalDate("used_at"), revokedAt: try row.optionalDate("revoked_at")
        )
        let family = TokenFamily(
            id: token.familyId, clientId: try row.text("f_client_id"), accountId: try row.text("f_account_id"),
            scopes: oauthWords(try row.text("f_scopes")), refreshJKT: try row.optionalText("f_refresh_jkt"),
            origin: try row.enumValue("f_origin"), createdAt: try row.date("f_created_at"),
            expiresAt: try row.date("f_expires_at"), revokedAt: try row.optionalDate("f_revoked_at")
        )
        return OAuthTokenLookup(token: token, family: family, username: try row.text("username"))
    }

    /// Records `proof` in the replay table, then reads the refresh token and its family locked,
    /// decides, and writes, all in one transaction. A refused refresh rolls back and records the
    /// proof on its own.
    public func useRefreshToken(
        hash: String, family: String?, at now: Date, recording proof: ProofRecord?,
        _ decide: @Sendable (OAuthToken, TokenFamily) throws -> RefreshDecision
    ) async throws -> RefreshDecision? {
        do {
            return try await refresh(hash: hash, family: family, at: now, recording: proof, decide)
        } catch QRLoginError.replayedProof {
            throw QRLoginError.replayedProof
        } catch {
            // Rolled back with the rest: recorded again, so the proof counts as used (a second
            // use of it meanwhile waited on the first's row, and one of the two has failed). The
            // answer stays the refusal's, even if this cannot be recorded: nothing was issued.
            if let proof { _ = try? await insertReplayKey(proof.key, expiresAt: proof.expiresAt, now: proof.now) }
            throw error
        }
    }

    private func refresh(
        hash: String, family: String?, at now: Date, recording proof: ProofRecord?,
        _ decide: @Sendable (OAuthToken, TokenFamily) throws -> RefreshDecision
    ) async throws -> RefreshDecision? {
        try await decideUnderLock(
            read: { (connection: PostgresConnection, logger: Logger) -> OAuthTokenLookup? in
                if let proof, try await !Self.insertReplayKey(proof.key, expiresAt: proof.expiresAt, now: proof.now, on: connection, logger: logger) {
                    throw QRLoginError.replayedProof
                }
                // The token row and its family row stay locked until commit: a second use of the
                // token waits here and then sees it used, so it revokes instead of rotating again.
                let found = try await Self.first(
                    Self.lookupForUpdateSQL, QRLoginPostgres.binds(.text(hash)), on: connection, logger: logger, Self.oauthTokenLookup(from:)
                )
                guard let found, found.token.kind == .refresh, Self.isIn(family, found) else { return nil }
                return found
            },
            decide: { (found: OAuthTokenLookup) in try decide(found.token, found.family) },
            apply: { (found: OAuthTokenLookup, decision: RefreshDecision, connection: PostgresConnection, logger: Logger)
                -> RefreshDecision in
                switch decision {
                case .rotate(let tokens, let expiresAt):
                    // Conditional on the token being unused, as a second line of defence.
                    let marked = try await Self.execute(
                        "UPDATE oauth_tokens SET used_at = $1 WHERE hash = $2 AND used_at IS NULL RETURNING hash",
                        QRLoginPostgres.binds(now.pg, .text(hash)), on: connection, logger: logger
                    )
                    guard marked > 0 else { throw PostgresStoreError.concurrentModification(requestId: found.token.id) }
                    for token in tokens { try await Self.insertOAuthToken(token, on: connection, logger: logger) }
                    if let expiresAt {
                        try await Self.execute(
                            "UPDATE token_families SET expires_at = $1 WHERE id = $2",
                            QRLoginPostgres.binds(expiresAt.pg, .text(found.family.id)), on: connection, logger: logger
                        )
                    }
                case .revokeFamily:
                    try await Self.execute(
                        "UPDATE token_families SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL",
                        QRLoginPostgres.binds(now.pg, .text(found.family.id)), on: connection, logger: logger
                    )
                }
                return decision
            }
        )
    }

    /// Revokes an access token, or a refresh token's family, of `clientId`: the token and its
    /// family are read locked, then written, in one transaction.
    public func revokeOAuthToken(hash: String, family: String?, clientId: String, at date: Date) async throws -> OAuthRevocation {
        let logger = self.logger
        return try await transaction { connection in
            guard let found = try await Self.first(
                Self.lookupForUpdateSQL, QRLoginPostgres.binds(.text(hash)), on: connection, logger: logger, Self.oauthTokenLookup(from:)
            ), Self.isIn(family, found) else { return .unknown }
            guard found.family.clientId == clientId else { return .otherClient }
            switch found.token.kind {
            case .access:
                try await Self.execute(
                    "UPDATE oauth_tokens SET revoked_at = $1 WHERE hash = $2 AND revoked_at IS NULL",
                    QRLoginPostgres.binds(date.pg, .text(hash)), on: connection, logger: logger
                )
                return .accessToken
            case .refresh:
                try await Self.execute(
                    "UPDATE token_families SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL",
                    QRLoginPostgres.binds(date.pg, .text(found.family.id)), on: connection, logger: logger
                )
                return .family
            }
        }
    }

    /// The live families of `accountId`, oldest first.
    public func tokenFamilies(accountId: String, at now: Date) async throws -> [TokenFamily] {
        try await rows(
            """
            SELECT * FROM (
                SELECT f.*, (
                    SELECT max(t.expires_at) FROM oauth_tokens t
                    WHERE t.family_id = f.id AND t.used_at IS NULL AND t.revoked_at IS NULL
                ) AS working_until
                FROM token_families f WHERE f.account_id = $1 AND f.revoked_at IS NULL AND f.expires_at > $2
            ) AS families WHERE working_until > $2
            ORDER BY created_at, id COLLATE "C"
            """,
            QRLoginPostgres.binds(.text(accountId), now.pg)
        ) { row in
            TokenFamily(
                id: try row.text("id"), clientId: try row.text("client_id"), accountId: try row.text("account_id"),
                scopes: Self.oauthWords(try row.text("scopes")), refreshJKT: try row.optionalText("refresh_jkt"),
                origin: try row.enumValue("origin"), createdAt: try row.date("created_at"),
                expiresAt: try row.date("working_until"), revokedAt: try row.optionalDate("revoked_at")
            )
        }
    }

    /// Revokes family `id` of `accountId` if it is not revoked yet: one conditional statement.
    public func revokeTokenFamily(id: String, accountId: String, at date: Date) async throws -> Bool {
        try await execute(
            "UPDATE token_families SET revoked_at = $1 WHERE id = $2 AND account_id = $3 AND revoked_at IS NULL RETURNING id",
            QRLoginPostgres.binds(date.pg, .text(id), .text(accountId))
        ) > 0
    }

    /// Deletes what expired before `cutoff`, in one transaction; the count is the sum of the rows
    /// each statement deleted itself (a family's tokens deleted with it by `ON DELETE CASCADE`
    /// are not counted, as SQLite's `changes()` does not count them).
    public func deleteOAuthTokens(expiredBefore cutoff: Date) async throws -> Int {
        let logger = self.logger
        return try await transaction { connection in
            var deleted = 0
            for sql in Self.expirySQL {
                deleted += try await Self.first(sql, QRLoginPostgres.binds(cutoff.pg), on: connection, logger: logger) { try $0.int("deleted") } ?? 0
            }
            // A password or code session's stand-in device goes once its session is gone.
            deleted += try await Self.first(Self.standInDevicesSQL, QRLoginPostgres.binds(), on: connection, logger: logger) { try $0.int("deleted") } ?? 0
            return deleted
        }
    }

    /// One statement per table, in SQLite's order, each answering how many rows it deleted
    /// (without sending them). Tokens of a deleted family go with it; a family outlives its tokens.
    private static let expirySQL = [
        "WITH gone AS (DELETE FROM oauth_tokens WHERE expires_at < $1 RETURNING 1) SELECT count(*) AS deleted FROM gone",
        "WITH gone AS (DELETE FROM token_families WHERE expires_at < $1 RETURNING 1) SELECT count(*) AS deleted FROM gone",
        "WITH gone AS (DELETE FROM authorization_codes WHERE expires_at < $1 RETURNING 1) SELECT count(*) AS deleted FROM gone",
        "WITH gone AS (DELETE FROM browser_sessions WHERE expires_at < $1 RETURNING 1) SELECT count(*) AS deleted FROM gone",
        "WITH gone AS (DELETE FROM pushed_requests WHERE expires_at < $1 RETURNING 1) SELECT count(*) AS deleted FROM gone",
    ]

    /// `LIKE` is case-sensitive here (SQLite's is not for ASCII): the prefix `browser-` exactly,
    /// as ``MemoryStore`` matches it.
    private static let standInDevicesSQL = """
        WITH gone AS (
            DELETE FROM devices WHERE id LIKE 'browser-%' AND NOT EXISTS (
                SELECT 1 FROM browser_sessions s WHERE s.account_id = devices.account_id AND s.device_id = devices.id)
            RETURNING 1)
        SELECT count(*) AS deleted FROM gone
        """

    // MARK: Signing keys

    /// Every signing key, oldest first.
    public func signingKeys() async throws -> [SigningKey] {
        try await rows("SELECT * FROM signing_keys ORDER BY created_at, kid COLLATE \"C\"", QRLoginPostgres.binds()) { row in
            SigningKey(
                kid: try row.text("kid"), algorithm: try row.enumValue("algorithm"), privateKeyPEM: try row.text("private_key_pem"),
                createdAt: try row.date("created_at"), retiredAt: try row.optionalDate("retired_at")
            )
        }
    }

    /// Adds `key` and retires the other active keys of its algorithm, in one transaction.
    ///
    /// The transaction first takes a lock on `signing_keys` that conflicts only with itself
    /// (and with writers of other modes, never with readers): at Read Committed, two instances
    /// adding a key at once (every instance makes its keys at its first start) would each retire
    /// only the keys committed before its `UPDATE` began, leaving both new keys active. Under the
    /// lock the second waits, then retires the first's key.
    public func addSigningKey(_ key: SigningKey) async throws {
        let logger = self.logger
        try await transaction { connection in
            try await Self.execute("LOCK TABLE signing_keys IN SHARE ROW EXCLUSIVE MODE", QRLoginPostgres.binds(), on: connection, logger: logger)
            try await Self.execute(
                "UPDATE signing_keys SET retired_at = $1 WHERE algorithm = $2 AND retired_at IS NULL",
                QRLoginPostgres.binds(key.createdAt.pg, .text(key.algorithm.rawValue)), on: connection, logger: logger
            )
            try await Self.execute(
                "INSERT INTO signing_keys (kid, algorithm, private_key_pem, created_at, retired_at) VALUES ($1, $2, $3, $4, $5)",
                QRLoginPostgres.binds(.text(key.kid), .text(key.algorithm.rawValue), .text(key.privateKeyPEM), key.createdAt.pg, key.retiredAt.pg),
                on: connection, logger: logger
            )
        }
    }

    /// Deletes keys retired before `cutoff`, in one statement.
    public func deleteSigningKeys(retiredBefore cutoff: Date) async throws -> Int {
        try await writtenFirst(
            "WITH gone AS (DELETE FROM signing_keys WHERE retired_at < $1 RETURNING 1) SELECT count(*) AS deleted FROM gone",
            QRLoginPostgres.binds(cutoff.pg)
        ) { try $0.int("deleted") } ?? 0
    }

    // MARK: Authorization codes and browser sessions

    /// Inserts a new authorization code.
    public func insertAuthorizationCode(_ code: AuthorizationCode) async throws {
        try await execute(
            """
            INSERT INTO authorization_codes (hash, client_id, account_id, redirect_uri, scopes, nonce, code_challenge, dpop_jkt,
                auth_time, amr, session_id, created_at, expires_at, used_at, family_id)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)
            """,
            QRLoginPostgres.binds(
                .text(code.hash), .text(code.clientId), .text(code.accountId), .text(code.redirectURI), .text(Scope.format(code.scopes)),
                code.nonce.pg, code.codeChallenge.pg, code.dpopJKT.pg, code.authTime.pg, .text(code.amr.joined(separator: " ")),
                code.sessionId.pg, code.createdAt.pg, code.expiresAt.pg, code.usedAt.pg, code.familyId.pg
            )
        )
    }

    /// Reads the code locked, decides, and writes its redemption, in one transaction.
    public func redeemAuthorizationCode(hash: String, at now: Date, _ decide: @Sendable (AuthorizationCode) throws -> CodeRedemption) async throws -> CodeRedemption? {
        try await decideUnderLock(
            read: { (connection: PostgresConnection, logger: Logger) -> AuthorizationCode? in
                // The code row stays locked until commit: a second redemption waits here and then
                // sees the code used (and the family it started), so it revokes instead of issuing.
                try await Self.first(
                    "SELECT * FROM authorization_codes WHERE hash = $1 FOR UPDATE", QRLoginPostgres.binds(.text(hash)), on: connection, logger: logger
                ) { row in
                    var code = AuthorizationCode(
                        hash: try row.text("hash"), clientId: try row.text("client_id"), accountId: try row.text("account_id"),
                        redirectURI: try row.text("redirect_uri"), scopes: Self.oauthWords(try row.text("scopes")), nonce: try row.optionalText("nonce"),
                        codeChallenge: try row.optionalText("code_challenge"), dpopJKT: try row.optionalText("dpop_jkt"),
                        authTime: try row.date("auth_time"), amr: Self.oauthWords(try row.text("amr")), sessionId: try row.optionalText("session_id"),
                        createdAt: try row.date("created_at"), expiresAt: try row.date("expires_at")
                    )
                    code.usedAt = try row.optionalDate("used_at")
                    code.familyId = try row.optionalText("family_id")
                    return code
                }
            },
            decide: { (code: AuthorizationCode) in try decide(code) },
            apply: { (code: AuthorizationCode, decision: CodeRedemption, connection: PostgresConnection, logger: Logger) -> CodeRedemption in
                switch decision {
                case .issue(let grant):
                    // Conditional on the code being unused, as a second line of defence.
                    let marked = try await Self.execute(
                        "UPDATE authorization_codes SET used_at = $1, family_id = $2 WHERE hash = $3 AND used_at IS NULL RETURNING hash",
                        QRLoginPostgres.binds(now.pg, .text(grant.family.id), .text(hash)), on: connection, logger: logger
                    )
                    guard marked > 0 else { throw PostgresStoreError.concurrentModification(requestId: hash) }
                    try await Self.insert(grant, on: connection, logger: logger)
                case .revokeIssued:
                    if let familyId = code.familyId {
                        try await Self.execute(
                            "UPDATE token_families SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL",
                            QRLoginPostgres.binds(now.pg, .text(familyId)), on: connection, logger: logger
                        )
                    }
                }
                return decision
            }
        )
    }

    /// Inserts a new browser session.
    public func insertBrowserSession(_ session: BrowserSession) async throws {
        try await execute(
            """
            INSERT INTO browser_sessions (id, secret_hash, account_id, device_id, auth_time, amr, created_at, expires_at, revoked_at)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
            """,
            QRLoginPostgres.binds(
                .text(session.id), .text(session.secretHash), .text(session.accountId), session.deviceId.pg, session.authTime.pg,
                .text(session.amr.joined(separator: " ")), session.createdAt.pg, session.expiresAt.pg, session.revokedAt.pg
            )
        )
    }

    /// The session with this cookie secret hash, live or not.
    public func browserSession(secretHash: String) async throws -> BrowserSession? {
        try await first("SELECT * FROM browser_sessions WHERE secret_hash = $1", QRLoginPostgres.binds(.text(secretHash))) { row in
            BrowserSession(
                id: try row.text("id"), secretHash: try row.text("secret_hash"), accountId: try row.text("account_id"),
                deviceId: try row.optionalText("device_id"), authTime: try row.date("auth_time"), amr: Self.oauthWords(try row.text("amr")),
                createdAt: try row.date("created_at"), expiresAt: try row.date("expires_at"), revokedAt: try row.optionalDate("revoked_at")
            )
        }
    }

    /// Ends session `id` if it is live: one conditional statement.
    public func revokeBrowserSession(id: String, at date: Date) async throws -> Bool {
        try await execute(
            "UPDATE browser_sessions SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL RETURNING id", QRLoginPostgres.binds(date.pg, .text(id))
        ) > 0
    }

    // MARK: Pushed authorization requests

    /// Inserts a pushed authorization request.
    public func insertPushedRequest(_ request: PushedRequest) async throws {
        try await execute(
            "INSERT INTO pushed_requests (request_uri, client_id, query, expires_at) VALUES ($1, $2, $3, $4)",
            QRLoginPostgres.binds(.text(request.requestURI), .text(request.clientId), .text(request.query), request.expiresAt.pg)
        )
    }

    /// The pushed request behind `uri`, expired or not.
    public func pushedRequest(uri: String) async throws -> PushedRequest? {
        try await first("SELECT * FROM pushed_requests WHERE request_uri = $1", QRLoginPostgres.binds(.text(uri))) { row in
            PushedRequest(requestURI: try row.text("request_uri"), clientId: try row.text("client_id"), query: try row.text("query"), expiresAt: try row.date("expires_at"))
        }
    }

    // MARK: Deciding under a row lock

    /// Runs one read-decide-write transaction whose decision comes from a closure that must not
    /// escape (the protocol's `decide`): `read` locks and reads the row on the transaction's
    /// connection, `decide` runs here in the calling task, and `apply` writes its decision on the
    /// same connection before the commit, so the lock `read` took is held from the read to the
    /// commit. Nil, with nothing decided, when `read` finds nothing.
    ///
    /// Why not `withoutActuallyEscaping(decide)` inside ``transaction(_:)``: its body runs in a
    /// task of ``Deadline``'s that outlives the call when the deadline passes (and, briefly, even
    /// after it succeeds, until that task releases its closure), and a closure still referenced
    /// when `withoutActuallyEscaping` returns stops the process. Here only `Sendable` values
    /// cross: the row one way, the decision (or `decide`'s error) the other.
    ///
    /// If `decide` throws, the transaction rolls back and `decide`'s error is rethrown unchanged.
    /// `decide` runs at most once, and only with the row locked.
    /// If the transaction fails or passes its deadline first, its error is thrown and `decide`
    /// does not run; the transaction's task, if still running, finds no decision and rolls back.
    func decideUnderLock<Row: Sendable, Decision: Sendable, Output: Sendable>(
        read: @escaping @Sendable (PostgresConnection, Logger) async throws -> Row?,
        decide: (Row) throws -> Decision,
        apply: @escaping @Sendable (Row, Decision, PostgresConnection, Logger) async throws -> Output
    ) async throws -> Output? {
        let (found, foundSink) = AsyncThrowingStream.makeStream(of: Row?.self)
        let (decisions, decisionSink) = AsyncStream.makeStream(of: Result<Decision, any Error>.self)
        // Whatever way this call ends, the transaction gets no more decisions (so it never waits
        // for one that is not coming).
        defer { decisionSink.finish() }
        async let written = runDecidingTransaction(read: read, apply: apply, found: foundSink, decisions: decisions)

        var rows = found.makeAsyncIterator()
        let received: Row??
        do {
            received = try await rows.next()
        } catch {
            // The transaction failed before it read: its error is the answer.
            decisionSink.finish()
            return try await written
        }
        guard let received, let row = received else {
            // Nothing found (the transaction commits and answers nil), or this task was
            // cancelled (the transaction, cancelled with it, throws).
            decisionSink.finish()
            return try await written
        }
        let decision: Decision
        do {
            decision = try decide(row)
        } catch {
            decisionSink.yield(.failure(error))
            decisionSink.finish()
            // Wait for the rollback, so the row is unlocked when the caller sees the error.
            _ = try? await written
            throw error
        }
        decisionSink.yield(.success(decision))
        decisionSink.finish()
        return try await written
    }

    /// The transaction half of ``decideUnderLock(read:decide:apply:)``: reads, hands the row
    /// out, waits for the decision, applies it.
    private func runDecidingTransaction<Row: Sendable, Decision: Sendable, Output: Sendable>(
        read: @escaping @Sendable (PostgresConnection, Logger) async throws -> Row?,
        apply: @escaping @Sendable (Row, Decision, PostgresConnection, Logger) async throws -> Output,
        found: AsyncThrowingStream<Row?, any Error>.Continuation,
        decisions: AsyncStream<Result<Decision, any Error>>
    ) async throws -> Output? {
        let logger = self.logger
        do {
            return try await transaction { connection in
                let row = try await read(connection, logger)
                found.yield(row)
                found.finish()
                guard let row else { return nil }
                var answers = decisions.makeAsyncIterator()
                // No answer: the caller is gone (deadline passed, or cancelled); roll back.
                guard let answer = await answers.next() else { throw CancellationError() }
                return try await apply(row, try answer.get(), connection, logger)
            }
        } catch {
            // Also when the deadline passed before the read: the caller stops waiting for a row.
            found.finish(throwing: error)
            throw error
        }
    }

    /// Scopes and `amr` values are stored space-separated.
    private static func oauthWords(_ text: String) -> [String] {
        // Over bytes: scopes are ASCII (RFC 6749 §3.3), and String's own split walks Characters.
        text.utf8.split(separator: UInt8(ascii: " ")).map { String(Substring($0)) }
    }
}
