import Foundation
import Logging
import QRLoginCore
@testable import QRLoginServer
import ServiceLifecycle
import Testing

/// The background service that deletes long-expired login requests, run in a service group
/// over a memory store on a manual clock.
@Suite("Cleanup service")
struct CleanupServiceTests {
    static let retention: TimeInterval = 3600

    /// A pending request created at `clock.now`, expiring `ttl` seconds later.
    private func request(_ id: String, clock: ManualClock, ttl: TimeInterval = 120) -> LoginRequest {
        LoginRequest(
            id: id, pollSecretHash: Secrets.hash("qrl_ps_\(id)"), pcKeyThumbprint: "pc-key", pcPublicKeyJWK: #"{"kty":"EC"}"#,
            requester: RequesterContext(type: .pc, name: "PC", ip: "198.51.100.7", userAgent: "test"),
            createdAt: clock.now, expiresAt: clock.now.addingTimeInterval(ttl)
        )
    }

    /// Runs a cleanup service every `interval` seconds in its own service group.
    private func start(store: any Store, clock: ManualClock, interval: TimeInterval) -> (ServiceGroup, Task<Void, any Error>) {
        let service = CleanupService(store: store, clock: clock, interval: interval, retention: Self.retention, keyLifetime: 3600, logger: Logger(label: "test"))
        let group = ServiceGroup(configuration: .init(services: [service], logger: Logger(label: "test")))
        return (group, Task { try await group.run() })
    }

    /// Waits up to 5 s for request `id` to be gone from `store`.
    private func waitUntilDeleted(_ id: String, in store: any Store) async throws -> Bool {
        // Returns as soon as it is gone; the limit only catches "never deleted" on a busy machine.
        let deadline = ContinuousClock.now + .seconds(60)
        while ContinuousClock.now < deadline {
            if try await store.loginRequest(id: id) == nil { return true }
            try await Task.sleep(for: .milliseconds(10))
        }
        return false
    }

    /// Triggers graceful shutdown and returns how long the group took to end.
    private func shutDown(_ group: ServiceGroup, _ running: Task<Void, any Error>) async throws -> Duration {
        let start = ContinuousClock.now
        await group.triggerGracefulShutdown()
        try await running.value
        return ContinuousClock.now - start
    }

    @Test func deletesLongExpiredRequestsAndKeepsLiveOnes() async throws {
        let clock = ManualClock()
        let store = MemoryStore()
        try await store.insertLoginRequest(request("old", clock: clock))
        clock.advance(by: 120 + Self.retention + 1)
        try await store.insertLoginRequest(request("live", clock: clock))

        let (group, running) = start(store: store, clock: clock, interval: 0.02)
        #expect(try await waitUntilDeleted("old", in: store))
        // Several more passes; none may touch the live request.
        try await Task.sleep(for: .milliseconds(100))
        #expect(try await store.loginRequest(id: "live") != nil)

        // Expired, but not yet for `retention`: still kept, so a PC can learn it expired.
        clock.advance(by: 120 + Self.retention - 1)
        try await Task.sleep(for: .milliseconds(100))
        #expect(try await store.loginRequest(id: "live") != nil)

        // A later pass deletes it once it is past the retention too.
        clock.advance(by: 2)
        #expect(try await waitUntilDeleted("live", in: store))

        #expect(try await shutDown(group, running) < .seconds(5))
    }

    @Test func gracefulShutdownEndsTheWaitBetweenPasses() async throws {
        let clock = ManualClock()
        let store = MemoryStore()
        try await store.insertLoginRequest(request("old", clock: clock))
        clock.advance(by: 120 + Self.retention + 1)

        let (group, running) = start(store: store, clock: clock, interval: 3600)
        try await Task.sleep(for: .milliseconds(50))
        #expect(try await shutDown(group, running) < .seconds(5))
        #expect(try await store.loginRequest(id: "old") != nil, "no pass ran: the first comes after one interval")
    }
}
