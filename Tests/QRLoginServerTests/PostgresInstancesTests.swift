import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import QRLoginCore
@testable import QRLoginPostgres
import QRLoginServer
import QRLoginTestSupport
import Testing

/// Several instances on one PostgreSQL database, each with its own store (pool) and listener,
/// as separate processes would be: what one instance does, every other sees at once.
@Suite("Instances sharing one PostgreSQL database", .serialized, .enabled(if: TestPostgres.url != nil))
struct PostgresInstancesTests {
    /// Runs `body` with `count` live servers on one fresh schema, then stops them and drops it.
    func withInstances(
        _ count: Int = 2, user: String? = nil, timeout: Duration = .seconds(60), configure: @escaping (inout ServerConfiguration) -> Void = { _ in },
        _ body: ([LiveServer], [PostgresStore], [PostgresNotifier]) async throws -> Void
    ) async throws {
        let schema = TestPostgres.makeSchema()
        var stores: [PostgresStore] = []
        var listeners: [PostgresNotifier] = []
        var servers: [LiveServer] = []
        var failure: (any Error)?
        do {
            for _ in 0..<count {
                let store = try await TestPostgres.open(schema: schema, user: user, timeout: timeout)
                stores.append(store)
                let listener = PostgresNotifier(store: store, pingInterval: .seconds(1))
                listeners.append(listener)
                servers.append(try await LiveServer.start(store: store, notifier: listener, configure: configure))
            }
            // Each instance listens before the test starts (as /health/ready would wait for).
            for listener in listeners {
                for _ in 0..<200 where !listener.isListening { try await Task.sleep(for: .milliseconds(25)) }
                #expect(listener.isListening)
            }
            try await body(servers, stores, listeners)
        } catch {
            failure = error
        }
        for server in servers { try? await server.stop() }
        let admin = try await TestPostgres.open(schema: schema)
        try await admin.execute("DROP SCHEMA \(schema) CASCADE", binds())
        await admin.close()
        for store in stores { await store.close() }
        if let failure { throw failure }
    }

    /// The event the stream sends next, within `limit`.
    func nextEvent(_ events: inout EventReader, within limit: Duration = .seconds(5)) async throws -> EventReader.Event? {
        let start = ContinuousClock.now
        let event = try await events.next()
        #expect(ContinuousClock.now - start < limit, "the event took \(ContinuousClock.now - start)")
        return event
    }

    @Test("A PC waiting on one instance sees the scan and the confirm made through another, and its token works on both")
    func crossInstancePush() async throws {
        try await withInstances { servers, _, _ in
            let (a, b) = (servers[0], servers[1])
            let phone = try await b.signedInPhone("alice")
            let login = try await a.newLogin()
            var events = EventReader(try await a.openStream(login, on: .own))
            #expect(try await events.next()?.name == "pending")
            let scan = try await b.json(try await b.call(.POST, "/api/v1/qr/\(login.id)/scan", device: phone, token: phone.token))
            let scanned = try #require(try await nextEvent(&events))
            #expect(scanned.name == "scanned")
            let match = try #require(scanned.data["match"] as? Int)
            let confirm = try await b.call(.POST, "/api/v1/qr/\(login.id)/confirm", json: ["ticket": scan["ticket"] as? String ?? "", "match": match], device: phone, token: phone.token)
            #expect(confirm.status == .ok)
            let confirmed = try #require(try await nextEvent(&events))
            #expect(confirmed.name == "confirmed")
            let token = try #require((confirmed.data["token"] as? [String: Any])?["accessToken"] as? String)
            for server in servers {
                #expect(try await server.call(.GET, "/api/v1/me", device: login.device, token: token).status == .ok)
            }
        }
    }

    @Test("The readiness probe can be asked again and again: each ping gives its connection back")
    func readinessProbeRepeats() async throws {
        try await withInstances(1, timeout: .seconds(3)) { servers, _, _ async throws in
            // Far more probes than the pool's 8 connections: a probe that kept its connection
            // would make the ninth wait for the deadline and answer 503.
            for probe in 0..<40 {
                #expect(try await servers[0].call(.GET, "/health/ready").status == .ok, "probe \(probe)")
            }
        }
    }

    @Test("A proof accepted by one instance is refused as a replay by another")
    func replayAcrossInstances() async throws {
        try await withInstances { servers, _, _ in
            let (a, b) = (servers[0], servers[1])
            let phone = try await a.signedInPhone("bob")
            let proof = try phone.signer.proof(method: "GET", url: testBaseURL + "/api/v1/me", accessToken: phone.token, issuedAt: a.clock.now)
            let headers = [("DPoP", proof)]
            #expect(try await a.call(.GET, "/api/v1/me", token: phone.token, headers: headers).status == .ok)
            let replay = try await b.call(.GET, "/api/v1/me", token: phone.token, headers: headers)
            #expect(replay.status == .unauthorized)
            #expect(try await b.json(replay)["code"] as? String == "dpop_proof_replayed")
        }
    }

    /// Makes every commit that writes a login request from a PC named `slow commit` take two
    /// seconds, and one named `failing commit` fail. The work runs at commit, in a deferred
    /// trigger: after PostgreSQL has written the statement's `CommandComplete`, which it sends
    /// with whatever error ends the connection or the commit.
    func delayOrFailCommits(_ store: PostgresStore) async throws {
        try await store.execute(
            """
            CREATE FUNCTION at_commit() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                IF NEW.requester_name = 'slow commit' THEN PERFORM pg_sleep(2); END IF;
                IF NEW.requester_name = 'failing commit' THEN RAISE EXCEPTION 'refused at commit'; END IF;
                RETURN NULL;
            END $$
            """, binds()
        )
        try await store.execute(
            """
            CREATE CONSTRAINT TRIGGER at_commit AFTER INSERT OR UPDATE ON login_requests
            DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION at_commit()
            """, binds()
        )
    }

    /// How many login requests the database holds.
    func loginRequestCount(_ store: PostgresStore) async throws -> Int? {
        try await store.first("SELECT count(*) AS n FROM login_requests", binds()) { try $0.int("n") }
    }

    @Test("A create whose connection dies while PostgreSQL commits it answers 503 at once, not a 201 for a request that does not exist")
    func connectionLostDuringCommit() async throws {
        // A deadline far above the answer expected, so a call left hanging shows as slow.
        try await withInstances(1, timeout: .seconds(30)) { servers, stores, _ in
            try await delayOrFailCommits(stores[0])
            // Several times: the connection's end races the store's next step.
            for attempt in 0..<5 {
                // The server stopping mid-commit, as `pg_ctl stop -m immediate` does it: the
                // backend ends and its transaction with it.
                let killer = Task {
                    for _ in 0..<100 {
                        try await Task.sleep(for: .milliseconds(50))
                        let killed = try await stores[0].first(
                            """
                            SELECT count(pg_terminate_backend(pid)) AS n FROM pg_stat_activity
                            WHERE wait_event = 'PgSleep' AND query LIKE 'INSERT INTO login_requests%'
                            """, binds()
                        ) { try $0.int("n") }
                        if killed == 1 { return true }
                    }
                    return false
                }
                let started = ContinuousClock.now
                let created = try await servers[0].call(.POST, "/api/v1/qr", json: ["device": ["type": "cli", "name": "slow commit"]], device: TestDevice())
                let took = ContinuousClock.now - started
                #expect(try await killer.value, "attempt \(attempt): no commit to interrupt")
                // Before, postgres-nio took the INSERT's CommandComplete, sent along with the
                // termination notice, for success: 201 for a request that was never committed.
                #expect(created.status == .serviceUnavailable, "attempt \(attempt): answered \(created.status)")
                #expect(took < .seconds(10), "attempt \(attempt): answered after \(took)")
                #expect(try await loginRequestCount(stores[0]) == 0)
            }
        }
    }

    @Test("A create whose commit fails answers an error, not a 201 for a request that does not exist")
    func failedCommitIsAnError() async throws {
        try await withInstances(1) { servers, stores, _ in
            try await delayOrFailCommits(stores[0])
            let created = try await servers[0].call(.POST, "/api/v1/qr", json: ["device": ["type": "cli", "name": "failing commit"]], device: TestDevice())
            #expect(created.status == .serviceUnavailable, "answered \(created.status) for a request that was never committed")
            #expect(try await loginRequestCount(stores[0]) == 0)
            // The store works on afterwards: the failed commit's connection left the pool.
            #expect(try await servers[0].call(.POST, "/api/v1/qr", json: ["device": ["type": "cli", "name": "laptop"]], device: TestDevice()).status == .created)
            #expect(try await loginRequestCount(stores[0]) == 1)
        }
    }

    @Test("Rate limits are counted once for all instances, not once per instance")
    func sharedRateLimits() async throws {
        try await withInstances(configure: { $0.rateLimits = [.create: 3] }) { servers, _, _ in
            var statuses: [HTTPResponseStatus] = []
            for index in 0..<5 {
                let server = servers[index % 2]
                statuses.append(try await server.call(.POST, "/api/v1/qr", json: ["device": ["type": "cli", "name": "t"]], device: TestDevice()).status)
            }
            #expect(statuses == [.created, .created, .created, .tooManyRequests, .tooManyRequests])
        }
    }

    @Test("A listener whose connection is killed listens again, and a confirm made meanwhile still reaches the PC")
    func listenerComesBack() async throws {
        try await withInstances { servers, stores, listeners in
            let (a, b) = (servers[0], servers[1])
            let listener = listeners[0]
            let phone = try await b.signedInPhone("carol")
            let login = try await a.newLogin()
            var events = EventReader(try await a.openStream(login, on: .own))
            #expect(try await events.next()?.name == "pending")
            let pid = listener.listenerBackendPID
            #expect(pid != 0)
            try await stores[1].execute("SELECT pg_terminate_backend($1::integer)", binds(.int(pid)))
            // Changes committed while nobody listens on A are re-read once it listens again.
            let scan = try await b.json(try await b.call(.POST, "/api/v1/qr/\(login.id)/scan", device: phone, token: phone.token))
            let scanned = try #require(try await nextEvent(&events))
            #expect(scanned.name == "scanned")
            let match = try #require(scanned.data["match"] as? Int)
            _ = try await b.call(.POST, "/api/v1/qr/\(login.id)/confirm", json: ["ticket": scan["ticket"] as? String ?? "", "match": match], device: phone, token: phone.token)
            #expect(try await nextEvent(&events)?.name == "confirmed")
            #expect(listener.listenCount >= 2)
            #expect(listener.listenerBackendPID != pid)
        }
    }

    @Test("While the database refuses connections: 503 store_unavailable fast, not ready; once it is back: ready and working, without a restart")
    func outageAndRecovery() async throws {
        let user = "qrl_outage_" + String(UInt32.random(in: 0...UInt32.max), radix: 16)
        let admin = try await TestPostgres.open(schema: "public")
        try await admin.execute("CREATE ROLE \(user) LOGIN SUPERUSER", binds())
        do {
            try await withInstances(1, user: user, timeout: .seconds(2)) { servers, _, _ in
                let server = servers[0]
                let phone = try await server.signedInPhone("dave")
                #expect(try await server.call(.GET, "/health/ready").status == .ok)

                // The outage: no new connections, and the open ones cut.
                try await admin.execute("ALTER ROLE \(user) NOLOGIN", binds())
                try await admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = $1", binds(.text(user)))
                for path in ["/health", "/health/ready"] {
                    let start = ContinuousClock.now
                    let answer = try await server.call(.GET, path)
                    #expect(answer.status == .serviceUnavailable, "\(path)")
                    #expect(try await server.json(answer)["code"] as? String == "store_unavailable")
                    #expect(ContinuousClock.now - start < .seconds(5), "\(path) took \(ContinuousClock.now - start)")
                }
                let create = try await server.call(.POST, "/api/v1/qr", json: ["device": ["type": "cli", "name": "t"]], device: TestDevice())
                #expect(create.status == .serviceUnavailable)
                // The OAuth endpoints say the same in their own words (RFC 6749 error JSON), with
                // a proof (the replay cache cannot answer) and without (the client lookup).
                for proof in [true, false] {
                    let device = TestDevice()
                    let answer = try await server.call(
                        .POST, "/oauth/token", rawBody: "grant_type=refresh_token&refresh_token=x&client_id=cli", device: proof ? device : nil,
                        headers: [("Content-Type", "application/x-www-form-urlencoded")]
                    )
                    #expect(answer.status == .serviceUnavailable, "proof: \(proof)")
                    #expect(answer.headers["Retry-After"].first == "1")
                    #expect(try await server.json(answer)["error"] as? String == "temporarily_unavailable", "proof: \(proof)")
                }
                // So does UserInfo, instead of calling the token invalid or failing with a bare 500.
                let userInfo = try await server.call(.GET, "/oauth/userinfo", headers: [("Authorization", "Bearer qrl_oa_x")])
                #expect(userInfo.status == .serviceUnavailable)
                #expect(userInfo.headers["Retry-After"].first == "1")
                #expect(try await server.json(userInfo)["error"] as? String == "temporarily_unavailable")

                // Back: the instance recovers by itself.
                try await admin.execute("ALTER ROLE \(user) LOGIN", binds())
                var ready = false
                for _ in 0..<100 where !ready {
                    ready = try await server.call(.GET, "/health/ready").status == .ok
                    if !ready { try await Task.sleep(for: .milliseconds(100)) }
                }
                #expect(ready, "not ready 10 s after the database came back")
                let login = try await server.newLogin()
                #expect(try await server.call(.POST, "/api/v1/qr/\(login.id)/scan", device: phone, token: phone.token).status == .ok)
            }
        } catch {
            _ = try? await admin.execute("DROP ROLE IF EXISTS \(user)", binds())
            await admin.close()
            throw error
        }
        try await admin.execute("DROP ROLE IF EXISTS \(user)", binds())
        await admin.close()
    }
}
