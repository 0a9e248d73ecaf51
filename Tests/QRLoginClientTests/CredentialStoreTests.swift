import Crypto
import Foundation
import QRLoginClient
import QRLoginCore
import Testing

/// A fresh directory standing in for `$XDG_CONFIG_HOME`.
func temporaryConfigHome() throws -> URL {
    let url = FileManager.default.temporaryDirectory.appendingPathComponent("qrlogin-tests-\(UUID().uuidString)", isDirectory: true)
    try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    return url
}

/// The permission bits of `path`.
func mode(of path: String) throws -> Int {
    let attributes = try FileManager.default.attributesOfItem(atPath: path)
    return (attributes[.posixPermissions] as? NSNumber)?.intValue ?? -1
}

@Suite("Credential files")
struct CredentialStoreTests {
    @Test("profiles live under $XDG_CONFIG_HOME/qrlogin/<profile> with modes 0700 and 0600")
    func modes() throws {
        let home = try temporaryConfigHome()
        defer { try? FileManager.default.removeItem(at: home) }
        let store = try FileCredentialStore(profile: "pc", environment: ["XDG_CONFIG_HOME": home.path])
        #expect(store.directory.path == home.appendingPathComponent("qrlogin/pc").path)
        #expect(try store.loadKey() == nil)
        let key = try store.loadOrCreateKey()
        #expect(try store.loadKey()?.rawRepresentation == key.rawRepresentation)
        let session = StoredSession(server: "http://127.0.0.1:8080", accessToken: "qrl_at_x", expiresAt: Date(timeIntervalSince1970: 1_900_000_000), accountId: "a", username: "alice", deviceId: "d", deviceType: .cli)
        try store.saveSession(session)
        #expect(try store.loadSession() == session)
        #expect(try mode(of: store.directory.path) == 0o700)
        #expect(try mode(of: store.directory.appendingPathComponent("key.pem").path) == 0o600)
        #expect(try mode(of: store.directory.appendingPathComponent("session.json").path) == 0o600)
        try store.deleteSession()
        #expect(try store.loadSession() == nil)
        #expect(try FileManager.default.contentsOfDirectory(atPath: store.directory.path) == ["key.pem"])
    }

    @Test("without XDG_CONFIG_HOME the profile is under ~/.config/qrlogin")
    func fallback() {
        #expect(FileCredentialStore.configRoot(environment: ["HOME": "/home/u"]).path == "/home/u/.config/qrlogin")
    }

    @Test("profile names cannot escape the config directory", arguments: ["", "..", "../x", "a/b", ".hidden"])
    func badProfiles(name: String) {
        #expect(throws: FileCredentialStoreError.self) { try FileCredentialStore(profile: name, environment: ["XDG_CONFIG_HOME": "/tmp"]) }
    }

    @Test("a token copied into another profile (another key) is refused")
    func copiedToken() async throws {
        let home = try temporaryConfigHome()
        defer { try? FileManager.default.removeItem(at: home) }
        let environment = ["XDG_CONFIG_HOME": home.path]
        try await InProcessServer.with { server in
            let phone = try await server.signedInPhone("ivy")
            let pcStore = try FileCredentialStore(profile: "pc", environment: environment)
            let pc = try server.client(key: try pcStore.loadOrCreateKey())
            let login = try await pc.createLogin(device: DeviceDescription(type: .cli, name: "pc"))
            var scan: ScanResult?
            for try await status in pc.waitForLogin(login) {
                if status.state == .pending { scan = try await phone.scan(url: login.url) }
                if status.state == .scanned, let scan, let match = status.match { try await phone.confirm(scan, match: match) }
                if let token = status.token {
                    try pcStore.saveSession(StoredSession(server: server.url, accessToken: token.accessToken, expiresAt: token.expiresAt, accountId: token.accountId, deviceId: token.deviceId, deviceType: token.deviceType))
                }
            }
            // The thief's profile has its own key and a copy of the PC's session file.
            let thiefStore = try FileCredentialStore(profile: "thief", environment: environment)
            _ = try thiefStore.loadOrCreateKey()
            try FileManager.default.copyItem(at: pcStore.directory.appendingPathComponent("session.json"), to: thiefStore.directory.appendingPathComponent("session.json"))
            let stolen = try #require(try thiefStore.loadSession())
            let thief = try server.client(key: try #require(try thiefStore.loadKey()), token: stolen.accessToken)
            let error = await #expect(throws: QRLoginClientError.self) { try await thief.me() }
            #expect(error?.code == "invalid_token")

            let owner = try server.client(key: try #require(try pcStore.loadKey()), token: try #require(try pcStore.loadSession()).accessToken)
            #expect(try await owner.me().account.username == "ivy")
        }
    }
}
