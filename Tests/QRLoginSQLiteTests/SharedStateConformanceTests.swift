import Foundation
import QRLoginCore
@testable import QRLoginPostgres
import QRLoginSQLite
import QRLoginTestSupport
import Testing

/// The state instances share besides the records: the replay cache, rate-limit buckets and the
/// PC's newest read. The in-memory versions (one instance) and the PostgreSQL ones (many) must
/// answer alike; the shared ones keep their state in the database, not in the adapter (the
/// server tests run two instances with pools of their own).
@Suite("Shared state: replay cache, rate limits, pickups")
struct SharedStateConformanceTests {
    enum Kind: String, CaseIterable, CustomTestStringConvertible, Sendable {
        case memory, sqlite, postgres
        static var allCases: [Kind] { TestPostgres.url == nil ? [.memory, .sqlite] : [.memory, .sqlite, .postgres] }
        var testDescription: String { rawValue }

        /// A replay cache and buckets for each of two callers: the same objects in memory (one
        /// process), two adapters on one database for PostgreSQL.
        func withPair(_ body: ((any ReplayCache, any RateLimitBuckets), (any ReplayCache, any RateLimitBuckets), PostgresStore?) async throws -> Void) async throws {
            switch self {
            case .memory:
                let pair = (MemoryReplayCache() as any ReplayCache, MemoryRateLimitBuckets() as any RateLimitBuckets)
                try await body(pair, pair, nil)
            case .sqlite:
                // One instance: the replay cache in its database, the buckets in memory.
                let store = try await SQLiteStore.open(path: ":memory:")
                let buckets = MemoryRateLimitBuckets()
                try await body((SQLiteReplayCache(store: store), buckets), (SQLiteReplayCache(store: store), buckets), nil)
                try await store.close()
            case .postgres:
                try await TestPostgres.withStore { first in
                    try await body((PostgresReplayCache(store: first), PostgresRateLimitBuckets(store: first)),
                                   (PostgresReplayCache(store: first), PostgresRateLimitBuckets(store: first)), first)
                }
            }
        }
    }

    private let t0 = Fixtures.t0

    @Test(arguments: Kind.allCases)
    func aKeyIsAReplayUntilItExpiresThenFreeAgain(kind: Kind) async throws {
        try await kind.withPair { a, b, _ async throws in
            #expect(try await a.0.insert("thumb:jti-1", expiresAt: t0.addingTimeInterval(60), now: t0))
            #expect(try await b.0.insert("thumb:jti-1", expiresAt: t0.addingTimeInterval(70), now: t0.addingTimeInterval(10)) == false)
            #expect(try await b.0.insert("thumb:jti-2", expiresAt: t0.addingTimeInterval(60), now: t0.addingTimeInterval(10)))
            // Expired but not yet deleted: a fresh proof with that id is accepted.
            #expect(try await b.0.insert("thumb:jti-1", expiresAt: t0.addingTimeInterval(130), now: t0.addingTimeInterval(61)))
            #expect(try await a.0.insert("thumb:jti-1", expiresAt: t0.addingTimeInterval(140), now: t0.addingTimeInterval(62)) == false)
        }
    }

    @Test("On SQLite a proof seen before a restart (or a crash) is still a replay after it; expired keys are deleted")
    func sqliteReplayKeysOutliveTheProcess() async throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("replay-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let path = folder.appendingPathComponent("qrlogin.sqlite").path
        let first = try await SQLiteStore.open(path: path)
        #expect(try await SQLiteReplayCache(store: first).insert("thumb:jti-1", expiresAt: t0.addingTimeInterval(60), now: t0))
        #expect(try await SQLiteReplayCache(store: first).insert("thumb:jti-2", expiresAt: t0.addingTimeInterval(5), now: t0))
        try await first.close()
        let second = try await SQLiteStore.open(path: path)
        #expect(try await SQLiteReplayCache(store: second).insert("thumb:jti-1", expiresAt: t0.addingTimeInterval(70), now: t0.addingTimeInterval(10)) == false)
        #expect(try second.deleteReplayKeys(expiredBefore: t0.addingTimeInterval(30)) == 1)
        #expect(try second.deleteReplayKeys(expiredBefore: t0.addingTimeInterval(30)) == 0)
        #expect(try await SQLiteReplayCache(store: second).insert("thumb:jti-1", expiresAt: t0.addingTimeInterval(70), now: t0.addingTimeInterval(11)) == false)
        try await second.close()
    }

    @Test(arguments: Kind.allCases)
    func concurrentInsertsOfOneKeyHaveOneWinner(kind: Kind) async throws {
        try await kind.withPair { a, b, _ async throws in
            let caches = [a.0, b.0]
            let fresh = try await withThrowingTaskGroup(of: Bool.self) { group in
                for index in 0..<40 {
                    group.addTask { try await caches[index % 2].insert("thumb:race", expiresAt: t0.addingTimeInterval(60), now: t0) }
                }
                return try await group.reduce(into: 0) { $0 += $1 ? 1 : 0 }
            }
            #expect(fresh == 1)
        }
    }

    @Test(arguments: Kind.allCases)
    func aBucketIsSharedAndRefillsAtItsRate(kind: Kind) async throws {
        try await kind.withPair { a, b, _ async throws in
            // 6 a minute: one token every 10 s, bursts of 6.
            for index in 0..<6 {
                #expect(try await [a.1, b.1][index % 2].take(key: "create 10.0.0.1", limit: 6, now: t0) == nil, "token \(index)")
            }
            #expect(try await a.1.take(key: "create 10.0.0.1", limit: 6, now: t0) == 10)
            #expect(try await b.1.take(key: "create 10.0.0.1", limit: 6, now: t0.addingTimeInterval(4)) == 6)
            #expect(try await b.1.take(key: "create 10.0.0.2", limit: 6, now: t0) == nil, "another client has its own bucket")
            #expect(try await a.1.take(key: "create 10.0.0.1", limit: 6, now: t0.addingTimeInterval(10)) == nil)
            #expect(try await a.1.take(key: "create 10.0.0.1", limit: 6, now: t0.addingTimeInterval(10)) != nil)
        }
    }

    @Test(arguments: Kind.allCases)
    func concurrentTakesNeverExceedTheBucket(kind: Kind) async throws {
        try await kind.withPair { a, b, _ async throws in
            let buckets = [a.1, b.1]
            let taken = try await withThrowingTaskGroup(of: Bool.self) { group in
                for index in 0..<50 {
                    group.addTask { try await buckets[index % 2].take(key: "scan 10.0.0.9", limit: 20, now: t0) == nil }
                }
                return try await group.reduce(into: 0) { $0 += $1 ? 1 : 0 }
            }
            #expect(taken == 20)
        }
    }

    @Test(.enabled(if: TestPostgres.url != nil))
    func expiredReplayKeysAndIdleBucketsAreDeletedAndSecretsAreMadeOnce() async throws {
        try await TestPostgres.withStore { store in
            for index in 0..<25 {
                _ = try await store.insertReplayKey("k\(index)", expiresAt: t0.addingTimeInterval(index < 20 ? 10 : 100), now: t0)
            }
            #expect(try await store.deleteReplayKeys(expiredBefore: t0.addingTimeInterval(50), batch: 7) == 20)
            #expect(try await store.insertReplayKey("k21", expiresAt: t0.addingTimeInterval(200), now: t0.addingTimeInterval(60)) == false)
            _ = try await store.takeRateLimitToken(key: "a", limit: 5, now: t0)
            _ = try await store.takeRateLimitToken(key: "b", limit: 5, now: t0.addingTimeInterval(100))
            #expect(try await store.deleteRateLimits(idleSince: t0.addingTimeInterval(50)) == 1)
            let first = try await store.sharedSecret(named: "k") { [1, 2, 3] }
            let second = try await store.sharedSecret(named: "k") { [9, 9, 9] }
            #expect(first == [1, 2, 3] && second == [1, 2, 3])
        }
    }

    @Test(.enabled(if: TestPostgres.url != nil))
    func aPickupSupersedesEarlierOnesInTheRow() async throws {
        try await TestPostgres.withStore { store in
            let pickups = PostgresPickups(store: store)
            try await store.insertLoginRequest(Fixtures.loginRequest())
            let first = try await pickups.begin("req-1")
            let second = try await pickups.begin("req-1")
            #expect(second == first + 1)
            let request = try #require(try await store.loginRequest(id: "req-1"))
            #expect(pickups.isCurrent(second, of: request))
            #expect(!pickups.isCurrent(first, of: request))
            // A transition keeps the generation.
            let scanned = try await store.transitionLoginRequest(id: "req-1") { request in
                try Fixtures.scan(&request)
                return .none
            }
            #expect(scanned.pickupGeneration == second)
            await #expect(throws: QRLoginError.notFound) { try await pickups.begin("nobody") }
        }
    }
}

@Suite("Opening a PostgreSQL store", .enabled(if: TestPostgres.url != nil))
struct PostgresOpenTests {
    @Test("A database that refuses the user, or is not there, is reported at once, in plain words")
    func unreachableDatabasesAreReportedAtOnce() async throws {
        let url = try #require(TestPostgres.url)
        let wrongUser = url.replacingOccurrences(of: "postgres://qrlogin@", with: "postgres://nobody_here@")
        await #expect {
            _ = try await PostgresStore.open(url: wrongUser)
        } throws: {
            guard case .cannotConnect(_, let reason) = $0 as? PostgresStoreError else { return false }
            return reason.contains("nobody_here")
        }
        let start = ContinuousClock.now
        await #expect {
            _ = try await PostgresStore.open(url: "postgres://x@127.0.0.1:1/db?sslmode=disable", timeout: .seconds(2))
        } throws: {
            guard case .cannotConnect(let place, _) = $0 as? PostgresStoreError else { return false }
            return place == "postgres://x@127.0.0.1:1/db"
        }
        #expect(ContinuousClock.now - start < .seconds(3))
    }
}
