import Foundation
import QRLoginCore
import QRLoginOAuth
@testable import QRLoginSQLite
import QRLoginTestSupport
import Testing

/// Since schema 6, tokens that name their family sit with it (`oauth_tokens`, keyed by family
/// and hash); the tokens of a database made before stay in `oauth_tokens_v1` and keep working
/// until they expire.
@Suite("SQLite token tables")
struct SQLiteTokenTablesTests {
    private let t0 = Fixtures.t0

    /// A database at schema 5 holding a family with an access and a refresh token, as a build
    /// before schema 6 wrote them.
    private func databaseBeforeSchema6(at path: String) throws {
        let connection = try SQLiteConnection.open(path: path)
        defer { try? connection.close() }
        try connection.execute("PRAGMA journal_mode = WAL", cached: false)
        for statement in SQLiteMigrations.steps[..<5].joined() { try connection.execute(statement, cached: false) }
        try connection.execute("PRAGMA user_version = 5", cached: false)
        let account = Fixtures.account()
        try connection.execute(
            "INSERT INTO accounts (id, username, username_key, password_hash, phone, display_name, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
            [.text(account.id), .text(account.username), .text(account.username.lowercased()), .text(account.passwordHash), .null,
             .text(account.displayName), account.createdAt.sqlite]
        )
        try connection.execute(
            "INSERT INTO token_families (id, client_id, account_id, scopes, refresh_jkt, origin, created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [.text("fam"), .text("cli"), .text(account.id), .text("openid offline_access"), .null, .text(GrantType.deviceCode.rawValue), t0.sqlite,
             t0.addingTimeInterval(86_400).sqlite]
        )
        for (hash, kind, lifetime) in [("old-at", "access", 3600.0), ("old-rt", "refresh", 86_400.0)] {
            try connection.execute(
                "INSERT INTO oauth_tokens (hash, id, kind, family_id, scopes, jkt, created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                [.text(hash), .text(hash + "-id"), .text(kind), .text("fam"), .text("openid offline_access"), .null, t0.sqlite,
                 t0.addingTimeInterval(lifetime).sqlite]
            )
        }
    }

    @Test func tokensIssuedBeforeTheyNamedTheirFamilyKeepWorking() async throws {
        let path = TemporaryDatabase.path()
        defer { TemporaryDatabase.remove(path) }
        try databaseBeforeSchema6(at: path)
        let store = try await SQLiteStore.open(path: path)
        #expect(try await store.schemaVersion() == SQLiteStore.latestSchemaVersion)

        // Found by hash alone (they name no family), and only so.
        let access = try #require(try await store.oauthToken(hash: "old-at", family: nil))
        #expect(access.token.kind == .access)
        #expect(access.family.id == "fam")
        #expect(access.username == "alice")
        #expect(try await store.oauthToken(hash: "old-at", family: "fam") == nil)
        #expect(try await store.tokenFamilies(accountId: "acc-1", at: t0).map(\.expiresAt) == [t0.addingTimeInterval(86_400)])

        // A refresh marks the old token where it is and writes the new ones with their family.
        let later = t0.addingTimeInterval(10)
        let new = OAuthToken(id: "new-rt", kind: .refresh, hash: "0000000001.new-rt", familyId: "fam", scopes: ["openid", "offline_access"],
                             jkt: nil, createdAt: later, expiresAt: later.addingTimeInterval(90_000))
        let proof = ProofRecord(key: "thumb:jti", expiresAt: later.addingTimeInterval(60), now: later)
        let rotated = try await store.useRefreshToken(hash: "old-rt", family: nil, at: later, recording: proof) { token, family in
            #expect(token.hash == "old-rt")
            return .rotate(tokens: [new], familyExpiresAt: RefreshPolicy.familyExpiry(family.expiresAt, outlivedBy: new.expiresAt, now: later))
        }
        #expect(rotated != nil)
        #expect(try #require(try await store.oauthToken(hash: "old-rt", family: nil)).token.usedAt == later)
        #expect(try await store.oauthToken(hash: "0000000001.new-rt", family: "fam")?.token == new)
        #expect(try await store.oauthToken(hash: "0000000001.new-rt", family: nil) == nil, "a new token is found with its family only")
        #expect(try await store.tokenFamilies(accountId: "acc-1", at: later).map(\.expiresAt) == [new.expiresAt],
                "the listing reads both tables")

        // The old refresh token again: a replay, whose family is revoked.
        #expect(try await store.useRefreshToken(hash: "old-rt", family: nil, at: later) { token, _ in
            token.usedAt == nil ? .rotate(tokens: [], familyExpiresAt: nil) : .revokeFamily
        } == .revokeFamily)
        #expect(try await store.oauthToken(hash: "0000000001.new-rt", family: "fam")?.family.revokedAt == later)

        // Revocation and the cleanup reach the old table too.
        #expect(try await store.revokeOAuthToken(hash: "old-at", family: nil, clientId: "cli", at: later) == .accessToken)
        #expect(try #require(try await store.oauthToken(hash: "old-at", family: nil)).token.revokedAt == later)
        #expect(try await store.deleteOAuthTokens(expiredBefore: t0.addingTimeInterval(3601)) == 1)
        #expect(try await store.oauthToken(hash: "old-at", family: nil) == nil)
        #expect(try await store.deleteOAuthTokens(expiredBefore: later.addingTimeInterval(100_000)) == 3, "the old refresh token, the new one, the family")
        try await store.close()
    }

    @Test func theCleanupReachesEveryFamilysTokensInShortTransactions() async throws {
        let store = try await SQLiteStore.open(path: nil)
        try await store.createAccount(Fixtures.account())
        // More families than one cleanup transaction takes, each with an access token that has
        // expired by the cutoff and a refresh token that has not.
        let count = SQLiteStore.cleanupFamilies * 2 + 7
        try store.transaction { connection in
            for index in 0..<count {
                try SQLiteStore.insert(OAuthStoreConformanceTests.grant(family: String(format: "fam-%04d", index)), on: connection)
            }
        }
        #expect(try await store.deleteOAuthTokens(expiredBefore: t0.addingTimeInterval(3601)) == count)
        #expect(try await store.oauthToken(hash: "hash-fam-0000-at", family: "fam-0000") == nil)
        #expect(try await store.oauthToken(hash: "hash-fam-\(String(format: "%04d", count - 1))-at", family: "fam-\(String(format: "%04d", count - 1))") == nil)
        #expect(try await store.oauthToken(hash: "hash-fam-0300-rt", family: "fam-0300") != nil)
        #expect(try await store.deleteOAuthTokens(expiredBefore: t0.addingTimeInterval(3601)) == 0, "nothing left to delete")
        // Past the refresh tokens and the families: every token and family.
        #expect(try await store.deleteOAuthTokens(expiredBefore: t0.addingTimeInterval(86_401)) == count * 2)
        try await store.close()
    }
}
