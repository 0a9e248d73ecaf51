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

    /// What `make` passes to the server it builds (``ServerDependencies/onServerRunning``): it
    /// tells `start` that this server, not another test's on the same port, is listening.
    public typealias OnRunning = @Sendable (any Channel) async -> Void

    /// Builds the server `make` returns for a port and runs it, trying other ports while one is
    /// taken, until it listens and `GET /health` answers 200. Ports are drawn below the kernel's
    /// ephemeral range (32768 and up), where the tests' own outgoing connections take theirs.
    /// A server whose bind failed is told apart by its run ending before `onRunning` is called:
    /// asking the port alone would reach the other test's server that holds it.
    public static func start(_ make: (_ port: Int, _ onRunning: @escaping OnRunning) async throws -> any Service) async throws -> ServerOnFreePort {
        var logger = Logger(label: "test-server")
        logger.logLevel = .warning
        for _ in 0..<20 {
            let port = Int.random(in: 20_000...32_000)
            let (listening, signal) = AsyncStream<Void>.makeStream()
            let service = try await make(port) { _ in signal.yield(); signal.finish() }
            let group = ServiceGroup(configuration: .init(services: [service], logger: logger))
            let running = Task {
                defer { signal.finish() }
                try await group.run()
            }
            // A server that neither listens nor fails within 30 s counts as failed.
            let patience = Task {
                try? await Task.sleep(for: .seconds(30))
                signal.finish()
            }
            let server = ServerOnFreePort(port: port, group: group, running: running)
            var iterator = listening.makeAsyncIterator()
            let listens = await iterator.next() != nil
            patience.cancel()
            if listens, await server.isUp() { return server }
            await group.triggerGracefulShutdown()
            // A server stuck before it binds may not hear a graceful shutdown: cancel it after 5 s.
            let stop = Task {
                try? await Task.sleep(for: .seconds(5))
                running.cancel()
            }
            _ = await running.result
            stop.cancel()
        }
        throw CancellationError()
    }

    private func isUp() async -> Bool {
        for _ in 0..<50 {
            if let response = try? await HTTPClient.shared.execute(HTTPClientRequest(url: "\(url)/health"), timeout: .seconds(2)),
               response.status == .ok {
                return true
            }
            try? await Task.sleep(for: .milliseconds(40))
        }
        return false
    }
}
