import AsyncHTTPClient
import Foundation
import Logging
import NIOCore
import NIOHTTP1
import ServiceLifecycle

/// A server the tests start in their own process, on a free loopback port, in a service group
/// of its own (so a test can trigger its graceful shutdown).
public struct ServerOnFreePort: Sendable {
    public let port: Int
    public let group: ServiceGroup
    public let running: Task<Void, any Error>

    public var url: String { "http://127.0.0.1:\(port)" }

    /// Builds the server `make` returns for a port and runs it, trying other ports while one is
    /// taken, until `GET /health` answers 200. Ports are drawn below the kernel's ephemeral range
    /// (32768 and up), where the tests' own outgoing connections take theirs.
    public static func start(_ make: (Int) async throws -> any Service) async throws -> ServerOnFreePort {
        var logger = Logger(label: "test-server")
        logger.logLevel = .warning
        for _ in 0..<20 {
            let port = Int.random(in: 20_000...32_000)
            let group = ServiceGroup(configuration: .init(services: [try await make(port)], logger: logger))
            let running = Task { try await group.run() }
            let server = ServerOnFreePort(port: port, group: group, running: running)
            if await server.isUp() { return server }
            await group.triggerGracefulShutdown()
            _ = await running.result
        }
        throw CancellationError()
    }

    private func isUp() async -> Bool {
        for _ in 0..<50 {
            if running.isCancelled { return false }
            if let response = try? await HTTPClient.shared.execute(HTTPClientRequest(url: "\(url)/health"), timeout: .seconds(2)),
               response.status == .ok {
                return true
            }
            try? await Task.sleep(for: .milliseconds(40))
        }
        return false
    }
}
