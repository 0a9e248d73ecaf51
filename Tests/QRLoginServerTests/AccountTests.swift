import Foundation
import HTTPTypes
import QRLoginCore
import QRLoginServer
import Testing

@Suite("Accounts and sign-in")
struct AccountTests {
    @Test("Registration returns the account without its hash; a taken username gets 409")
    func register() async throws {
        try await withAPI { api, _ in
            let reply = try await api.call(.post, "/api/v1/accounts", json: ["username": "alice", "password": "long enough", "displayName": "Alice A.", "phone": "+15551234567"])
            #expect(reply.status == .created)
            #expect(reply["username"] as? String == "alice")
            #expect(reply["displayName"] as? String == "Alice A.")
            #expect(reply["passwordHash"] == nil)
            #expect(!reply.text.contains("$2"))
            let taken = try await api.call(.post, "/api/v1/accounts", json: ["username": "ALICE", "password": "long enough"])
            #expect(taken.status == .conflict)
            #expect(taken.code == "username_taken")
            let phoneTaken = try await api.call(.post, "/api/v1/accounts", json: ["username": "alice2", "password": "long enough", "phone": "+15551234567"])
            #expect(phoneTaken.status == .conflict)
            #expect(phoneTaken.code == "phone_taken")
        }
    }

    @Test("Unknown user and wrong password give one identical error")
    func identicalSignInErrors() async throws {
        try await withAPI { api, _ in
            _ = try await api.signedInPhone("bob")
            let wrong = try await api.call(.post, "/api/v1/auth/password", json: ["username": "bob", "password": "not the password", "device": ["type": "ios", "name": "x"]], device: TestDevice())
            let unknown = try await api.call(.post, "/api/v1/auth/password", json: ["username": "nobody", "password": "not the password", "device": ["type": "ios", "name": "x"]], device: TestDevice())
            #expect(wrong.status == .unauthorized)
            #expect(wrong.status == unknown.status)
            #expect(wrong.text == unknown.text)
            #expect(wrong.code == "invalid_credentials")
        }
    }

    @Test("Password sign-in binds the token to the key of its proof, and needs a proof")
    func signInNeedsProof() async throws {
        try await withAPI { api, _ in
            _ = try await api.signedInPhone("carl")
            let noProof = try await api.call(.post, "/api/v1/auth/password", json: ["username": "carl", "password": "correct horse battery", "device": ["type": "ios", "name": "x"]])
            #expect(noProof.status == .unauthorized)
            #expect(noProof.code == "invalid_dpop_proof")
            let device = TestDevice()
            let session = try await api.call(.post, "/api/v1/auth/password", json: ["username": "carl", "password": "correct horse battery", "device": ["type": "android", "name": "Pixel"]], device: device)
            #expect(session.status == .created)
            #expect((session["device"] as? [String: Any])?["id"] as? String == device.id)
            #expect(session["tokenType"] as? String == "DPoP")
            #expect(session.headers[.cacheControl] == "no-store")
        }
    }

    @Test("One-time code sign-in: works once, stored hashed, five wrong attempts destroy it")
    func codeSignIn() async throws {
        let codes = CapturingCodeSender()
        try await withAPI(codes: codes) { api, clock in
            _ = try await api.signedInPhone("dina", phone: "+15550001111")
            let start = try await api.call(.post, "/api/v1/auth/sms/start", json: ["phone": "+15550001111"])
            #expect(start.status == .accepted)
            let code = try #require(codes.code(for: "+15550001111"))
            #expect(code.count == 6 && code.allSatisfy(\.isNumber))

            let device = TestDevice()
            let body: [String: Any] = ["phone": "+15550001111", "code": code, "device": ["type": "android", "name": "Pixel"]]
            let ok = try await api.call(.post, "/api/v1/auth/sms/verify", json: body, device: device)
            #expect(ok.status == .created, "\(ok.text)")
            let twice = try await api.call(.post, "/api/v1/auth/sms/verify", json: body, device: device)
            #expect(twice.status == .unauthorized)
            #expect(twice.code == "invalid_code")

            // Five wrong guesses destroy the code; the right one then fails too.
            _ = try await api.call(.post, "/api/v1/auth/sms/start", json: ["phone": "+15550001111"])
            let fresh = try #require(codes.code(for: "+15550001111"))
            let wrongCode = fresh == "000000" ? "111111" : "000000"
            var last: Reply?
            for _ in 0..<5 {
                last = try await api.call(.post, "/api/v1/auth/sms/verify", json: ["phone": "+15550001111", "code": wrongCode, "device": ["type": "android", "name": "Pixel"]], device: device)
            }
            #expect(last?.code == "too_many_attempts")
            let late = try await api.call(.post, "/api/v1/auth/sms/verify", json: ["phone": "+15550001111", "code": fresh, "device": ["type": "android", "name": "Pixel"]], device: device)
            #expect(late.status == .unauthorized)

            // Codes live five minutes.
            _ = try await api.call(.post, "/api/v1/auth/sms/start", json: ["phone": "+15550001111"])
            let expiring = try #require(codes.code(for: "+15550001111"))
            clock.advance(by: 301)
            let expired = try await api.call(.post, "/api/v1/auth/sms/verify", json: ["phone": "+15550001111", "code": expiring, "device": ["type": "android", "name": "Pixel"]], device: device)
            #expect(expired.status == .unauthorized)
        }
    }

    @Test("Starting a code for an unknown phone looks the same and sends nothing")
    func codeForUnknownPhone() async throws {
        let codes = CapturingCodeSender()
        try await withAPI(codes: codes) { api, _ in
            let reply = try await api.call(.post, "/api/v1/auth/sms/start", json: ["phone": "+15559999999"])
            #expect(reply.status == .accepted)
            #expect(codes.code(for: "+15559999999") == nil)
        }
    }
}
