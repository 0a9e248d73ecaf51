import Foundation
import HTTPTypes
import QRLoginCore
import QRLoginServer
import Testing

@Suite("QR login flow over HTTP")
struct FlowTests {
    @Test("The whole flow: create, scan, confirm, pickup, then the token works")
    func wholeFlow() async throws {
        try await withAPI { api, _ in
            let phone = try await api.signedInPhone("alice", displayName: "Alice")
            let login = try await api.newLogin(name: "Work laptop")
            #expect(login.url == "\(testBaseURL)/q/\(login.id)")
            #expect(login.pollSecret.hasPrefix("qrl_ps_"))

            let pending = try await api.pcStatus(login)
            #expect(pending.status == .ok)
            #expect(pending["state"] as? String == "pending")
            #expect(pending["interval"] as? Int == 2)

            let scanned = try await api.scan(login, by: phone)
            #expect(scanned.status == .ok)
            let ticket = try #require(scanned["ticket"] as? String)
            #expect(ticket.hasPrefix("qrl_st_"))
            let requester = try #require(scanned["requester"] as? [String: Any])
            #expect(requester["type"] as? String == "web")
            #expect(requester["name"] as? String == "Work laptop")
            #expect(requester["ip"] as? String != nil)
            #expect(requester["createdAt"] as? String != nil)
            let choices = try #require(scanned["matchChoices"] as? [Int])
            #expect(choices.count == 3 && Set(choices).count == 3)

            let pcSees = try await api.pcStatus(login)
            #expect(pcSees["state"] as? String == "scanned")
            #expect((pcSees["scanner"] as? [String: Any])?["displayName"] as? String == "Alice")
            let match = try #require(pcSees["match"] as? Int)
            #expect(choices.contains(match))

            let confirmed = try await api.confirm(login, by: phone, scan: scanned, match: match)
            #expect(confirmed.status == .ok)
            #expect(confirmed["state"] as? String == "confirmed")

            let done = try await api.pcStatus(login)
            #expect(done["state"] as? String == "confirmed")
            let token = try #require(done["token"] as? [String: Any])
            let accessToken = try #require(token["accessToken"] as? String)
            #expect(accessToken.hasPrefix("qrl_at_"))
            #expect(token["tokenType"] as? String == "DPoP")
            #expect(token["deviceId"] as? String == login.device.id)
            #expect(token["deviceType"] as? String == "web")

            var pc = login.device
            pc.token = accessToken
            let me = try await api.call(.get, "/api/v1/me", device: pc, token: accessToken)
            #expect(me.status == .ok)
            // Poll secrets, tickets, tokens and account facts are never for a cache to keep.
            for reply in [scanned, pcSees, confirmed, done, me] {
                #expect(reply.headers[.cacheControl] == "no-store")
                #expect(reply.headers[.contentType] == "application/json; charset=utf-8")
            }
            #expect((me["account"] as? [String: Any])?["username"] as? String == "alice")
            #expect((me["device"] as? [String: Any])?["id"] as? String == pc.id)
            let facts = try #require(me["token"] as? [String: Any])
            #expect(facts["origin"] as? String == "qr")
            #expect(facts["approvedBy"] as? String == phone.id)
        }
    }

    @Test("The PC token is bound to the PC key: another key, no proof and a replayed proof are refused")
    func tokenBoundToKey() async throws {
        try await withAPI { api, clock in
            let phone = try await api.signedInPhone("bob")
            let pc = try await api.loggedInPC(phone: phone)
            let token = try #require(pc.token)

            #expect(try await api.call(.get, "/api/v1/me", device: pc, token: token).status == .ok)

            let thief = TestDevice(token: token)
            let stolen = try await api.call(.get, "/api/v1/me", device: thief, token: token)
            #expect(stolen.status == .unauthorized)
            #expect(stolen.code == "invalid_token")

            let noProof = try await api.call(.get, "/api/v1/me", token: token)
            #expect(noProof.status == .unauthorized)
            #expect(noProof.code == "invalid_dpop_proof")

            let proof = try pc.signer.proof(method: "GET", url: testBaseURL + "/api/v1/me", accessToken: token, issuedAt: clock.now)
            #expect(try await api.call(.get, "/api/v1/me", token: token, proof: proof).status == .ok)
            let replay = try await api.call(.get, "/api/v1/me", token: token, proof: proof)
            #expect(replay.status == .unauthorized)
            #expect(replay.code == "dpop_proof_replayed")

            // Spaces and tabs around the credential are not part of it; anything else is.
            let padded = try pc.signer.proof(method: "GET", url: testBaseURL + "/api/v1/me", accessToken: token, issuedAt: clock.now)
            #expect(try await api.call(.get, "/api/v1/me", headers: [.authorization: "DPoP  \(token) \t"], proof: padded).status == .ok)
            let otherToken = try pc.signer.proof(method: "GET", url: testBaseURL + "/api/v1/me", accessToken: token + "x", issuedAt: clock.now)
            #expect(try await api.call(.get, "/api/v1/me", headers: [.authorization: "DPoP \(token)x"], proof: otherToken).status == .unauthorized)

            let asBearer = try await api.call(.get, "/api/v1/me", device: pc, token: token, scheme: "Bearer")
            #expect(asBearer.status == .unauthorized)

            let otherPath = try pc.signer.proof(method: "GET", url: testBaseURL + "/api/v1/devices", accessToken: token, issuedAt: clock.now)
            #expect(try await api.call(.get, "/api/v1/me", token: token, proof: otherPath).status == .unauthorized)
        }
    }

    @Test("Knowing only the QR id gets nothing")
    func qrIdAlone() async throws {
        try await withAPI { api, _ in
            let phone = try await api.signedInPhone("carol")
            let login = try await api.newLogin()
            let scanned = try await api.scan(login, by: phone)
            _ = try await api.confirm(login, by: phone, scan: scanned)

            let attacker = TestDevice()
            let bare = try await api.call(.get, "/api/v1/qr/\(login.id)")
            #expect(bare.status == .unauthorized)
            #expect(bare["state"] == nil && bare["token"] == nil)

            let guessed = try await api.call(.get, "/api/v1/qr/\(login.id)", device: attacker, token: "qrl_ps_" + String(repeating: "A", count: 43), scheme: "Bearer")
            #expect(guessed.status == .unauthorized)
            #expect(guessed.code == "invalid_poll_secret")

            // The right poll secret with another key is refused too.
            let wrongKey = try await api.call(.get, "/api/v1/qr/\(login.id)", device: attacker, token: login.pollSecret, scheme: "Bearer")
            #expect(wrongKey.status == .unauthorized)
            #expect(wrongKey["token"] == nil)

            let cancelled = try await api.call(.delete, "/api/v1/qr/\(login.id)", device: attacker, token: login.pollSecret, scheme: "Bearer")
            #expect(cancelled.status == .unauthorized)

            // The image-free JSON state is still intact for the real PC.
            #expect(try await api.pcStatus(login)["state"] as? String == "confirmed")
        }
    }

    @Test("A second phone scanning gets 409, and cannot confirm")
    func secondScanner() async throws {
        try await withAPI { api, _ in
            let alice = try await api.signedInPhone("alice2")
            let mallory = try await api.signedInPhone("mallory")
            let login = try await api.newLogin()
            let first = try await api.scan(login, by: alice)
            #expect(first.status == .ok)
            let second = try await api.scan(login, by: mallory)
            #expect(second.status == .conflict)
            #expect(second.code == "already_scanned")
            let again = try await api.scan(login, by: alice)
            #expect(again.status == .conflict)

            let stolenTicket = try await api.confirm(login, by: mallory, scan: first)
            #expect(stolenTicket.status == .forbidden)
            #expect(stolenTicket.code == "not_scanner")
            #expect(try await api.pcStatus(login)["state"] as? String == "scanned")
        }
    }

    @Test("A wrong match denies the request")
    func wrongMatchDenies() async throws {
        try await withAPI { api, _ in
            let phone = try await api.signedInPhone("dave")
            let login = try await api.newLogin()
            let scanned = try await api.scan(login, by: phone)
            let right = try #require(try await api.pcStatus(login)["match"] as? Int)
            let wrong = try #require((scanned["matchChoices"] as? [Int])?.first { $0 != right })
            let reply = try await api.confirm(login, by: phone, scan: scanned, match: wrong)
            #expect(reply.status == .forbidden)
            #expect(reply.code == "wrong_match")
            let status = try await api.pcStatus(login)
            #expect(status["state"] as? String == "denied")
            #expect(status["reason"] as? String == "wrong_match")
            #expect(status["token"] == nil)
            // The ticket is spent: the right number no longer helps.
            let retry = try await api.confirm(login, by: phone, scan: scanned, match: right)
            #expect(retry.status == .conflict)
            #expect(retry.code == "request_denied")
        }
    }

    @Test("Deny by the scanner; a used ticket gets 409")
    func denyAndReuse() async throws {
        try await withAPI { api, _ in
            let phone = try await api.signedInPhone("erin")
            let login = try await api.newLogin()
            let scanned = try await api.scan(login, by: phone)
            let ticket = try #require(scanned["ticket"] as? String)
            let badTicket = try await api.call(.post, "/api/v1/qr/\(login.id)/deny", json: ["ticket": "qrl_st_nope"], device: phone, token: phone.token)
            #expect(badTicket.status == .forbidden)
            #expect(badTicket.code == "invalid_ticket")
            let denied = try await api.call(.post, "/api/v1/qr/\(login.id)/deny", json: ["ticket": ticket], device: phone, token: phone.token)
            #expect(denied.status == .ok)
            #expect(denied["state"] as? String == "denied")
            let again = try await api.call(.post, "/api/v1/qr/\(login.id)/deny", json: ["ticket": ticket], device: phone, token: phone.token)
            #expect(again.status == .conflict)
            let status = try await api.pcStatus(login)
            #expect(status["state"] as? String == "denied")
            #expect(status["reason"] as? String == "user")
        }
    }

    @Test("Cancel by the PC; then scanning gets 409")
    func cancel() async throws {
        try await withAPI { api, _ in
            let phone = try await api.signedInPhone("frank")
            let login = try await api.newLogin()
            let cancelled = try await api.call(.delete, "/api/v1/qr/\(login.id)", device: login.device, token: login.pollSecret, scheme: "Bearer")
            #expect(cancelled.status == .ok)
            #expect(cancelled["state"] as? String == "cancelled")
            let scan = try await api.scan(login, by: phone)
            #expect(scan.status == .conflict)
            #expect(scan.code == "request_cancelled")
            #expect(try await api.pcStatus(login)["state"] as? String == "cancelled")
        }
    }

    @Test("Expiry: a pending request, and a scan ticket left unused, end as expired (410)")
    func expiry() async throws {
        try await withAPI { api, clock in
            let phone = try await api.signedInPhone("gina")
            let login = try await api.newLogin()
            clock.advance(by: 121)
            let status = try await api.pcStatus(login)
            #expect(status["state"] as? String == "expired")
            let scan = try await api.scan(login, by: phone)
            #expect(scan.status == .gone)
            #expect(scan.code == "expired")

            let second = try await api.newLogin()
            let scanned = try await api.scan(second, by: phone)
            clock.advance(by: 61)
            let late = try await api.confirm(second, by: phone, scan: scanned, match: 10)
            #expect(late.status == .gone)
            #expect(late.code == "ticket_expired")
            #expect(try await api.pcStatus(second)["state"] as? String == "expired")
        }
    }

    @Test("A PC whose response was lost collects again; only the newest collected token works")
    func collectAgain() async throws {
        try await withAPI { api, _ in
            let phone = try await api.signedInPhone("hank")
            let login = try await api.newLogin()
            let scanned = try await api.scan(login, by: phone)
            _ = try await api.confirm(login, by: phone, scan: scanned)
            let first = try #require((try await api.pcStatus(login)["token"] as? [String: Any])?["accessToken"] as? String)
            let second = try #require((try await api.pcStatus(login)["token"] as? [String: Any])?["accessToken"] as? String)
            #expect(first != second)
            #expect(try await api.call(.get, "/api/v1/me", device: login.device, token: first).status == .unauthorized)
            #expect(try await api.call(.get, "/api/v1/me", device: login.device, token: second).status == .ok)
        }
    }

    @Test("Devices: listed with the current one marked and the approver; remote logout stops the token at once")
    func devicesAndRemoteLogout() async throws {
        try await withAPI { api, _ in
            let phone = try await api.signedInPhone("ivy")
            let pc = try await api.loggedInPC(phone: phone, name: "Desk PC")
            let list = try await api.call(.get, "/api/v1/devices", device: phone, token: phone.token)
            #expect(list.status == .ok)
            #expect(list.headers[.cacheControl] == "no-store", "the list carries IPs: no cache may keep it")
            let devices = try #require(list["devices"] as? [[String: Any]])
            #expect(devices.count == 2)
            let mine = try #require(devices.first { $0["id"] as? String == phone.id })
            #expect(mine["current"] as? Bool == true)
            let desk = try #require(devices.first { $0["id"] as? String == pc.id })
            #expect(desk["current"] as? Bool == false)
            #expect(desk["name"] as? String == "Desk PC")
            #expect(desk["approvedBy"] as? String == phone.id)

            let removed = try await api.call(.delete, "/api/v1/devices/\(pc.id)", device: phone, token: phone.token)
            #expect(removed.status == .noContent)
            let refused = try await api.call(.get, "/api/v1/me", device: pc, token: pc.token)
            #expect(refused.status == .unauthorized)
            let unknown = try await api.call(.delete, "/api/v1/devices/\(pc.id)", device: phone, token: phone.token)
            #expect(unknown.status == .notFound)
            #expect(unknown.code == "device_not_found")
        }
    }

    @Test("Logout revokes the current token only")
    func logout() async throws {
        try await withAPI { api, _ in
            let phone = try await api.signedInPhone("jack")
            let pc = try await api.loggedInPC(phone: phone)
            #expect(try await api.call(.post, "/api/v1/auth/logout", device: pc, token: pc.token).status == .noContent)
            #expect(try await api.call(.get, "/api/v1/me", device: pc, token: pc.token).status == .unauthorized)
            #expect(try await api.call(.get, "/api/v1/me", device: phone, token: phone.token).status == .ok)
        }
    }

    @Test("An expired token is refused")
    func tokenExpiry() async throws {
        try await withAPI(configure: { $0.flow.tokenTTL = 600 }) { api, clock in
            let phone = try await api.signedInPhone("kate")
            clock.advance(by: 601)
            let reply = try await api.call(.get, "/api/v1/me", device: phone, token: phone.token)
            #expect(reply.status == .unauthorized)
            #expect(reply.code == "invalid_token")
        }
    }
}
