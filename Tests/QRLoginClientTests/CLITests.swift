import Crypto
import Foundation
import QRLoginClient
import QRLoginCore
import Testing

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

private let urlPattern = #"(https?://\S+/q/[A-Za-z0-9_-]+)"#

/// The url of the `number`-th code (from 1) that `login` printed, read from the printed QR
/// code: its half blocks must give exactly the modules of the url's QR code.
private func scannedURL(_ login: RunningProcess, number: Int = 1) async throws -> String {
    let deadline = ContinuousClock.now + .seconds(30)
    let url = try Regex(urlPattern)
    while ContinuousClock.now < deadline {
        let codes = PrintedQR.all(in: login.stdout)
        if codes.count >= number, codes[number - 1].urlLine.firstMatch(of: url) != nil {
            let code = codes[number - 1]
            try #require(code.encodes(code.urlLine), "the printed QR code does not carry \(code.urlLine)")
            return code.urlLine
        }
        if !login.process.isRunning, PrintedQR.all(in: login.stdout).count < number { break }
        try await Task.sleep(for: .milliseconds(50))
    }
    Issue.record("no QR code number \(number) in output:\n\(login.stdout)\nstderr:\n\(login.stderr)")
    throw CancellationError()
}

/// JSON output parsed as an object.
private func object(_ text: String) throws -> [String: Any] {
    try #require(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any], "not a JSON object: \(text)")
}

@Suite("The qrlogin binary against qrlogin serve", .serialized)
struct CLITests {
    @Test("phone approve warns when the PC asked from another network (QRLjacking), and still lets the user decide")
    func differentNetworkWarning() async throws {
        try await CLIHarness.with(serverArguments: ["--trusted-proxy", "127.0.0.1"]) { cli in
            try await cli.signedInPhone("mallory-target", displayName: "Victim")
            // The PC's request arrives as if through a proxy from another network.
            let pc = try QRLoginClient(server: cli.serverURL, key: .init(), transport: HeaderAddingTransport([("X-Forwarded-For", "198.51.100.23")]))
            let login = try await pc.createLogin(device: DeviceDescription(type: .web, name: "relayed"))
            let said = try await cli.run(["phone", "approve", login.url, "--profile", "phone"], stdin: "")
            #expect(said.status == 0, "\(said.stderr)")
            #expect(said.stdout.contains("198.51.100.23"))
            let warning = "Warning: this request comes from a different network than your phone. If someone sent you this code or link, deny it."
            let warned = try #require(said.stdout.range(of: warning), "no warning in:\n\(said.stdout)")
            let question = try #require(said.stdout.range(of: "Which number does that device show?"))
            #expect(warned.upperBound <= question.lowerBound, "the warning comes before the number choice")
            // It warns, it does not block: the user can still deny (or approve) it.
            let denied = try await cli.run(["phone", "deny", login.url, "--profile", "phone"])
            #expect(denied.status == 0, "\(denied.stderr)")
            #expect(try await pc.status(of: login).state == .denied)
        }
    }

    @Test("serve --log-format json at trace: every line is one JSON object, and no secret is ever logged")
    func jsonLogsKeepSecrets() async throws {
        try await CLIHarness.with(serverArguments: ["--log-format", "json", "--log-level", "trace"]) { cli in
            try await cli.signedInPhone("alice", displayName: "Alice")
            let login = try cli.start(["login", "--profile", "pc", "--name", "log box"])
            let url = try await scannedURL(login)
            _ = try await cli.run(["phone", "approve", url, "--profile", "phone"])
            let match = try await login.waitForOutput(#"pick (\d+) on your phone"#)
            let approved = try await cli.run(["phone", "approve", "--match", match, "--yes", "--profile", "phone", "--", String(url.split(separator: "/").last!)])
            #expect(approved.status == 0, "\(approved.stderr)")
            #expect(try await login.waitForExit() == 0, "\(login.stderr)")
            #expect(try await cli.run(["whoami", "--profile", "pc"]).status == 0)
            #expect(try await cli.run(["logout", "--profile", "pc"]).status == 0)

            let log = cli.server.stderr + cli.server.stdout
            let lines = log.split(separator: "\n", omittingEmptySubsequences: true)
            #expect(lines.count > 20, "too few lines to judge: \(log)")
            var messages = Set<String>()
            for line in lines {
                let object = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any]
                #expect(object != nil, "not a JSON object: \(line)")
                if let message = object?["message"] as? String { messages.insert(message) }
                #expect(object?["level"] is String && object?["timestamp"] is String, "\(line)")
            }
            // The flow was logged (request paths, the scan), with the metadata keys of the text log.
            #expect(messages.contains("login request scanned"), "\(messages)")
            #expect(log.contains("\"hb.request.path\":\"/api/v1/qr\""))
            // Every secret of the flow: the password, and the access tokens, poll secrets and
            // scan tickets the server handed out (all qrl_…), and the DPoP proofs (JWS, eyJ…).
            let saved = try FileManager.default.subpathsOfDirectory(atPath: cli.configHome.path).compactMap {
                try? String(contentsOfFile: cli.configHome.appendingPathComponent($0).path, encoding: .utf8)
            }.joined()
            #expect(saved.contains("qrl_at_"), "the profiles keep the tokens, so the check below has something to find")
            for secret in ["correct horse battery", "qrl_", "eyJ"] {
                #expect(!log.contains(secret), "the server log contains \(secret)")
            }
        }
    }

    @Test("phone register and sign-in, login, approve with the number, whoami, revoke")
    func fullFlow() async throws {
        try await CLIHarness.with { cli in
            try await cli.signedInPhone("alice", displayName: "Alice")

            let login = try cli.start(["login", "--profile", "pc", "--name", "CI box"])
            let url = try await scannedURL(login)

            // First the scan: it shows who is asking and, with no answer on stdin, keeps the
            // ticket for the --match step.
            let scanned = try await cli.run(["phone", "approve", url, "--profile", "phone"])
            #expect(scanned.status == 0, "\(scanned.stderr)")
            #expect(scanned.stdout.contains("\"CI box\""))
            #expect(scanned.stdout.contains("qrlogin-cli/1"))
            #expect(scanned.stdout.contains("127.0.0.1"))
            #expect(!scanned.stdout.contains("different network"), "the PC asked from the phone's own address")

            let match = try await login.waitForOutput(#"Scanned by Alice — pick (\d+) on your phone"#)
            // Finish with the command the scan printed, as a user would copy it.
            let start = try #require(scanned.stdout.range(of: "To approve, run: qrlogin "))
            let end = try #require(scanned.stdout.range(of: "   (N = ", range: start.upperBound..<scanned.stdout.endIndex))
            var arguments = scanned.stdout[start.upperBound..<end.lowerBound].split(separator: " ").map { $0 == "N" ? match : String($0) }
            let separator = try #require(arguments.firstIndex(of: "--"), "the id goes after --, since ids may begin with '-'")
            arguments.insert("--yes", at: separator)
            let approved = try await cli.run(arguments)
            #expect(approved.status == 0, "\(approved.stderr)")
            #expect(try await login.waitForExit() == 0, "\(login.stderr)")
            #expect(login.stdout.contains("Logged in as Alice (alice)"))

            let whoami = try await cli.run(["whoami", "--profile", "pc"])
            #expect(whoami.status == 0, "\(whoami.stderr)")
            #expect(whoami.stdout.contains("Alice (alice)"))
            let json = try await cli.run(["whoami", "--profile", "pc", "--json"])
            let me = try #require(try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Any])
            let pcDevice = try #require((me["device"] as? [String: Any])?["id"] as? String)

            for profile in ["pc", "phone"] {
                let directory = cli.profileDirectory(profile)
                #expect(try mode(of: directory.path) == 0o700)
                for file in try FileManager.default.contentsOfDirectory(atPath: directory.path) {
                    #expect(try mode(of: directory.appendingPathComponent(file).path) == 0o600, "\(profile)/\(file)")
                }
                #expect(FileManager.default.fileExists(atPath: directory.appendingPathComponent("session.json").path))
            }

            let devices = try await cli.run(["devices", "--profile", "phone"])
            #expect(devices.stdout.contains(pcDevice))
            #expect(devices.stdout.contains("CI box"))

            // An id that begins with '-' is an id, not an option.
            let dashed = try await cli.run(["revoke", "-" + String(repeating: "A", count: 42), "--profile", "phone"])
            #expect(dashed.status == 1, "\(dashed.stderr)")
            let revoked = try await cli.run(["revoke", pcDevice, "--profile", "phone"])
            #expect(revoked.status == 0, "\(revoked.stderr)")
            let refused = try await cli.run(["whoami", "--profile", "pc"])
            #expect(refused.status == 1)
            #expect(refused.stderr.contains("no longer works"))
            #expect(refused.stderr.contains("qrlogin login --profile pc"))
            #expect(!refused.stderr.contains("Fatal"))
        }
    }

    @Test("phone deny: login exits 1")
    func denied() async throws {
        try await CLIHarness.with { cli in
            try await cli.signedInPhone("bob", displayName: "Bob")
            let login = try cli.start(["login", "--profile", "pc"])
            let url = try await login.waitForOutput(urlPattern)
            let denied = try await cli.run(["phone", "deny", url, "--profile", "phone"])
            #expect(denied.status == 0, "\(denied.stderr)")
            #expect(try await login.waitForExit() == 1)
            #expect(login.stderr.contains("denied"))
            #expect(!FileManager.default.fileExists(atPath: cli.profileDirectory("pc").appendingPathComponent("session.json").path))
        }
    }

    @Test("answering no at the prompt denies")
    func answeredNo() async throws {
        try await CLIHarness.with { cli in
            try await cli.signedInPhone("carol", displayName: "Carol")
            let login = try cli.start(["login", "--profile", "pc"])
            let url = try await login.waitForOutput(urlPattern)
            let said = try await cli.run(["phone", "approve", url, "--profile", "phone"], stdin: "\(0)\nno\n")
            #expect(said.status == 1)
            #expect(said.stderr.contains("not confirmed"))
            #expect(try await login.waitForExit() == 1)
        }
    }

    @Test("Ctrl-C in login cancels the request on the server")
    func interrupt() async throws {
        try await CLIHarness.with { cli in
            try await cli.signedInPhone("dave", displayName: "Dave")
            let login = try cli.start(["login", "--profile", "pc"])
            let url = try await login.waitForOutput(urlPattern)
            login.signal(SIGINT)
            #expect(try await login.waitForExit() == 1)
            #expect(login.stderr.contains("cancelled"))
            let late = try await cli.run(["phone", "approve", url, "--profile", "phone"])
            #expect(late.status == 1)
            #expect(late.stderr.contains("already cancelled"), "\(late.stderr)")
        }
    }

    @Test("exit codes: 69 unreachable, 64 usage, 1 not logged in")
    func exitCodes() async throws {
        try await CLIHarness.with { cli in
            let unreachable = try await cli.run(["login", "--profile", "pc", "--server", "http://127.0.0.1:9"])
            #expect(unreachable.status == 69, "\(unreachable.stderr)")
            #expect(unreachable.stderr.contains("cannot reach"))
            let usage = try await cli.run(["revoke"])
            #expect(usage.status == 64)
            let badProfile = try await cli.run(["whoami", "--profile", "../x"])
            #expect(badProfile.status == 64)
            let nobody = try await cli.run(["whoami", "--profile", "nobody"])
            #expect(nobody.status == 1)
            #expect(nobody.stderr.contains("not logged in"))
            let noPhone = try await cli.run(["phone", "approve", "abc", "--profile", "nobody"])
            #expect(noPhone.status == 1)
            #expect(noPhone.stderr.contains("qrlogin phone signin"))
        }
    }

    @Test("an expired code is replaced by a new one, 5 times by default, then login exits 1")
    func renewals() async throws {
        try await CLIHarness.with(serverArguments: ["--request-ttl", "1"]) { cli in
            try await cli.signedInPhone("ivy", displayName: "Ivy")
            let login = try cli.start(["login", "--profile", "pc"])
            let short = try cli.start(["login", "--profile", "pc2", "--renewals", "1"])

            #expect(try await short.waitForExit(timeout: .seconds(20)) == 1)
            let shortCodes = PrintedQR.all(in: short.stdout)
            #expect(shortCodes.count == 2, "\(short.stdout)")
            #expect(short.stdout.contains("here is a new one (2 of 2)"))
            #expect(short.stderr.contains("expired: nobody approved the login in time; run `qrlogin login` again"), "\(short.stderr)")

            #expect(try await login.waitForExit(timeout: .seconds(30)) == 1)
            let codes = PrintedQR.all(in: login.stdout)
            #expect(codes.count == 6, "\(login.stdout)")
            let url = try Regex(urlPattern)
            for code in codes {
                #expect(code.urlLine.firstMatch(of: url) != nil)
                #expect(code.encodes(code.urlLine), "the printed QR code does not carry \(code.urlLine)")
            }
            #expect(Set(codes.map(\.urlLine)).count == codes.count, "each renewal shows a new url")
            #expect(!codes[0].encodes(codes[1].urlLine), "another url gives another matrix")
            for number in 2...6 { #expect(login.stdout.contains("here is a new one (\(number) of 6)")) }
            #expect(login.stdout.components(separatedBy: "The code expired.").count - 1 == 6)
            #expect(login.stderr.contains("expired: nobody approved the login in time; run `qrlogin login` again"), "\(login.stderr)")
            #expect(!login.stderr.contains("Fatal"))
            #expect(!FileManager.default.fileExists(atPath: cli.profileDirectory("pc").appendingPathComponent("session.json").path))

            // The replaced codes are over on the server: a late scan is refused.
            let late = try await cli.run(["phone", "approve", try #require(codes.first?.urlLine), "--profile", "phone"])
            #expect(late.status == 1)
            #expect(late.stderr.contains("expired"), "\(late.stderr)")
        }
    }

    @Test("--json of whoami, devices and revoke; logout revokes the token and forgets it")
    func jsonAndLogout() async throws {
        try await CLIHarness.with { cli in
            try await cli.signedInPhone("judy", displayName: "Judy")
            let login = try cli.start(["login", "--profile", "pc", "--name", "build box"])
            let url = try await scannedURL(login)
            _ = try await cli.run(["phone", "approve", url, "--profile", "phone"])
            let match = try await login.waitForOutput(#"Scanned by Judy — pick (\d+) on your phone"#)
            let approved = try await cli.run(["phone", "approve", url, "--match", match, "--yes", "--profile", "phone"])
            #expect(approved.status == 0, "\(approved.stderr)")
            #expect(try await login.waitForExit() == 0, "\(login.stderr)")

            let phoneMe = try await cli.run(["whoami", "--profile", "phone", "--json"])
            #expect(phoneMe.status == 0, "\(phoneMe.stderr)")
            let phoneId = try #require((try object(phoneMe.stdout)["device"] as? [String: Any])?["id"] as? String)

            let whoami = try await cli.run(["whoami", "--profile", "pc", "--json"])
            #expect(whoami.status == 0, "\(whoami.stderr)")
            let me = try object(whoami.stdout)
            let account = try #require(me["account"] as? [String: Any])
            let device = try #require(me["device"] as? [String: Any])
            let token = try #require(me["token"] as? [String: Any])
            #expect(account["username"] as? String == "judy")
            #expect(account["displayName"] as? String == "Judy")
            #expect(device["type"] as? String == "cli")
            #expect(device["name"] as? String == "build box")
            #expect(device["current"] as? Bool == true)
            #expect(token["origin"] as? String == "qr")
            #expect(token["approvedBy"] as? String == phoneId)
            #expect(token["deviceType"] as? String == "cli")
            #expect((token["expiresAt"] as? String)?.contains("T") == true, "ISO 8601 dates")
            #expect(me["accessToken"] == nil && !whoami.stdout.contains("qrl_at_"), "whoami never prints the token")
            let pcId = try #require(device["id"] as? String)

            let listed = try await cli.run(["devices", "--profile", "phone", "--json"])
            #expect(listed.status == 0, "\(listed.stderr)")
            let devices = try #require(try JSONSerialization.jsonObject(with: Data(listed.stdout.utf8)) as? [[String: Any]])
            #expect(Set(devices.compactMap { $0["id"] as? String }) == [phoneId, pcId])
            let pcEntry = try #require(devices.first { $0["id"] as? String == pcId })
            #expect(pcEntry["type"] as? String == "cli")
            #expect(pcEntry["name"] as? String == "build box")
            #expect(pcEntry["approvedBy"] as? String == phoneId)
            #expect(pcEntry["current"] as? Bool == false)
            #expect(devices.first { $0["id"] as? String == phoneId }?["current"] as? Bool == true)

            // logout: the token is revoked on the server, not only forgotten. Keep a copy of
            // the session file to try the old token after.
            let session = cli.profileDirectory("pc").appendingPathComponent("session.json")
            let saved = try Data(contentsOf: session)
            let loggedOut = try await cli.run(["logout", "--profile", "pc"])
            #expect(loggedOut.status == 0, "\(loggedOut.stderr)")
            #expect(loggedOut.stdout.contains("Logged out of profile \"pc\""))
            #expect(!FileManager.default.fileExists(atPath: session.path))
            let forgotten = try await cli.run(["whoami", "--profile", "pc"])
            #expect(forgotten.status == 1)
            #expect(forgotten.stderr.contains("not logged in on profile \"pc\""), "\(forgotten.stderr)")
            try saved.write(to: session)
            let refused = try await cli.run(["whoami", "--profile", "pc"])
            #expect(refused.status == 1)
            #expect(refused.stderr.contains("no longer works"), "\(refused.stderr)")
            #expect(refused.stderr.contains("qrlogin login --profile pc"))
            #expect(!refused.stderr.contains("Fatal"))
            let again = try await cli.run(["logout", "--profile", "pc", "--json"])
            #expect(again.status == 0, "\(again.stderr)")
            #expect(try object(again.stdout)["loggedOut"] as? String == "pc")

            // revoke --json, from the phone: the PC is unlinked.
            let revoked = try await cli.run(["revoke", pcId, "--profile", "phone", "--json"])
            #expect(revoked.status == 0, "\(revoked.stderr)")
            #expect(try object(revoked.stdout)["revoked"] as? String == pcId)
            let after = try await cli.run(["devices", "--profile", "phone", "--json"])
            let remaining = try #require(try JSONSerialization.jsonObject(with: Data(after.stdout.utf8)) as? [[String: Any]])
            #expect(remaining.compactMap { $0["id"] as? String } == [phoneId])
        }
    }
}
