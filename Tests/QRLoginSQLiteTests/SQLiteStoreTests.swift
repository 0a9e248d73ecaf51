import Foundation
import QRLoginCore
import QRLoginOAuth
import QRLoginSQLite
import QRLoginTestSupport
import Testing

/// What only the SQLite store has: files, migrations and rollback of failed side effects.
@Suite("SQLiteStore")
struct SQLiteStoreTests {
    @Test func dataSurvivesCloseAndReopen() async throws {
        let path = TemporaryDatabase.path()
        defer { TemporaryDatabase.remove(path) }
        let account = Fixtures.account()
        var request = Fixtures.loginRequest()
        try Fixtures.scan(&request)

        let first = try await SQLiteStore.open(path: path)
        try await first.createAccount(account)
        try await first.upsertDevice(Fixtures.device())
        try await first.insertToken(Fixtures.token())
        try await first.insertLoginRequest(request)
        try await first.close()

        let second = try await SQLiteStore.open(path: path)
        #expect(try await second.account(username: "ALICE") == account)
        #expect(try await second.devices(accountId: "acc-1") == [Fixtures.device()])
        #expect(try await second.token(hash: Fixtures.token().hash) == Fixtures.token())
        #expect(try await second.loginRequest(id: "req-1") == request)
        try await second.close()
    }

    @Test func migrationsAreIdempotent() async throws {
        let path = TemporaryDatabase.path()
        defer { TemporaryDatabase.remove(path) }
        for _ in 0..<3 {
            let store = try await SQLiteStore.open(path: path)
            #expect(try await store.schemaVersion() == SQLiteStore.latestSchemaVersion)
            try await store.close()
        }
        #expect(SQLiteStore.latestSchemaVersion >= 1)
    }

    @Test func usesWriteAheadLogging() async throws {
        let path = TemporaryDatabase.path()
        defer { TemporaryDatabase.remove(path) }
        let store = try await SQLiteStore.open(path: path)
        try await store.createAccount(Fixtures.account())
        #expect(FileManager.default.fileExists(atPath: path + "-wal"))
        try await store.close()
    }

    /// Checkpoints run on the checkpointer's thread, not in callers' commits, and the log stays
    /// bounded: without them 400 commits would leave at least 400 frames in the WAL (SQLite's own
    /// automatic checkpoint would not start before 1,000).
    @Test func walIsCheckpointedInTheBackgroundAndStaysBounded() async throws {
        let path = TemporaryDatabase.path()
        defer { TemporaryDatabase.remove(path) }
        let store = try await SQLiteStore.open(path: path, checkpointFrames: 8)
        for index in 0..<400 {
            try await store.insertLoginRequest(Fixtures.loginRequest("req-\(index)"))
        }
        let deadline = Date().addingTimeInterval(10)
        while store.checkpointPasses.background == 0, Date() < deadline {
            try await Task.sleep(for: .milliseconds(10))
        }
        #expect(store.checkpointPasses.background > 0)
        // A frame is a 4 KiB page plus a 24-byte header. The 400 commits wrote about 1,000 frames;
        // with checkpoints the log restarts from about 4 × 8 frames (later while a background
        // pass holds the checkpoint lock, as the commits go on), so it stays far below that.
        let walBytes = try #require(try FileManager.default.attributesOfItem(atPath: path + "-wal")[.size] as? Int)
        #expect(walBytes < 400 * (4096 + 24) + 32, "WAL has \(walBytes) bytes")
        try await store.close()
        #expect(!FileManager.default.fileExists(atPath: path + "-wal"), "the last close checkpoints and removes the log")

        let reopened = try await SQLiteStore.open(path: path)
        #expect(try await reopened.loginRequest(id: "req-0") == Fixtures.loginRequest("req-0"))
        #expect(try await reopened.loginRequest(id: "req-399") == Fixtures.loginRequest("req-399"))
        try await reopened.close()
    }

    /// Writers from many tasks while checkpoints run both in the background and inline (a
    /// threshold of 2 frames makes the inline bound, 8 frames, come round every few commits):
    /// no write fails and none is lost.
    @Test func concurrentWritesWhileCheckpointingLoseNothing() async throws {
        let path = TemporaryDatabase.path()
        defer { TemporaryDatabase.remove(path) }
        let store = try await SQLiteStore.open(path: path, checkpointFrames: 2)
        try await withThrowingTaskGroup(of: Void.self) { group in
            for writer in 0..<8 {
                group.addTask {
                    for index in 0..<100 {
                        try await store.insertLoginRequest(Fixtures.loginRequest("req-\(writer)-\(index)"))
                    }
                }
            }
            try await group.waitForAll()
        }
        let passes = store.checkpointPasses
        #expect(passes.background + passes.inline > 0)
        try await store.close()

        let reopened = try await SQLiteStore.open(path: path)
        for writer in 0..<8 {
            for index in [0, 57, 99] {
                #expect(try await reopened.loginRequest(id: "req-\(writer)-\(index)") != nil)
            }
        }
        try await reopened.close()
    }

    @Test func twoStoresOnOneFileStillHaveOneWinner() async throws {
        let path = TemporaryDatabase.path()
        defer { TemporaryDatabase.remove(path) }
        let a = try await SQLiteStore.open(path: path)
        let b = try await SQLiteStore.open(path: path)
        try await a.insertLoginRequest(Fixtures.loginRequest())
        let results = await withTaskGroup(of: Bool.self) { group in
            for index in 0..<20 {
                let store = index.isMultiple(of: 2) ? a : b
                group.addTask {
                    do {
                        _ = try await store.transitionLoginRequest(id: "req-1") { request in
                            try Fixtures.scan(&request, device: "phone-\(index)")
                            return .none
                        }
                        return true
                    } catch {
                        return false
                    }
                }
            }
            return await group.reduce(into: [Bool]()) { $0.append($1) }
        }
        #expect(results.filter { $0 }.count == 1)
        try await a.close()
        try await b.close()
    }

    /// Clients are kept in memory after a read; a change by another connection to the file (the
    /// `qrlogin clients` CLI next to a running server) must still be seen by the very next read,
    /// and so must the store's own changes. The other connection writes something unrelated in
    /// between too, so a cache that only watched the clients it changed itself would fail here.
    @Test func clientsChangedByAnotherConnectionAreSeenAtOnce() async throws {
        let path = TemporaryDatabase.path()
        defer { TemporaryDatabase.remove(path) }
        let server = try await SQLiteStore.open(path: path)
        let cli = try await SQLiteStore.open(path: path)
        var client = OAuthStoreConformanceTests.client("app", type: .confidential)
        try await server.upsertClient(client)
        #expect(try await server.client(id: "app") == client)
        #expect(try await server.client(id: "app") == client, "a second read, from memory")

        client.secretHash = ClientSecret.hash("qrl_cs_rotated")
        try await cli.upsertClient(client)
        #expect(try await server.client(id: "app")?.secretHash == ClientSecret.hash("qrl_cs_rotated"), "a rotated secret holds at once")

        try await cli.createAccount(Fixtures.account())
        #expect(try await cli.removeClient(id: "app", at: Fixtures.t0))
        #expect(try await server.client(id: "app") == nil, "a removed client is gone at once")

        client.name = "Renamed"
        try await server.upsertClient(client)
        #expect(try await server.client(id: "app")?.name == "Renamed")
        #expect(try await cli.client(id: "app")?.name == "Renamed")
        #expect(try await server.removeClient(id: "app", at: Fixtures.t0))
        #expect(try await server.client(id: "app") == nil, "the store's own removal")
        try await server.close()
        try await cli.close()
    }

    @Test func failingSideEffectRollsBackTheTransition() async throws {
        let store = try await SQLiteStore.open(path: nil)
        try await store.createAccount(Fixtures.account())
        try await store.insertToken(Fixtures.token("tok-taken"))
        var scanned = Fixtures.loginRequest()
        try Fixtures.scan(&scanned)
        try await store.insertLoginRequest(scanned)

        // A token id that already exists makes the insert fail after the request was updated.
        await #expect(throws: (any Error).self) {
            try await store.transitionLoginRequest(id: "req-1") { request in
                try Fixtures.confirm(&request)
                return LoginSideEffects(upsertDevice: Fixtures.device("pc-key", type: .pc), insertToken: Fixtures.token("tok-taken"))
            }
        }
        #expect(try await store.loginRequest(id: "req-1") == scanned)
        #expect(try await store.device(id: "pc-key", accountId: "acc-1") == nil)
        try await store.close()
    }

    @Test func closedStoreRefusesWork() async throws {
        let store = try await SQLiteStore.open(path: ":memory:")
        try await store.close()
        await #expect(throws: SQLiteStoreError.closed) { try await store.account(id: "acc-1") }
        try await store.close()
    }

    @Test func quotesAndInjectionAttemptsAreJustData() async throws {
        let store = try await SQLiteStore.open(path: nil)
        let name = "Robert'); DROP TABLE accounts;--"
        try await store.createAccount(Fixtures.account(username: name))
        #expect(try await store.account(username: name)?.username == name)
        #expect(try await store.account(id: "acc-1") != nil)
        try await store.close()
    }
}
