import Foundation
import QRLoginCore
import QRLoginSQLite
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
