import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

private let urlPattern = #"(https?://\S+/q/[A-Za-z0-9_-]+)"#

@Suite("The qrlogin binary against qrlogin serve", .serialized)
struct CLITests {
    @Test("phone register and sign-in, login, approve with the number, whoami, revoke")
    func fullFlow() async throws {
        try await CLIHarness.with { cli in
            try await cli.signedInPhone("alice", displayName: "Alice")

            let login = try cli.start(["login", "--profile", "pc", "--name", "CI box"])
            let url = try await login.waitForOutput(urlPattern)

            // First the scan: it shows who is asking and, with no answer on stdin, keeps the
            // ticket for the --match step.
            let scanned = try await cli.run(["phone", "approve", url, "--profile", "phone"])
            #expect(scanned.status == 0, "\(scanned.stderr)")
            #expect(scanned.stdout.contains("\"CI box\""))
            #expect(scanned.stdout.contains("qrlogin-cli/1"))
            #expect(scanned.stdout.contains("127.0.0.1"))

            let match = try await login.waitForOutput(#"Scanned by Alice — pick (\d+) on your phone"#)
            let approved = try await cli.run(["phone", "approve", url, "--match", match, "--yes", "--profile", "phone"])
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
}
