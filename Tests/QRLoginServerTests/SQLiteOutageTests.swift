import AsyncHTTPClient
import Foundation
import NIOHTTP1
import QRLoginCore
import QRLoginSQLite
@testable import QRLoginServer
import Testing

/// A SQLite database that cannot serve (closed for shutdown, locked by another process past the
/// busy timeout, out of disk space, failing I/O) is the service's trouble, not a bug: 503 with a
/// retry, as an unreachable PostgreSQL is, not a bare 500.
@Suite("SQLite that cannot serve")
struct SQLiteOutageTests {
    @Test("A SQLite store that cannot serve is 503 with Retry-After on the v1 API, the OAuth endpoints and UserInfo")
    func closedStoreIsServiceUnavailable() async throws {
        let store = try await SQLiteStore.open(path: nil)
        let server = try await LiveServer.start(store: store)
        let phone = try await server.signedInPhone("erin")
        try await store.close()

        for path in ["/health", "/health/ready"] {
            let answer = try await server.call(.GET, path)
            #expect(answer.status == .serviceUnavailable, "\(path)")
            #expect(try await server.json(answer)["code"] as? String == "store_unavailable", "\(path)")
        }
        let create = try await server.call(.POST, "/api/v1/qr", json: ["device": ["type": "cli", "name": "t"]], device: TestDevice())
        #expect(create.status == .serviceUnavailable)
        #expect(create.headers["Retry-After"].first == "1")
        let me = try await server.call(.GET, "/api/v1/me", device: phone, token: phone.token)
        #expect(me.status == .serviceUnavailable)

        let token = try await server.call(
            .POST, "/oauth/token", rawBody: "grant_type=refresh_token&refresh_token=qrl_rt_x&client_id=cli",
            headers: [("Content-Type", "application/x-www-form-urlencoded")]
        )
        #expect(token.status == .serviceUnavailable)
        #expect(token.headers["Retry-After"].first == "1")
        #expect(try await server.json(token)["error"] as? String == "temporarily_unavailable")
        let userInfo = try await server.call(.GET, "/oauth/userinfo", headers: [("Authorization", "Bearer qrl_oa_x")])
        #expect(userInfo.status == .serviceUnavailable)
        #expect(try await server.json(userInfo)["error"] as? String == "temporarily_unavailable")
        try await server.stop()
    }

    @Test("Which SQLite failures mean the database cannot serve now")
    func unavailableResultCodes() {
        // Primary codes and extended ones (SQLITE_BUSY_SNAPSHOT 517, SQLITE_IOERR_WRITE 778,
        // SQLITE_READONLY_DBMOVED 1032, SQLITE_CANTOPEN_NOTEMPDIR 270).
        for code in [5, 517, 7, 8, 1032, 10, 778, 13, 14, 270, 15] {
            #expect(SQLiteStoreError.sqlite(code: code, message: "").isUnavailable, "\(code)")
        }
        #expect(SQLiteStoreError.closed.isUnavailable)
        // Bugs and bad data stay 500: SQLITE_ERROR, SQLITE_LOCKED (a conflict within the store's
        // own connection), SQLITE_CORRUPT, SQLITE_CONSTRAINT_UNIQUE, SQLITE_MISUSE.
        for code in [1, 6, 262, 11, 2067, 21] {
            #expect(!SQLiteStoreError.sqlite(code: code, message: "").isUnavailable, "\(code)")
        }
        #expect(!SQLiteStoreError.malformedRow(column: "x").isUnavailable)
        #expect(!SQLiteStoreError.schemaTooNew(version: 99).isUnavailable)
    }
}
