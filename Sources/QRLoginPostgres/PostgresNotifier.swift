import Foundation
import Logging
import NIOCore
import PostgresNIO
import QRLoginCore
import Synchronization

/// Wakes the PCs waiting on this instance when a login request changes on any instance, through
/// PostgreSQL's `LISTEN`/`NOTIFY`.
///
/// ``PostgresStore`` sends `NOTIFY` inside every transition's transaction, so the notification
/// is delivered at commit and carries only the request id. This notifier holds one connection of
/// its own (not from the pool) listening on ``PostgresStore/channel`` and signals the local
/// subscriptions of each id it hears; ``publish(requestId:)`` does nothing, because the store
/// already notified.
///
/// What it is built around: postgres-nio does not listen again after a reconnect, and
/// notifications committed while no listener is attached are lost. So ``run()`` reconnects with
/// a growing pause (up to two seconds), and after every (re)`LISTEN` it signals every local
/// subscription, so each waiter re-reads its request and sends whatever changed in the gap. A
/// ping on the listening connection every few seconds notices a connection that died silently.
public final class PostgresNotifier: LoginEventNotifier {
    private let local = InProcessNotifier()
    private let configuration: PostgresURL
    private let logger: Logger
    private let pingInterval: Duration
    private let listening = Atomic<Bool>(false)
    private let listens = Atomic<Int>(0)
    private let backend = Atomic<Int>(0)
    private let deadlines = WaitTimer(resolution: .milliseconds(100))

    /// A notifier for the database of `store`.
    public init(store: PostgresStore, pingInterval: Duration = .seconds(5), logger: Logger = Logger(label: "qrlogin.postgres.notifier")) {
        self.configuration = store.configuration
        self.pingInterval = pingInterval
        self.logger = logger
    }

    /// Whether the listening connection is up now.
    public var isListening: Bool { listening.load(ordering: .relaxed) }

    /// How many times `LISTEN` has succeeded (1 after the first connect; more after reconnects).
    public var listenCount: Int { listens.load(ordering: .relaxed) }

    /// The server process id of the listening connection (`pg_backend_pid()`), 0 before the
    /// first connect: it shows in `pg_stat_activity` with `application_name` `qrlogin listener`.
    public var listenerBackendPID: Int { backend.load(ordering: .relaxed) }

    public func publish(requestId: String) async {}

    public func subscribe(_ subscription: LoginEventSubscription, to requestId: String) {
        local.subscribe(subscription, to: requestId)
    }

    public func unsubscribe(_ subscription: LoginEventSubscription, from requestId: String) {
        local.unsubscribe(subscription, from: requestId)
    }

    /// Listens until the task is cancelled, reconnecting whenever the connection is lost.
    public func run() async {
        var pause = Duration.milliseconds(100)
        var connectionID = 0
        while !Task.isCancelled {
            connectionID += 1
            do {
                var settings = try configuration.connectionConfiguration()
                settings.options.additionalStartupParameters = [("application_name", "qrlogin listener")]
                let connection = try await PostgresConnection.connect(configuration: settings, id: connectionID, logger: logger)
                pause = .milliseconds(100)
                let pid = try? await PostgresStore.first("SELECT pg_backend_pid() AS pid", PostgresBindings(), on: connection, logger: logger) {
                    try $0.int("pid")
                }
                backend.store(pid ?? 0, ordering: .relaxed)
                await listen(on: connection)
                try? await connection.close()
            } catch {
                if !Task.isCancelled {
                    logger.warning("PostgreSQL listener cannot connect", metadata: ["qrlogin.error": "\(String(reflecting: error))"])
                }
            }
            listening.store(false, ordering: .relaxed)
            guard !Task.isCancelled else { return }
            try? await Task.sleep(for: pause)
            pause = min(pause * 2, .seconds(2))
        }
    }

    /// Listens on `connection` until it fails or the task is cancelled.
    private func listen(on connection: PostgresConnection) async {
        do {
            try await connection.listen(on: PostgresStore.channel) { notifications in
                listening.store(true, ordering: .relaxed)
                let count = listens.add(1, ordering: .relaxed).newValue
                if count > 1 { logger.info("PostgreSQL listener reconnected", metadata: ["qrlogin.listens": "\(count)"]) }
                // Whatever was committed while nobody listened is re-read by its waiters.
                local.signalAll()
                try await withThrowingTaskGroup(of: Void.self) { group in
                    group.addTask { [pingInterval, deadlines] in
                        // A connection that died without a word ends here: the ping fails or
                        // never answers, and the group's failure ends the listen.
                        while true {
                            try await Task.sleep(for: pingInterval)
                            try await Deadline.run(within: pingInterval, on: deadlines) {
                                _ = try await connection.query("SELECT 1", logger: Logger(label: "qrlogin.postgres.ping"))
                            }
                        }
                    }
                    group.addTask { [local] in
                        for try await notification in notifications {
                            await local.publish(requestId: notification.payload)
                        }
                        throw PostgresStoreError.unavailable("the listening connection closed")
                    }
                    try await group.next()
                    group.cancelAll()
                }
            }
        } catch {
            if !Task.isCancelled {
                logger.warning("PostgreSQL listener lost its connection", metadata: ["qrlogin.error": "\(String(reflecting: error))"])
            }
        }
    }
}
