import Foundation
import Logging
import QRLoginServer
import Testing

@Suite("Server configuration")
struct ConfigurationTests {
    private func resolve(_ options: ServeOptions = ServeOptions(), _ environment: [String: String] = [:]) throws(ServerConfigurationError) -> ServerConfiguration {
        try ServerConfiguration.resolve(options: options, environment: environment)
    }

    /// The error for `environment`, which must be refused.
    private func refusal(_ options: ServeOptions = ServeOptions(), _ environment: [String: String] = [:]) -> ServerConfigurationError? {
        do {
            _ = try resolve(options, environment)
            return nil
        } catch {
            return error
        }
    }

    @Test func defaults() throws {
        let config = try resolve()
        #expect(config.host == "127.0.0.1")
        #expect(config.port == 8080)
        #expect(config.database == "qrlogin.sqlite")
        #expect(config.publicURL == nil)
        #expect(config.publicBaseURL == "http://127.0.0.1:8080")
        #expect(config.rateLimits == ServerConfiguration().rateLimits)
        #expect(!config.rateLimits.isEmpty)
        #expect(config.trustedProxies == [])
        #expect(config.flow.requestTTL == 120)
        #expect(config.flow.ticketTTL == 60)
        #expect(config.flow.tokenTTL == 30 * 24 * 3600)
        #expect(config.flow.proofSkew == 60)
        #expect(config.flow.bcryptCost == 12)
        #expect(config.logLevel == .info)
        #expect(config.logFormat == .text)
    }

    @Test func everyEnvironmentVariable() throws {
        let config = try resolve(ServeOptions(), [
            "QRLOGIN_HOST": "0.0.0.0",
            "QRLOGIN_PORT": "9090",
            "QRLOGIN_DATABASE": ":memory:",
            "QRLOGIN_PUBLIC_URL": "https://login.example.com",
            "QRLOGIN_RATE_LIMITS": "off",
            "QRLOGIN_TRUSTED_PROXIES": "10.0.0.1, 10.0.0.2,,::1",
            "QRLOGIN_REQUEST_TTL": "300",
            "QRLOGIN_TICKET_TTL": "30",
            "QRLOGIN_TOKEN_TTL": "86400",
            "QRLOGIN_PROOF_SKEW": "5",
            "QRLOGIN_BCRYPT_COST": "4",
            "QRLOGIN_LOG_LEVEL": "DEBUG",
            "QRLOGIN_LOG_FORMAT": "JSON",
            "QRLOGIN_IDLE_TIMEOUT": "15",
        ])
        #expect(config.logFormat == .json)
        #expect(config.host == "0.0.0.0")
        #expect(config.port == 9090)
        #expect(config.database == ":memory:")
        #expect(config.publicBaseURL == "https://login.example.com")
        #expect(config.rateLimits.isEmpty)
        #expect(config.trustedProxies == ["10.0.0.1", "10.0.0.2", "::1"])
        #expect(config.flow.requestTTL == 300)
        #expect(config.flow.ticketTTL == 30)
        #expect(config.flow.tokenTTL == 86400)
        #expect(config.flow.proofSkew == 5)
        #expect(config.flow.bcryptCost == 4)
        #expect(config.logLevel == .debug)
        #expect(config.idleTimeout == 15)
    }

    @Test(arguments: ["on", "ON", "On"])
    func rateLimitsOn(value: String) throws {
        #expect(try resolve(ServeOptions(), ["QRLOGIN_RATE_LIMITS": value]).rateLimits == ServerConfiguration().rateLimits)
    }

    @Test func rateLimitsOffAsOption() throws {
        #expect(try resolve(ServeOptions(rateLimits: false)).rateLimits.isEmpty)
        #expect(try resolve(ServeOptions(rateLimits: true), ["QRLOGIN_RATE_LIMITS": "off"]).rateLimits == ServerConfiguration().rateLimits)
    }

    @Test func emptyVariablesCountAsUnset() throws {
        let names = ["QRLOGIN_HOST", "QRLOGIN_PORT", "QRLOGIN_DATABASE", "QRLOGIN_PUBLIC_URL", "QRLOGIN_RATE_LIMITS", "QRLOGIN_TRUSTED_PROXIES",
                     "QRLOGIN_REQUEST_TTL", "QRLOGIN_TICKET_TTL", "QRLOGIN_TOKEN_TTL", "QRLOGIN_PROOF_SKEW", "QRLOGIN_BCRYPT_COST", "QRLOGIN_LOG_LEVEL",
                     "QRLOGIN_IDLE_TIMEOUT"]
        let config = try resolve(ServeOptions(), Dictionary(uniqueKeysWithValues: names.map { ($0, "") }))
        #expect(config.host == "127.0.0.1")
        #expect(config.port == 8080)
        #expect(config.publicURL == nil)
        #expect(!config.rateLimits.isEmpty)
        #expect(config.flow.requestTTL == 120)
        #expect(config.idleTimeout == 75)
    }

    @Test func optionBeatsEnvironment() throws {
        let options = ServeOptions(
            host: "::1", port: 7000, database: "other.sqlite", publicURL: "https://a.example", rateLimits: true,
            trustedProxies: ["192.0.2.1"], requestTTL: 60, ticketTTL: 20, tokenTTL: 3600, proofSkew: 10, bcryptCost: 10, logLevel: "error",
            idleTimeout: 5
        )
        let config = try resolve(options, [
            "QRLOGIN_HOST": "0.0.0.0", "QRLOGIN_PORT": "9090", "QRLOGIN_DATABASE": ":memory:",
            "QRLOGIN_PUBLIC_URL": "https://b.example", "QRLOGIN_RATE_LIMITS": "off", "QRLOGIN_TRUSTED_PROXIES": "10.0.0.1",
            "QRLOGIN_REQUEST_TTL": "300", "QRLOGIN_TICKET_TTL": "30", "QRLOGIN_TOKEN_TTL": "86400",
            "QRLOGIN_PROOF_SKEW": "5", "QRLOGIN_BCRYPT_COST": "4", "QRLOGIN_LOG_LEVEL": "debug", "QRLOGIN_IDLE_TIMEOUT": "300",
        ])
        #expect(config.host == "::1")
        #expect(config.port == 7000)
        #expect(config.database == "other.sqlite")
        #expect(config.publicBaseURL == "https://a.example")
        #expect(!config.rateLimits.isEmpty)
        #expect(config.trustedProxies == ["192.0.2.1"])
        #expect(config.flow.requestTTL == 60)
        #expect(config.flow.ticketTTL == 20)
        #expect(config.flow.tokenTTL == 3600)
        #expect(config.flow.proofSkew == 10)
        #expect(config.flow.bcryptCost == 10)
        #expect(config.logLevel == .error)
        #expect(config.idleTimeout == 5)
    }

    @Test func logFormatOptionBeatsEnvironment() throws {
        #expect(try resolve(ServeOptions(logFormat: "text"), ["QRLOGIN_LOG_FORMAT": "json"]).logFormat == .text)
        #expect(try resolve(ServeOptions(logFormat: "json")).logFormat == .json)
    }

    @Test func anInvalidEnvironmentValueIsIgnoredWhenTheOptionIsGiven() throws {
        #expect(try resolve(ServeOptions(port: 7000), ["QRLOGIN_PORT": "notanumber"]).port == 7000)
    }

    /// Each bad value, the variable the error must name, and words the message must contain.
    static let invalid: [(String, String, String)] = [
        ("QRLOGIN_PORT", "notanumber", "whole number from 0 to 65535"),
        ("QRLOGIN_PORT", "65536", "whole number from 0 to 65535"),
        ("QRLOGIN_PORT", "-1", "whole number from 0 to 65535"),
        ("QRLOGIN_REQUEST_TTL", "0", "from 1 to 3600"),
        ("QRLOGIN_IDLE_TIMEOUT", "0", "from 1 to 3600"),
        ("QRLOGIN_IDLE_TIMEOUT", "3601", "from 1 to 3600"),
        ("QRLOGIN_REQUEST_TTL", "3601", "from 1 to 3600"),
        ("QRLOGIN_TICKET_TTL", "0", "from 10 to 3600"),
        ("QRLOGIN_TICKET_TTL", "1.5", "from 10 to 3600"),
        ("QRLOGIN_TOKEN_TTL", "59", "from 60 to 31622400"),
        ("QRLOGIN_TOKEN_TTL", "31622401", "from 60 to 31622400"),
        ("QRLOGIN_PROOF_SKEW", "0", "from 1 to 600"),
        ("QRLOGIN_PROOF_SKEW", "601", "from 1 to 600"),
        ("QRLOGIN_BCRYPT_COST", "3", "from 4 to 31"),
        ("QRLOGIN_BCRYPT_COST", "32", "from 4 to 31"),
        ("QRLOGIN_PUBLIC_URL", "https://login.example.com/?next=1", "no query"),
        ("QRLOGIN_PUBLIC_URL", "https://login.example.com/?", "no query"),
        ("QRLOGIN_PUBLIC_URL", "https://login.example.com/#top", "fragment"),
        ("QRLOGIN_PUBLIC_URL", "ftp://login.example.com", "http or https"),
        ("QRLOGIN_PUBLIC_URL", "javascript:alert(1)", "http or https"),
        ("QRLOGIN_PUBLIC_URL", "login.example.com", "http or https"),
        ("QRLOGIN_PUBLIC_URL", "https://", "with a host"),
        ("QRLOGIN_RATE_LIMITS", "maybe", "on or off"),
        ("QRLOGIN_TRUSTED_PROXIES", "10.0.0.1,proxy.example.com", "proxy.example.com is not an IP address"),
        ("QRLOGIN_LOG_LEVEL", "loud", "trace, debug, info"),
        ("QRLOGIN_LOG_FORMAT", "logfmt", "text or json"),
    ]

    @Test(arguments: invalid)
    func invalidEnvironmentValueNamesTheVariable(variable: String, value: String, expected: String) throws {
        let error = try #require(refusal(ServeOptions(), [variable: value]))
        #expect(error.variable == variable)
        #expect(error.message.hasPrefix("\(variable)=\(value): "), "\(error.message)")
        #expect(error.message.contains(expected), "\(error.message)")
        #expect("\(error)" == error.message)
    }

    @Test func invalidOptionValueNamesTheOption() throws {
        let port = try #require(refusal(ServeOptions(port: 70000)))
        #expect(port.variable == "QRLOGIN_PORT")
        #expect(port.message == "--port 70000: must be a whole number from 0 to 65535")
        let url = try #require(refusal(ServeOptions(publicURL: "https://x.example/?a=b")))
        #expect(url.message.hasPrefix("--public-url https://x.example/?a=b: must be an http or https URL"))
        let proxy = try #require(refusal(ServeOptions(trustedProxies: ["10.0.0.1", "not-an-ip"])))
        #expect(proxy.message.hasPrefix("--trusted-proxy not-an-ip: must be an IP address"))
        #expect(proxy.variable == "QRLOGIN_TRUSTED_PROXIES")
    }

    @Test func acceptsHTTPAndHTTPSPublicURLsWithAPath() throws {
        #expect(try resolve(ServeOptions(), ["QRLOGIN_PUBLIC_URL": "http://192.0.2.7:8080"]).publicBaseURL == "http://192.0.2.7:8080")
        #expect(try resolve(ServeOptions(), ["QRLOGIN_PUBLIC_URL": "HTTPS://login.example.com/auth"]).publicBaseURL == "HTTPS://login.example.com/auth")
    }

    @Test(arguments: [
        ("127.0.0.1", 8080, "http://127.0.0.1:8080"),
        ("0.0.0.0", 80, "http://0.0.0.0:80"),
        ("localhost", 9000, "http://localhost:9000"),
        ("::1", 8080, "http://[::1]:8080"),
        ("fe80::1", 1234, "http://[fe80::1]:1234"),
    ])
    func publicBaseURLDefaultsToHostAndPort(host: String, port: Int, expected: String) throws {
        let config = try resolve(ServeOptions(host: host, port: port))
        #expect(config.publicBaseURL == expected)
    }

    @Test(arguments: [
        ("https://login.example.com/", "https://login.example.com"),
        ("https://login.example.com///", "https://login.example.com"),
        ("https://example.com/login/", "https://example.com/login"),
        ("https://example.com/login", "https://example.com/login"),
    ])
    func publicBaseURLTrimsTrailingSlashes(given: String, expected: String) throws {
        #expect(try resolve(ServeOptions(publicURL: given)).publicBaseURL == expected)
        #expect(try resolve(ServeOptions(), ["QRLOGIN_PUBLIC_URL": given]).publicBaseURL == expected)
    }

    @Test func trustedProxiesAreKeptInTheFormPeersAreSeenIn() throws {
        let config = try resolve(ServeOptions(), ["QRLOGIN_TRUSTED_PROXIES": " 0:0:0:0:0:0:0:1 ,10.0.0.1"])
        #expect(config.trustedProxies == ["::1", "10.0.0.1"])
    }
}

/// Runs the built `qrlogin` binary: a bad setting must stop `serve` before it listens, with
/// exit code 64 (EX_USAGE) and a message on stderr.
@Suite(
    "qrlogin serve: bad settings",
    .enabled(if: QRLoginBinary.url != nil, "the qrlogin executable is not built next to the test bundle (run `swift build` first)")
)
struct ServeCommandExitTests {
    @Test func nonNumericPortOptionExits64() async throws {
        let run = try await QRLoginBinary.run(["serve", "--port", "notanumber"])
        #expect(run.status == 64)
        #expect(run.stderr.contains("notanumber"), "\(run.stderr)")
        #expect(run.stderr.contains("--port"), "\(run.stderr)")
    }

    @Test func nonNumericPortVariableExits64NamingIt() async throws {
        let run = try await QRLoginBinary.run(["serve", "--database", ":memory:"], environment: ["QRLOGIN_PORT": "notanumber"])
        #expect(run.status == 64)
        #expect(run.stderr.contains("QRLOGIN_PORT=notanumber: must be a whole number from 0 to 65535"), "\(run.stderr)")
    }

    @Test func publicURLWithAQueryExits64() async throws {
        let run = try await QRLoginBinary.run(["serve", "--database", ":memory:", "--public-url", "https://x.example/?a=b"])
        #expect(run.status == 64)
        #expect(run.stderr.contains("--public-url https://x.example/?a=b: must be an http or https URL"), "\(run.stderr)")
    }
}

/// The `qrlogin` executable built next to this test bundle.
enum QRLoginBinary {
    struct Run {
        var status: Int32
        var stderr: String
    }

    /// The binary, looked for in the folders above the running test bundle.
    static let url: URL? = {
        var candidates = [Bundle.main.bundleURL, Bundle.main.executableURL, URL(fileURLWithPath: CommandLine.arguments[0])].compactMap { $0 }
        candidates += Bundle.allBundles.map(\.bundleURL)
        for start in candidates {
            var folder = start.hasDirectoryPath ? start : start.deletingLastPathComponent()
            for _ in 0..<4 {
                let binary = folder.appendingPathComponent("qrlogin")
                var isFolder: ObjCBool = false
                if FileManager.default.fileExists(atPath: binary.path, isDirectory: &isFolder), !isFolder.boolValue,
                   FileManager.default.isExecutableFile(atPath: binary.path) {
                    return binary
                }
                folder = folder.deletingLastPathComponent()
            }
        }
        return nil
    }()

    /// Runs the binary with `arguments` and no `QRLOGIN_` variables but `extra`. A run that has
    /// not ended after 20 s (a server that started after all) is killed and reported as status -1.
    static func run(_ arguments: [String], environment extra: [String: String] = [:]) async throws -> Run {
        let url = try #require(url)
        let process = Process()
        process.executableURL = url
        process.arguments = arguments
        var environment = ProcessInfo.processInfo.environment.filter { !$0.key.hasPrefix("QRLOGIN_") }
        environment.merge(extra) { $1 }
        process.environment = environment
        let errors = Pipe()
        process.standardError = errors
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        let deadline = Date().addingTimeInterval(20)
        while process.isRunning, Date() < deadline { try await Task.sleep(for: .milliseconds(20)) }
        let timedOut = process.isRunning
        if timedOut { process.terminate() }
        process.waitUntilExit()
        let stderr = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        return Run(status: timedOut ? -1 : process.terminationStatus, stderr: stderr)
    }
}
