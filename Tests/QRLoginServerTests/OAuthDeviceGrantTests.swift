import Foundation
import HummingbirdTesting
import HTTPTypes
import QRLoginCore
import QRLoginOAuth
@testable import QRLoginServer
import Testing

/// The device authorization grant (RFC 8628) mapped onto the QR login, with DPoP (RFC 9449).
@Suite struct OAuthDeviceGrantTests {
    @Test func metadataListsEveryEndpointWithTheIssuerExactly() async throws {
        try await withAPI(testing: .live, store: try await OAuthClients.store()) { api, _ in
            let reply = try await api.call(.get, "/.well-known/oauth-authorization-server")
            #expect(reply.status == .ok)
            #expect(reply.headers[.contentType] == "application/json")
            #expect(reply["issuer"] as? String == testBaseURL)
            #expect(reply["token_endpoint"] as? String == testBaseURL + "/oauth/token")
            #expect(reply["device_authorization_endpoint"] as? String == testBaseURL + "/oauth/device_authorization")
            #expect(reply["introspection_endpoint"] as? String == testBaseURL + "/oauth/introspect")
            #expect(reply["revocation_endpoint"] as? String == testBaseURL + "/oauth/revoke")
            #expect(reply["jwks_uri"] as? String == testBaseURL + "/oauth/jwks")
            #expect(reply["grant_types_supported"] as? [String] == ["authorization_code", "urn:ietf:params:oauth:grant-type:device_code", "refresh_token"])
            #expect(reply["authorization_endpoint"] as? String == testBaseURL + "/authorize")
            #expect(reply["token_endpoint_auth_methods_supported"] as? [String] == ["none", "client_secret_basic", "client_secret_post"])
            #expect(reply["code_challenge_methods_supported"] as? [String] == ["S256"])
            #expect(reply["dpop_signing_alg_values_supported"] as? [String] == ["ES256"])
            #expect((reply["scopes_supported"] as? [String])?.contains("offline_access") == true)
            #expect(reply["response_types_supported"] as? [String] == ["code"])
            #expect(reply.headers[.cacheControl] != "no-store", "metadata may be cached")
        }
    }

    @Test func aDeviceGetsDPoPBoundTokensOnceAfterThePhoneConfirms() async throws {
        try await withAPI(testing: .live, store: try await OAuthClients.store()) { api, clock in
            let phone = try await api.signedInPhone("alice")
            let start = try await api.startDeviceGrant()
            #expect(start.userCode.count == 9 && start.userCode.dropFirst(4).first == "-")
            #expect(start.userCode.replacingOccurrences(of: "-", with: "").allSatisfy(UserCode.alphabet.contains))
            #expect(start.deviceCode.hasPrefix("qrl_dc_"))

            var reply = try await api.poll(start)
            #expect(reply.status == .badRequest)
            #expect(reply.oauthError == "authorization_pending")
            #expect(reply.headers[.cacheControl] == "no-store")
            reply = try await api.poll(start)
            #expect(reply.oauthError == "slow_down", "a poll sooner than the interval")
            clock.advance(by: Double(start.interval + 5))

            // The phone sees which client asks for what, and picks the code the device shows.
            let scan = try await api.call(.post, "/api/v1/qr/\(start.requestId)/scan", device: phone, token: phone.token)
            let client = try #require(scan["client"] as? [String: Any])
            #expect(client["name"] as? String == "Terminal <b>app</b>")
            #expect((scan["scopes"] as? [[String: Any]])?.compactMap { $0["name"] as? String } == ["openid", "offline_access"])
            #expect((scan["userCodeChoices"] as? [String])?.count == 3)
            #expect((scan["matchChoices"] as? [Int]) == [])
            reply = try await api.poll(start)
            #expect(reply.oauthError == "authorization_pending", "scanned is still pending")
            clock.advance(by: 10)
            let confirmed = try await api.call(.post, "/api/v1/qr/\(start.requestId)/confirm", json: ["ticket": scan["ticket"] as? String ?? "", "userCode": start.userCode.lowercased()], device: phone, token: phone.token)
            #expect(confirmed["state"] as? String == "confirmed", "\(confirmed.text)")

            let tokens = try await api.poll(start)
            #expect(tokens.status == .ok, "\(tokens.text)")
            #expect(tokens["token_type"] as? String == "DPoP")
            #expect(tokens["scope"] as? String == "openid offline_access")
            #expect(tokens["expires_in"] as? Int == 3600)
            #expect((tokens["access_token"] as? String)?.hasPrefix("qrl_oa_") == true)
            #expect((tokens["refresh_token"] as? String)?.hasPrefix("qrl_rt_") == true)
            #expect(tokens.headers[.cacheControl] == "no-store")
            #expect(tokens.headers[.pragma] == "no-cache")

            clock.advance(by: 10)
            let again = try await api.poll(start)
            #expect(again.oauthError == "invalid_grant", "a confirmed request hands out its tokens once")

            let introspected = try await api.introspect(try #require(tokens["access_token"] as? String))
            #expect(introspected["active"] as? Bool == true)
            #expect((introspected["cnf"] as? [String: Any])?["jkt"] as? String == start.key?.id)
            #expect(introspected["token_type"] as? String == "DPoP")
            #expect(introspected["username"] as? String == "alice")
            #expect(introspected["client_id"] as? String == "cli")
        }
    }

    @Test func withoutOfflineAccessThereIsNoRefreshToken() async throws {
        try await withAPI(testing: .live, store: try await OAuthClients.store()) { api, _ in
            let phone = try await api.signedInPhone("alice")
            let (_, tokens) = try await api.deviceTokens(scope: "openid", phone: phone)
            #expect(tokens["refresh_token"] == nil)
        }
    }

    @Test func aDPoPBoundDeviceCodePollsOnlyWithItsKey() async throws {
        try await withAPI(testing: .live, store: try await OAuthClients.store()) { api, clock in
            let phone = try await api.signedInPhone("alice")
            let start = try await api.startDeviceGrant(client: "tv")
            try await api.approve(start, by: phone)
            let thief = try await api.poll(start, client: "tv", key: .some(TestDevice()))
            #expect(thief.status == .badRequest)
            #expect(thief.oauthError == "invalid_dpop_proof")
            let bare = try await api.poll(start, client: "tv", key: .some(nil))
            #expect(bare.oauthError == "invalid_dpop_proof")
            clock.advance(by: 10)
            let owner = try await api.poll(start, client: "tv")
            #expect(owner.status == .ok, "the refused polls changed nothing: \(owner.text)")
            #expect(owner["token_type"] as? String == "DPoP")
        }
    }

    @Test func aDeviceCodeOfAnotherClientOrUnknownIsInvalidGrant() async throws {
        try await withAPI(testing: .live, store: try await OAuthClients.store()) { api, _ in
            let start = try await api.startDeviceGrant(client: "tv", key: nil)
            let other = try await api.poll(start, client: "conf", authorization: OAuthClients.basic("conf", OAuthClients.confSecret))
            #expect(other.oauthError == "invalid_grant")
            var forged = start
            forged.deviceCode = "qrl_dc_" + String(repeating: "A", count: 43)
            #expect(try await api.poll(forged, client: "tv").oauthError == "invalid_grant")
            #expect(try await api.poll(start, client: "tv").oauthError == "authorization_pending", "the first poll of its own client")
        }
    }

    @Test func aWrongPickOnThePhoneDeniesTheRequest() async throws {
        try await withAPI(testing: .live, store: try await OAuthClients.store()) { api, _ in
            let phone = try await api.signedInPhone("alice")
            let start = try await api.startDeviceGrant()
            let scan = try await api.call(.post, "/api/v1/qr/\(start.requestId)/scan", device: phone, token: phone.token)
            let wrong = try #require((scan["userCodeChoices"] as? [String])?.first { $0 != start.userCode })
            let reply = try await api.call(.post, "/api/v1/qr/\(start.requestId)/confirm", json: ["ticket": scan["ticket"] as? String ?? "", "userCode": wrong], device: phone, token: phone.token)
            #expect(reply.status == .forbidden)
            #expect(reply.code == "wrong_match")
            #expect(try await api.poll(start).oauthError == "access_denied")
        }
    }

    @Test func aNumberForADeviceGrantOrBothPicksAreRefused() async throws {
        try await withAPI(testing: .live, store: try await OAuthClients.store()) { api, _ in
            let phone = try await api.signedInPhone("alice")
            let start = try await api.startDeviceGrant()
            let scan = try await api.call(.post, "/api/v1/qr/\(start.requestId)/scan", device: phone, token: phone.token)
            let both = try await api.call(.post, "/api/v1/qr/\(start.requestId)/confirm", json: ["ticket": scan["ticket"] as? String ?? "", "userCode": start.userCode, "match": 47], device: phone, token: phone.token)
            #expect(both.status == .badRequest)
            let number = try await api.call(.post, "/api/v1/qr/\(start.requestId)/confirm", json: ["ticket": scan["ticket"] as? String ?? "", "match": 47], device: phone, token: phone.token)
            #expect(number.code == "wrong_match", "a number is a wrong pick for a device grant")
        }
    }

    @Test func anExpiredDeviceCodeAnswersExpiredToken() async throws {
        try await withAPI(testing: .live, store: try await OAuthClients.store()) { api, clock in
            let start = try await api.startDeviceGrant()
            clock.advance(by: 601)
            #expect(try await api.poll(start).oauthError == "expired_token")
        }
    }

    @Test func aClientThatRequiresDPoPIsRefusedWithoutAProof() async throws {
        try await withAPI(testing: .live, store: try await OAuthClients.store()) { api, _ in
            let reply = try await api.form("/oauth/device_authorization", [("client_id", "cli"), ("scope", "openid")])
            #expect(reply.status == .badRequest)
            #expect(reply.oauthError == "invalid_dpop_proof")
        }
    }

    @Test func withoutAProofAClientThatMayGetsBearerTokens() async throws {
        try await withAPI(testing: .live, store: try await OAuthClients.store()) { api, _ in
            let phone = try await api.signedInPhone("alice")
            let (_, tokens) = try await api.deviceTokens(client: "tv", key: nil, phone: phone)
            #expect(tokens["token_type"] as? String == "Bearer")
            let introspected = try await api.introspect(try #require(tokens["access_token"] as? String))
            #expect(introspected["token_type"] as? String == "Bearer")
            #expect(introspected["cnf"] == nil)
        }
    }

    @Test func theUserCodeTypedAtDeviceIsTheMatch() async throws {
        try await withAPI(testing: .live, store: try await OAuthClients.store()) { api, _ in
            let phone = try await api.signedInPhone("alice")
            let start = try await api.startDeviceGrant()
            let typed = start.userCode.lowercased().replacingOccurrences(of: "-", with: "")
            let found = try await api.call(.post, "/api/v1/device", json: ["userCode": typed], device: phone, token: phone.token)
            #expect(found.status == .ok, "\(found.text)")
            #expect(found["id"] as? String == start.requestId)
            #expect(found["userCodeChoices"] as? [String] == [start.userCode])
            let confirmed = try await api.call(.post, "/api/v1/qr/\(start.requestId)/confirm", json: ["ticket": found["ticket"] as? String ?? "", "userCode": start.userCode], device: phone, token: phone.token)
            #expect(confirmed["state"] as? String == "confirmed")
            #expect(try await api.poll(start).status == .ok)

            let unknown = try await api.call(.post, "/api/v1/device", json: ["userCode": "BBBB-BBBB"], device: phone, token: phone.token)
            #expect(unknown.status == .notFound)
            let malformed = try await api.call(.post, "/api/v1/device", json: ["userCode": "AEIOU"], device: phone, token: phone.token)
            #expect(malformed.status == .badRequest)
            let anonymous = try await api.call(.post, "/api/v1/device", json: ["userCode": typed])
            #expect(anonymous.status == .unauthorized)
        }
    }

    @Test func userCodeGuessingHitsItsLimitPerAccountAndIP() async throws {
        try await withAPI(testing: .live, store: try await OAuthClients.store(), configure: { $0.rateLimits = RateLimiter.defaultLimits }) { api, _ in
            let phone = try await api.signedInPhone("mallory")
            let start = try await api.startDeviceGrant()
            var statuses: [HTTPResponse.Status] = []
            for _ in 0..<11 {
                let guess = try await api.call(.post, "/api/v1/device", json: ["userCode": "BBBB-BBBB"], device: phone, token: phone.token)
                statuses.append(guess.status)
            }
            #expect(statuses.prefix(10).allSatisfy { $0 == .notFound })
            #expect(statuses.last == .tooManyRequests)
            // Even the right code is refused now: the limit is on attempts, not on failures.
            let right = try await api.call(.post, "/api/v1/device", json: ["userCode": start.userCode], device: phone, token: phone.token)
            #expect(right.status == .tooManyRequests)
            #expect(right.headers[.retryAfter] != nil)
        }
    }
}
