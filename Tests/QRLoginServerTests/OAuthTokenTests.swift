import Foundation
import HTTPTypes
import HummingbirdTesting
import NIOCore
import QRLoginCore
import QRLoginOAuth
import QRLoginSQLite
@testable import QRLoginServer
import Testing

/// Refresh, introspection, revocation, client authentication, nonces and grants.
@Suite struct OAuthTokenTests {
    @Test func refreshRotatesAndAReplayRevokesTheWholeFamily() async throws {
        try await withAPI(testing: .live, store: try await OAuthClients.store()) { api, _ in
            let phone = try await api.signedInPhone("alice")
            let (start, tokens) = try await api.deviceTokens(phone: phone)
            let first = try #require(tokens["refresh_token"] as? String)
            let rotated = try await api.refresh(first, key: start.key)
            #expect(rotated.status == .ok, "\(rotated.text)")
            let second = try #require(rotated["refresh_token"] as? String)
            #expect(second != first)
            let access = try #require(rotated["access_token"] as? String)
            #expect(try await api.introspect(access)["active"] as? Bool == true)

            let replay = try await api.refresh(first, key: start.key)
            #expect(replay.oauthError == "invalid_grant")
            #expect(try await api.introspect(access)["active"] as? Bool == false, "the replay revoked the family")
            #expect(try await api.refresh(second, key: start.key).oauthError == "invalid_grant")
        }
    }

    /// A refresh records its proof in the store's own transaction (one commit), not through the
    /// replay cache: the proof must still count as used, for refreshes and every other grant,
    /// also when the refresh is refused.
    @Test(arguments: [false, true])
    func aRefreshsProofCannotBeReplayed(onSQLite: Bool) async throws {
        let store: any Store = onSQLite ? try await SQLiteStore.open(path: nil) : MemoryStore()
        for client in [OAuthClients.cli, OAuthClients.tv, OAuthClients.conf, OAuthClients.rs] { try await store.upsertClient(client) }
        try await withAPI(testing: .live, store: store) { api, clock in
            let phone = try await api.signedInPhone("alice")
            let (start, tokens) = try await api.deviceTokens(phone: phone)
            let key = try #require(start.key)
            let sign = { try key.signer.proof(method: "POST", url: testBaseURL + "/oauth/token", issuedAt: clock.now) }
            func refresh(_ token: String, proof: String) async throws -> Reply {
                try await api.form("/oauth/token", [("grant_type", "refresh_token"), ("refresh_token", token), ("client_id", "cli")], proof: proof)
            }

            let used = try sign()
            let rotated = try await refresh(try #require(tokens["refresh_token"] as? String), proof: used)
            #expect(rotated.status == .ok, "\(rotated.text)")
            var current = try #require(rotated["refresh_token"] as? String)
            let replayed = try await refresh(current, proof: used)
            #expect(replayed.oauthError == "invalid_dpop_proof", "\(replayed.text)")
            #expect(replayed.json["error_description"] as? String == QRLoginError.replayedProof.detail)

            // Refused refreshes record their proofs too: an unknown token, a missing one, a
            // malformed one, and a token of another client.
            let refusals: [(params: [(String, String)], error: String)] = [
                ([("grant_type", "refresh_token"), ("refresh_token", "qrl_rt_unknown"), ("client_id", "cli")], "invalid_grant"),
                ([("grant_type", "refresh_token"), ("client_id", "cli")], "invalid_request"),
                ([("grant_type", "refresh_token"), ("refresh_token", "not-a-token"), ("client_id", "cli")], "invalid_grant"),
                ([("grant_type", "refresh_token"), ("refresh_token", current), ("client_id", "tv")], "invalid_grant"),
            ]
            for refusal in refusals {
                let proof = try sign()
                #expect(try await api.form("/oauth/token", refusal.params, proof: proof).oauthError == refusal.error)
                #expect(try await refresh(current, proof: proof).oauthError == "invalid_dpop_proof", "\(refusal.params)")
            }

            // The replays changed nothing: the token still rotates with a fresh proof.
            let fresh = try sign()
            let next = try await refresh(current, proof: fresh)
            #expect(next.status == .ok, "\(next.text)")
            current = try #require(next["refresh_token"] as? String)
            // The refresh's record is the one every other request meets.
            let poll = try await api.form(
                "/oauth/token", [("grant_type", GrantType.deviceCode.rawValue), ("device_code", start.deviceCode), ("client_id", "cli")], proof: fresh
            )
            #expect(poll.oauthError == "invalid_dpop_proof", "\(poll.text)")
            #expect(try await api.refresh(current, key: key).status == .ok)
        }
        if let sqlite = store as? SQLiteStore { try await sqlite.close() }
    }

    @Test func aPublicClientsRefreshTokenIsBoundToItsKey() async throws {
        try await withAPI(testing: .live, store: try await OAuthClients.store()) { api, _ in
            let phone = try await api.signedInPhone("alice")
            let (start, tokens) = try await api.deviceTokens(phone: phone)
            let refresh = try #require(tokens["refresh_token"] as? String)
            #expect(try await api.refresh(refresh, key: TestDevice()).oauthError == "invalid_grant")
            #expect(try await api.refresh(refresh, client: "tv", key: start.key).oauthError == "invalid_grant", "another client")
            #expect(try await api.refresh(refresh, key: start.key, scope: "openid phone").oauthError == "invalid_scope")
            let narrowed = try await api.refresh(refresh, key: start.key, scope: "openid")
            #expect(narrowed.status == .ok, "the refused refreshes changed nothing: \(narrowed.text)")
            #expect(narrowed["scope"] as? String == "openid")
            #expect(narrowed["refresh_token"] != nil, "the new refresh token keeps the old scopes")
        }
    }

    @Test func introspectionNeedsAnAuthenticatedConfidentialClient() async throws {
        try await withAPI(testing: .live, store: try await OAuthClients.store()) { api, _ in
            let phone = try await api.signedInPhone("alice")
            let (_, tokens) = try await api.deviceTokens(phone: phone)
            let access = try #require(tokens["access_token"] as? String)
            let anonymous = try await api.form("/oauth/introspect", [("token", access)])
            #expect(anonymous.status == .unauthorized)
            #expect(anonymous.oauthError == "invalid_client")
            #expect(anonymous.headers[.wwwAuthenticate] != nil)
            let wrongSecret = try await api.introspect(access, authorization: OAuthClients.basic("rs", "qrl_cs_wrong"))
            #expect(wrongSecret.status == .unauthorized)
            let publicClient = try await api.form("/oauth/introspect", [("token", access), ("client_id", "cli")])
            #expect(publicClient.status == .unauthorized, "a public client proves nothing")
            let byPost = try await api.form("/oauth/introspect", [("token", access), ("client_id", "rs"), ("client_secret", OAuthClients.rsSecret)])
            #expect(byPost["active"] as? Bool == true, "client_secret_post works too")
        }
    }

    @Test func inactiveTokensSayOnlyThat() async throws {
        try await withAPI(testing: .live, store: try await OAuthClients.store()) { api, clock in
            let phone = try await api.signedInPhone("alice")
            let (_, tokens) = try await api.deviceTokens(phone: phone)
            let refresh = try #require(tokens["refresh_token"] as? String)
            for token in ["qrl_oa_unknown", "", "garbage", refresh] {
                let reply = try await api.introspect(token)
                if token.isEmpty {
                    #expect(reply.oauthError == "invalid_request")
                } else {
                    #expect(reply.text == #"{"active":false}"#, "\(token)")
                }
            }
            let own = try await api.introspect(refresh, authorization: OAuthClients.basic("conf", OAuthClients.confSecret))
            #expect(own["active"] as? Bool == false, "another client's refresh token")
            let appPeeks = try await api.introspect(try #require(tokens["access_token"] as? String), authorization: OAuthClients.basic("conf", OAuthClients.confSecret))
            #expect(appPeeks["active"] as? Bool == false, "an app may not read another app's access tokens; a resource server may")
            clock.advance(by: 3601)
            #expect(try await api.introspect(try #require(tokens["access_token"] as? String))["active"] as? Bool == false, "expired")
        }
    }

    @Test func aConfidentialClientSeesItsOwnRefreshToken() async throws {
        try await withAPI(testing: .live, store: try await OAuthClients.store()) { api, _ in
            let phone = try await api.signedInPhone("alice")
            let basic = OAuthClients.basic("conf", OAuthClients.confSecret)
            let start = try await api.startDeviceGrant(client: "conf", key: nil, authorization: basic)
            try await api.approve(start, by: phone)
            let tokens = try await api.poll(start, key: .some(nil), authorization: basic)
            #expect(tokens["token_type"] as? String == "Bearer", "\(tokens.text)")
            let refresh = try #require(tokens["refresh_token"] as? String)
            let reply = try await api.introspect(refresh, authorization: basic)
            #expect(reply["active"] as? Bool == true)
            #expect(reply["token_type"] == nil)
            let wrong = try await api.poll(start, key: .some(nil), authorization: OAuthClients.basic("conf", "qrl_cs_nope"))
            #expect(wrong.status == .unauthorized)
        }
    }

    @Test func revocationTakesEffectAtOnceAndOnlyForTheOwner() async throws {
        try await withAPI(testing: .live, store: try await OAuthClients.store()) { api, _ in
            let phone = try await api.signedInPhone("alice")
            let (start, tokens) = try await api.deviceTokens(phone: phone)
            let access = try #require(tokens["access_token"] as? String)
            let refresh = try #require(tokens["refresh_token"] as? String)

            let stranger = try await api.form("/oauth/revoke", [("token", access), ("client_id", "tv")])
            #expect(stranger.oauthError == "invalid_grant")
            #expect(try await api.introspect(access)["active"] as? Bool == true, "another client's revocation changed nothing")

            let unknown = try await api.form("/oauth/revoke", [("token", "qrl_oa_nothing"), ("client_id", "cli")])
            #expect(unknown.status == .ok, "an unknown token is no error (RFC 7009 §2.2)")

            #expect(try await api.form("/oauth/revoke", [("token", access), ("client_id", "cli"), ("token_type_hint", "access_token")]).status == .ok)
            #expect(try await api.introspect(access)["active"] as? Bool == false)
            let stillRefreshes = try await api.refresh(refresh, key: start.key)
            #expect(stillRefreshes.status == .ok, "revoking an access token leaves its refresh token")
            let next = try #require(stillRefreshes["refresh_token"] as? String)
            let nextAccess = try #require(stillRefreshes["access_token"] as? String)
            #expect(try await api.form("/oauth/revoke", [("token", next), ("client_id", "cli")]).status == .ok)
            #expect(try await api.introspect(nextAccess)["active"] as? Bool == false, "revoking a refresh token revokes its family")
            #expect(try await api.refresh(next, key: start.key).oauthError == "invalid_grant")
        }
    }

    @Test(arguments: [
        ([("grant_type", "password"), ("client_id", "cli")], "unsupported_grant_type"),
        ([("grant_type", "authorization_code"), ("client_id", "cli"), ("code", "qrl_ac_x")], "unauthorized_client"),
        ([("client_id", "cli")], "invalid_request"),
        ([("grant_type", "refresh_token"), ("client_id", "cli")], "invalid_request"),
        ([("grant_type", "refresh_token"), ("refresh_token", "qrl_rt_x"), ("client_id", "nobody")], "invalid_client"),
        ([("grant_type", "refresh_token"), ("refresh_token", "qrl_rt_x"), ("client_id", "cli"), ("client_id", "cli")], "invalid_request"),
        ([("grant_type", "refresh_token"), ("refresh_token", "qrl_rt_x"), ("client_id", "rs"), ("client_secret", OAuthClients.rsSecret)], "unauthorized_client"),
        ([("grant_type", "refresh_token"), ("refresh_token", "qrl_rt_x"), ("client_id", "tv"), ("client_secret", "qrl_cs_x")], "invalid_client"),
        ([("grant_type", "refresh_token"), ("refresh_token", "qrl_rt_x"), ("client_id", "tv")], "invalid_grant"),
    ] as [([(String, String)], String)])
    func badTokenRequestsGetTheRFCsError(params: [(String, String)], error: String) async throws {
        try await withAPI(testing: .live, store: try await OAuthClients.store()) { api, _ in
            let reply = try await api.form("/oauth/token", params)
            #expect(reply.oauthError == error, "\(reply.text)")
            #expect(reply.status == (error == "invalid_client" ? .unauthorized : .badRequest))
            #expect(reply.headers[.contentType] == "application/json")
        }
    }

    @Test func deviceAuthorizationRefusesBadScopesClientsAndBodies() async throws {
        try await withAPI(testing: .live, store: try await OAuthClients.store()) { api, _ in
            #expect(try await api.form("/oauth/device_authorization", [("client_id", "tv"), ("scope", "admin")]).oauthError == "invalid_scope")
            #expect(try await api.form("/oauth/device_authorization", [("client_id", "tv"), ("scope", "openid  profile")]).oauthError == "invalid_scope")
            #expect(try await api.form("/oauth/device_authorization", [("client_id", "rs"), ("client_secret", OAuthClients.rsSecret)]).oauthError == "unauthorized_client")
            #expect(try await api.form("/oauth/device_authorization", [("client_id", "ghost")]).status == .unauthorized)
            let json = try await api.call(.post, "/oauth/device_authorization", json: ["client_id": "tv"])
            #expect(json.status == .badRequest)
            #expect((json.json["error"] as? String) == "invalid_request")
            let twoProofs = try await api.client.execute(
                uri: "/oauth/device_authorization", method: .post,
                headers: [.contentType: "application/x-www-form-urlencoded", .dpop: "a.b.c", HTTPField.Name("DPoP")!: "d.e.f"],
                body: .init(string: "client_id=tv")
            ) { Reply(status: $0.status, headers: $0.headers, body: $0.body) }
            #expect(twoProofs.oauthError == "invalid_dpop_proof")
            let basicAndPost = try await api.form("/oauth/device_authorization", [("client_id", "conf"), ("client_secret", OAuthClients.confSecret)], authorization: OAuthClients.basic("conf", OAuthClients.confSecret))
            #expect(basicAndPost.oauthError == "invalid_request", "one authentication method at a time")
            let scopeWithOwn = try await api.form("/oauth/device_authorization", [("client_id", "cli"), ("scope", "openid billing:read")], device: TestDevice())
            #expect(scopeWithOwn.status == .ok, "a client's own scope: \(scopeWithOwn.text)")
        }
    }

    @Test func nonceRequiredProofsAreRetriedWithTheServersNonce() async throws {
        try await withAPI(testing: .live, store: try await OAuthClients.store(), configure: { $0.oauth.dpopNonces = true }) { api, _ in
            let key = TestDevice()
            let first = try await api.form("/oauth/device_authorization", [("client_id", "cli"), ("scope", "openid")], device: key)
            #expect(first.status == .badRequest)
            #expect(first.oauthError == "use_dpop_nonce")
            let nonce = try #require(first.headers[.dpopNonce])
            let wrong = try await api.form("/oauth/device_authorization", [("client_id", "cli"), ("scope", "openid")], device: key, nonce: "not-the-nonce")
            #expect(wrong.oauthError == "use_dpop_nonce")
            let second = try await api.form("/oauth/device_authorization", [("client_id", "cli"), ("scope", "openid")], device: key, nonce: nonce)
            #expect(second.status == .ok, "\(second.text)")
            #expect(second.headers[.dpopNonce] == nonce)
        }
    }

    @Test func aProofSignedBeforeARestartIsRefusedAfterIt() async throws {
        // Wrapped, the memory store's own replay cache stays hidden: each server below makes an
        // empty one, as a process that kept its data but not its replay cache.
        let store = HeldStore(try await OAuthClients.store())
        let clock = ManualClock(Date())
        let key = TestDevice()
        let path = "/oauth/device_authorization"
        let configure: (inout ServerConfiguration) -> Void = { $0.oauth.dpopNonces = true }
        let proof = SentProof()
        try await withAPI(testing: .live, store: store, clock: clock, configure: configure) { api, _ in
            let nonce = try #require(try await api.form(path, [("client_id", "cli")], device: key).headers[.dpopNonce])
            let signed = try key.signer.proof(method: "POST", url: testBaseURL + path, issuedAt: clock.now, nonce: nonce)
            #expect(try await api.form(path, [("client_id", "cli")], proof: signed).status == .ok)
            #expect(try await api.form(path, [("client_id", "cli")], proof: signed).oauthError == "invalid_dpop_proof", "a replay in the same process")
            proof.value = signed
        }
        // A new process: its replay cache is empty, but the old nonce is not one of its own.
        let replayed = proof.value
        try await withAPI(testing: .live, store: store, clock: clock, configure: configure) { api, _ in
            let reply = try await api.form(path, [("client_id", "cli")], proof: replayed)
            #expect(reply.status == .badRequest)
            #expect(reply.oauthError == "use_dpop_nonce")
        }
    }

    @Test func theUserSeesAndRevokesTheAppsHoldingTokens() async throws {
        try await withAPI(testing: .live, store: try await OAuthClients.store()) { api, _ in
            let alice = try await api.signedInPhone("alice")
            let bob = try await api.signedInPhone("bob")
            let (_, tokens) = try await api.deviceTokens(phone: alice)
            let access = try #require(tokens["access_token"] as? String)
            let list = try await api.call(.get, "/api/v1/grants", device: alice, token: alice.token)
            #expect(list.headers[.cacheControl] == "no-store")
            let grants = try #require(list["grants"] as? [[String: Any]])
            #expect(grants.count == 1)
            let grant = try #require(grants.first)
            #expect((grant["client"] as? [String: Any])?["name"] as? String == "Terminal <b>app</b>")
            #expect((grant["scopes"] as? [[String: Any]])?.compactMap { $0["name"] as? String } == ["openid", "offline_access"])
            #expect((grant["scopes"] as? [[String: Any]])?.last?["description"] as? String == "Stay signed in when you are not using it")
            let id = try #require(grant["id"] as? String)
            let bobs = try await api.call(.get, "/api/v1/grants", device: bob, token: bob.token)
            #expect((bobs["grants"] as? [Any])?.isEmpty == true)

            let stolen = try await api.call(.delete, "/api/v1/grants/\(id)", device: bob, token: bob.token)
            #expect(stolen.status == .notFound, "another account's grant")
            #expect(stolen.json["detail"] as? String == "No such grant on this account.")
            #expect(try await api.introspect(access)["active"] as? Bool == true)
            let revoked = try await api.call(.delete, "/api/v1/grants/\(id)", device: alice, token: alice.token)
            #expect(revoked.status == .noContent)
            #expect(try await api.introspect(access)["active"] as? Bool == false)
            #expect((try await api.call(.get, "/api/v1/grants", device: alice, token: alice.token)["grants"] as? [Any])?.isEmpty == true)
        }
    }

    @Test func aClientFileRegistersItsClientsAndABadOneStopsTheServer() async throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("qrlogin-clients-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let good = dir.appendingPathComponent("clients.json")
        let hash = ClientSecret.hash(OAuthClients.confSecret)
        try Data(#"{"clients":[{"id":"files-cli","name":"From a file","type":"public","grantTypes":["device_code"]},{"id":"files-rs","name":"RS","type":"confidential","secretSHA256":"\#(hash)","grantTypes":[]}]}"#.utf8).write(to: good)
        let store = MemoryStore()
        try await withAPI(testing: .live, store: store, configure: { $0.clientFile = good.path }) { api, _ in
            let started = try await api.form("/oauth/device_authorization", [("client_id", "files-cli")])
            #expect(started.status == .ok, "\(started.text)")
            let introspected = try await api.introspect("qrl_oa_x", authorization: OAuthClients.basic("files-rs", OAuthClients.confSecret))
            #expect(introspected["active"] as? Bool == false, "the confidential client from the file authenticates")
        }
        let bad = dir.appendingPathComponent("bad.json")
        try Data(#"{"clients":[{"id":"ok","name":"OK","type":"public","grantTypes":["device_code"]},{"id":"bad id","name":"x","type":"public","grantTypes":[]}]}"#.utf8).write(to: bad)
        let empty = MemoryStore()
        await #expect(throws: ClientFileError.self) {
            _ = try await makeTestApp(store: empty) { $0.clientFile = bad.path }
        }
        #expect(try await empty.clients().isEmpty, "a bad file registers nothing")
    }
}

/// The proof carried from one server process to the next in the restart test (one task at a
/// time touches it).
private final class SentProof: @unchecked Sendable {
    var value = ""
}

/// Hostile input at every OAuth endpoint: an RFC error, never a 5xx.
@Suite struct OAuthHostileInputTests {
    static let bodies: [String] = [
        "", "&&&", "=", "grant_type", "grant_type=%FF", "grant_type=%zz", "client_id=%00",
        "client_id=" + String(repeating: "a", count: 5000),
        "grant_type=refresh_token&client_id=cli&refresh_token=" + String(repeating: "x", count: 10_000),
        "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Adevice_code&client_id=cli&device_code=qrl_dc_" + String(repeating: "A", count: 200),
        "token=" + String(repeating: "%41", count: 3000) + "&client_id=cli",
        "client_id=cli&scope=" + String(repeating: "s ", count: 600),
        "client_id=cli&scope=%22",
        "client_id=tv&client_id=tv",
        String(repeating: "a=b&", count: 4000),
    ]

    @Test(arguments: ["/oauth/token", "/oauth/device_authorization", "/oauth/introspect", "/oauth/revoke"])
    func noBodyMakesA5xx(path: String) async throws {
        try await withAPI(testing: .live, store: try await OAuthClients.store()) { api, _ in
            for body in Self.bodies {
                let reply = try await api.client.execute(
                    uri: path, method: .post, headers: [.contentType: "application/x-www-form-urlencoded"], body: ByteBuffer(string: body)
                ) { Reply(status: $0.status, headers: $0.headers, body: $0.body) }
                #expect(reply.status.code < 500, "\(path) \(body.prefix(80)): \(reply.text)")
                if reply.status != .ok { #expect(reply.oauthError != nil, "\(path) \(body.prefix(80)): \(reply.text)") }
            }
            for header in ["Basic", "Basic !!!", "Basic " + Data("no-colon".utf8).base64EncodedString(), "Basic " + Data("cli:%ZZ".utf8).base64EncodedString(), "Bearer x", "DPoP x"] {
                let reply = try await api.form(path, [("token", "x"), ("grant_type", "refresh_token"), ("refresh_token", "x")], authorization: header)
                #expect(reply.status == .unauthorized, "\(path) \(header): \(reply.text)")
                #expect(reply.oauthError == "invalid_client")
            }
            for proof in ["", "x", "a.b.c", String(repeating: "a", count: 9000)] {
                let reply = try await api.form(path, [("client_id", "tv"), ("token", "x"), ("grant_type", "refresh_token"), ("refresh_token", "qrl_rt_x")], proof: proof)
                #expect(reply.status.code < 500, "\(path) proof \(proof.prefix(20)): \(reply.text)")
            }
        }
    }
}

@Suite struct FormBodyTests {
    @Test func decodesPlusPercentAndUTF8AndRefusesBrokenEscapes() throws {
        #expect(FormBody.decode("a+b%20c%3Ad") == "a b c:d")
        #expect(FormBody.decode("caf%C3%A9") == "café")
        #expect(FormBody.decode("plain_value-1.2~") == "plain_value-1.2~")
        #expect(FormBody.decode("%") == nil)
        #expect(FormBody.decode("%4") == nil)
        #expect(FormBody.decode("%zz") == nil)
        #expect(FormBody.decode("%FF") == nil, "not UTF-8")
        let form = try FormBody("grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Adevice_code&scope=openid+profile&empty=")
        #expect(form["grant_type"] == "urn:ietf:params:oauth:grant-type:device_code")
        #expect(form["scope"] == "openid profile")
        #expect(form["empty"] == nil)
    }

    @Test func aRepeatedNameIsInvalidRequest() throws {
        for body in ["a=1&b=2&a=3", "scope=&scope=openid", "b=1&b", "x=1&" + (1...98).map { "p\($0)=v" }.joined(separator: "&") + "&x=2"] {
            #expect(throws: OAuthError.invalidRequest("the parameter '\(body.prefix { $0 != "=" && $0 != "&" })' is given more than once")) {
                try FormBody(body)
            }
        }
        #expect(try FormBody((1...200).map { "p\($0)=v" }.joined(separator: "&"))["p200"] == "v")
    }
}
