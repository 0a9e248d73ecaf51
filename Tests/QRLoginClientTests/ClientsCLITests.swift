import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import Testing

/// Runs `qrlogin ARGS` to its end, without a server.
private func qrlogin(_ arguments: [String], stdin: String? = nil) async throws -> (status: Int32, stdout: String, stderr: String) {
    let process = try RunningProcess(try CLIHarness.locateBinary(), arguments, environment: ProcessInfo.processInfo.environment, stdin: stdin)
    let status = try await process.waitForExit()
    return (status, process.stdout, process.stderr)
}

private func json(_ text: String) throws -> [String: Any] {
    try #require(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any], "not a JSON object: \(text)")
}

/// A form POST to the server, answered as JSON.
private func post(_ url: String, _ form: String, basic: String? = nil) async throws -> (status: Int, body: [String: Any]) {
    var request = HTTPClientRequest(url: url)
    request.method = .POST
    request.headers.add(name: "Content-Type", value: "application/x-www-form-urlencoded")
    if let basic { request.headers.add(name: "Authorization", value: "Basic " + Data(basic.utf8).base64EncodedString()) }
    request.body = .bytes(ByteBuffer(string: form))
    let response = try await HTTPClient.shared.execute(request, timeout: .seconds(10))
    let body = try await response.body.collect(upTo: 1 << 16)
    return (Int(response.status.code), (try? JSONSerialization.jsonObject(with: Data(body.readableBytesView))) as? [String: Any] ?? [:])
}

@Suite("qrlogin clients and the device grant from the command line", .serialized)
struct ClientsCLITests {
    @Test("clients add, list, show, rotate-secret and remove work on the database, with clear errors")
    func manageClients() async throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("qrlogin-clients-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let db = ["--database", dir.appendingPathComponent("c.sqlite").path]

        let added = try await qrlogin(["clients", "add", "--id", "kiosk", "--name", "Lobby kiosk", "--type", "confidential", "--scope", "doors:open", "--json"] + db)
        #expect(added.status == 0, "\(added.stderr)")
        let kiosk = try json(added.stdout)
        let secret = try #require(kiosk["secret"] as? String)
        #expect(secret.hasPrefix("qrl_cs_"))
        #expect(kiosk["grantTypes"] as? [String] == ["device_code", "refresh_token"])
        #expect(kiosk["scopes"] as? [String] == ["doors:open"])

        let plain = try await qrlogin(["clients", "add", "--id", "tv", "--name", "TV", "--require-dpop"] + db)
        #expect(plain.status == 0)
        #expect(plain.stdout.split(separator: "\n").contains { $0.hasPrefix("DPoP required") && $0.hasSuffix(" yes") }, "\(plain.stdout)")
        #expect(!plain.stdout.contains("qrl_cs_"), "a public client has no secret")

        let list = try await qrlogin(["clients", "list", "--json"] + db)
        let clients = try #require(try json(list.stdout)["clients"] as? [[String: Any]])
        #expect(clients.compactMap { $0["id"] as? String } == ["kiosk", "tv"])
        #expect(!list.stdout.contains(secret), "the secret is shown once")

        let show = try await qrlogin(["clients", "show", "kiosk", "--json"] + db)
        let hash = try #require(try json(show.stdout)["secretSHA256"] as? String)
        let rotated = try await qrlogin(["clients", "rotate-secret", "kiosk", "--json"] + db)
        #expect(rotated.status == 0, "\(rotated.stderr)")
        let newSecret = try #require(try json(rotated.stdout)["secret"] as? String)
        #expect(newSecret != secret)
        #expect(try json(try await qrlogin(["clients", "show", "kiosk", "--json"] + db).stdout)["secretSHA256"] as? String != hash)

        let duplicate = try await qrlogin(["clients", "add", "--id", "tv", "--name", "Again"] + db)
        #expect(duplicate.status == 1)
        #expect(duplicate.stderr.contains("exists already"))
        let badName = try await qrlogin(["clients", "add", "--id", "x", "--name", ""] + db)
        #expect(badName.status == 64)
        #expect(badName.stderr.contains("name"))
        let badGrant = try await qrlogin(["clients", "add", "--id", "y", "--name", "Y", "--grant-type", "password"] + db)
        #expect(badGrant.status == 64)
        #expect(badGrant.stderr.contains("unknown grant type 'password'"))
        let publicRotate = try await qrlogin(["clients", "rotate-secret", "tv"] + db)
        #expect(publicRotate.status == 1)
        #expect(try json(try await qrlogin(["clients", "list", "--json"] + db).stdout)["clients"] as? [Any] != nil)

        #expect(try await qrlogin(["clients", "remove", "tv"] + db).status == 0)
        let gone = try await qrlogin(["clients", "show", "tv"] + db)
        #expect(gone.status == 1)
        #expect(gone.stderr.contains("no client with id 'tv'"))
        #expect(try await qrlogin(["clients", "remove", "tv"] + db).status == 1)
    }

    @Test("keys rotate adds a signing key per algorithm that signs from then on; keys list shows the retired one")
    func rotateKeys() async throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("qrlogin-keys-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let db = ["--database", dir.appendingPathComponent("k.sqlite").path]
        let empty = try await qrlogin(["keys", "list"] + db)
        #expect(empty.status == 0)
        #expect(empty.stdout.contains("no keys yet"))
        let first = try await qrlogin(["keys", "rotate", "--json"] + db)
        #expect(first.status == 0, "\(first.stderr)")
        let added = try #require(try json(first.stdout)["added"] as? [[String: Any]])
        #expect(added.compactMap { $0["algorithm"] as? String }.sorted() == ["ES256", "RS256"])
        let second = try await qrlogin(["keys", "rotate", "--algorithm", "es256", "--json"] + db)
        #expect((try json(second.stdout)["added"] as? [Any])?.count == 1)
        let keys = try #require(try json(try await qrlogin(["keys", "list", "--json"] + db).stdout)["keys"] as? [[String: Any]])
        #expect(keys.count == 3)
        #expect(keys.filter { $0["signing"] as? Bool == true }.count == 2, "one signing key per algorithm")
        #expect(keys.contains { $0["algorithm"] as? String == "ES256" && $0["retiredAt"] != nil })
        #expect(!(try await qrlogin(["keys", "list", "--json"] + db).stdout.contains("PRIVATE")), "private keys are never printed")
        let bad = try await qrlogin(["keys", "rotate", "--algorithm", "HS256"] + db)
        #expect(bad.status == 64)
    }

    @Test("a device grant approved with phone approve --code, from a client file")
    func deviceGrantFromTheTerminal() async throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("qrlogin-clientfile-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let file = dir.appendingPathComponent("clients.json")
        try Data(#"{"clients":[{"id":"tv","name":"Living-room TV","type":"public","grantTypes":["device_code"]}]}"#.utf8).write(to: file)
        try await CLIHarness.with(serverArguments: ["--client-file", file.path, "--device-interval", "1"]) { cli in
            try await cli.signedInPhone("alice", displayName: "Alice")
            let started = try await post(cli.serverURL + "/oauth/device_authorization", "client_id=tv&scope=openid+profile")
            #expect(started.status == 200)
            let userCode = try #require(started.body["user_code"] as? String)
            let deviceCode = try #require(started.body["device_code"] as? String)

            let wrong = try await cli.run(["phone", "approve", "--code", "BBBB-BBBB", "--yes", "--profile", "phone"])
            #expect(wrong.status == 1)
            #expect(wrong.stderr.contains("no sign-in is waiting for the code"))

            let approved = try await cli.run(["phone", "approve", "--code", userCode.lowercased(), "--yes", "--profile", "phone"])
            #expect(approved.status == 0, "\(approved.stderr)")
            #expect(approved.stdout.contains("Living-room TV asks to sign in as Alice"))
            #expect(approved.stdout.contains("See your name and username"))
            #expect(approved.stdout.contains("Approved: Living-room TV is now signed in as Alice."))

            let tokens = try await post(cli.serverURL + "/oauth/token", "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Adevice_code&client_id=tv&device_code=\(deviceCode)")
            #expect(tokens.status == 200, "\(tokens.body)")
            #expect(tokens.body["token_type"] as? String == "Bearer")
            #expect(tokens.body["scope"] as? String == "openid profile")
        }
    }
}
