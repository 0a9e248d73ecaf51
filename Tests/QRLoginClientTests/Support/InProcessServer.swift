import AsyncHTTPClient
import Crypto
import Foundation
import Hummingbird
import Logging
import NIOCore
import NIOHTTP1
import QRLoginClient
import QRLoginCore
import QRLoginServer
import QRLoginTestSupport
import ServiceLifecycle
import Testing

/// A real server on a loopback port with an in-memory store and the system clock, run in its
/// own service group.
struct InProcessServer {
    let port: Int
    let group: ServiceGroup
    let running: Task<Void, any Error>

    var url: String { "http://127.0.0.1:\(port)" }

    static func start(configure: (inout ServerConfiguration) -> Void = { _ in }) async throws -> InProcessServer {
        let server = try await ServerOnFreePort.start { port, onRunning in
            var config = ServerConfiguration()
            config.port = port
            config.rateLimits = [:]
            config.flow.bcryptCost = 4
            configure(&config)
            var logger = Logger(label: "test-server")
            logger.logLevel = .warning
            return try await buildApplication(configuration: config, dependencies: ServerDependencies(store: MemoryStore(), onServerRunning: onRunning), logger: logger)
        }
        return InProcessServer(port: server.port, group: server.group, running: server.running)
    }

    func stop() async throws {
        await group.triggerGracefulShutdown()
        try await running.value
    }

    /// Runs `body` with a fresh server and stops it after.
    static func with<R>(requestTTL: TimeInterval? = nil, _ body: (InProcessServer) async throws -> R) async throws -> R {
        let server = try await start { config in
            if let requestTTL { config.flow.requestTTL = requestTTL }
        }
        do {
            let result = try await body(server)
            try await server.stop()
            return result
        } catch {
            try? await server.stop()
            throw error
        }
    }

    /// A client with a new key.
    func client(transport: any ClientTransport = AsyncHTTPClientTransport(), key: P256.Signing.PrivateKey = .init(), token: String? = nil) throws -> QRLoginClient {
        try QRLoginClient(server: url, key: key, accessToken: token, transport: transport, userAgent: "QRLoginClientTests")
    }

    /// Registers `username` and signs a new phone in.
    func signedInPhone(_ username: String, displayName: String? = nil) async throws -> QRLoginClient {
        let phone = try client()
        _ = try await phone.register(username: username, password: "correct horse battery", displayName: displayName ?? username.capitalized)
        _ = try await phone.signIn(username: username, password: "correct horse battery", device: DeviceDescription(type: .ios, name: "\(username)'s phone"))
        return phone
    }
}
