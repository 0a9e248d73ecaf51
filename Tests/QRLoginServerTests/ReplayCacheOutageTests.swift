import Foundation
import HTTPTypes
import QRLoginCore
import QRLoginOAuth
@testable import QRLoginServer
import Synchronization
import Testing

/// A replay cache that fails on demand, while the rest of the store works.
private final class SwitchableReplayCache: ReplayCache {
    private let cache = MemoryReplayCache()
    private let failing = Mutex(false)

    struct Unreachable: Error {}

    func fail(_ on: Bool) { failing.withLock { $0 = on } }

    func insert(_ key: String, expiresAt: Date, now: Date) async throws -> Bool {
        if failing.withLock({ $0 }) { throw Unreachable() }
        return await cache.insert(key, expiresAt: expiresAt, now: now)
    }
}

/// When only the DPoP replay cache cannot answer, a request with a proof is not let through,
/// and the answer says the service is unavailable, not that the proof or token is bad.
@Suite struct ReplayCacheOutageTests {
    @Test func aReplayCacheThatCannotAnswerIs503EverywhereAProofIsChecked() async throws {
        let cache = SwitchableReplayCache()
        let store = MemoryStore(replayCache: cache)
        for client in [OAuthClients.cli, OAuthClients.tv, OAuthClients.conf, OAuthClients.rs] { try await store.upsertClient(client) }
        try await withAPI(store: store) { api, _ in
            let phone = try await api.signedInPhone("alice")
            let (start, tokens) = try await api.deviceTokens(phone: phone)
            let key = try #require(start.key)
            let access = try #require(tokens["access_token"] as? String)
            let refresh = try #require(tokens["refresh_token"] as? String)
            cache.fail(true)

            let userInfo = try await api.call(.get, "/oauth/userinfo", device: key, token: access, scheme: "DPoP")
            #expect(userInfo.status == .serviceUnavailable, "\(userInfo.text)")
            #expect(userInfo.headers[.retryAfter] != nil)
            #expect(userInfo.json["error"] as? String == "temporarily_unavailable")

            let refreshed = try await api.refresh(refresh, key: key)
            #expect(refreshed.status == .serviceUnavailable, "\(refreshed.text)")
            #expect(refreshed.oauthError == "temporarily_unavailable")
            #expect(refreshed.headers[.retryAfter] != nil)

            let poll = try await api.form(
                "/oauth/token", [("grant_type", GrantType.deviceCode.rawValue), ("device_code", start.deviceCode), ("client_id", "cli")], device: key
            )
            #expect(poll.status == .serviceUnavailable, "\(poll.text)")

            let me = try await api.call(.get, "/api/v1/me", device: phone, token: phone.token)
            #expect(me.status == .serviceUnavailable, "\(me.text)")
            #expect(me.headers[.retryAfter] != nil)

            // Nothing was written meanwhile: the refresh token still rotates once the cache answers.
            cache.fail(false)
            let again = try await api.refresh(refresh, key: key)
            #expect(again.status == .ok, "\(again.text)")
            #expect(try await api.call(.get, "/oauth/userinfo", device: key, token: access, scheme: "DPoP").status == .ok)
        }
    }
}
