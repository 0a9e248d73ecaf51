import Synchronization

/// Wakes whoever waits on a login request when its state changes. In-process now
/// (``InProcessNotifier``); a multi-instance deployment wakes other instances' waiters
/// through its own implementation (e.g. PostgreSQL LISTEN/NOTIFY).
public protocol LoginEventNotifier: Sendable {
    /// Announces that request `requestId` changed.
    func publish(requestId: String) async
    /// Registers `subscription` for changes to `requestId`. Subscribe before reading the state,
    /// so a change between the read and the wait is not lost.
    func subscribe(_ subscription: LoginEventSubscription, to requestId: String)
    /// Removes a subscription registered with ``subscribe(_:to:)``.
    func unsubscribe(_ subscription: LoginEventSubscription, from requestId: String)
}

extension LoginEventNotifier {
    /// Runs `body` with a subscription to `requestId` whose timeouts run on `timer`, removing it
    /// afterwards.
    public func withSubscription<T: Sendable>(to requestId: String, timer: WaitTimer, _ body: (LoginEventSubscription) async throws -> T) async throws -> T {
        let subscription = LoginEventSubscription(timer: timer)
        subscribe(subscription, to: requestId)
        defer { unsubscribe(subscription, from: requestId) }
        return try await body(subscription)
    }
}

/// One waiter's mailbox for change signals. Signals that arrive while nobody waits are kept
/// (coalesced into one), so none is lost between a state read and the next wait. Timeouts run
/// on a shared ``WaitTimer``, not on a task per wait.
public final class LoginEventSubscription: WaitTimerTarget {
    private struct State {
        var signalled = false
        var closed = false
        var nextWait: UInt64 = 0
        var waiter: (id: UInt64, continuation: CheckedContinuation<Bool, Never>)?
        var timedOut: UInt64?
    }

    private let state = Mutex(State())
    private let timer: WaitTimer
    private let onSignal: (@Sendable () -> Void)?

    /// Creates an idle subscription whose waits time out on `timer`.
    public init(timer: WaitTimer) {
        self.timer = timer
        self.onSignal = nil
    }

    /// Creates a subscription that calls `onSignal` for every change signal instead of waking
    /// a waiting task: for a waiter that is not a task (an event stream served by a channel
    /// handler, which keeps its own timeouts). ``wait(timeout:)`` is not for such a one.
    public init(timer: WaitTimer, onSignal: @escaping @Sendable () -> Void) {
        self.timer = timer
        self.onSignal = onSignal
    }

    /// Delivers a change signal: wakes the waiter, or is kept for the next wait (or, for a
    /// subscription made with `onSignal`, calls it).
    public func signal() {
        if let onSignal {
            onSignal()
            return
        }
        let waiter = state.withLock { state -> CheckedContinuation<Bool, Never>? in
            guard let waiter = state.waiter else {
                state.signalled = true
                return nil
            }
            state.waiter = nil
            return waiter.continuation
        }
        waiter?.resume(returning: true)
    }

    /// Ends the subscription: a current wait returns `false`, and so does every later one.
    /// Used for graceful shutdown.
    public func close() {
        let waiter = state.withLock { state -> CheckedContinuation<Bool, Never>? in
            state.closed = true
            defer { state.waiter = nil }
            return state.waiter?.continuation
        }
        waiter?.resume(returning: false)
    }

    /// Whether ``close()`` was called.
    public var isClosed: Bool { state.withLock { $0.closed } }

    /// Waits up to `timeout` for a signal. Returns `true` if one arrived (or was pending),
    /// `false` on timeout, close or task cancellation. One waiter at a time.
    public func wait(timeout: Duration) async -> Bool {
        let id: UInt64? = state.withLock { state in
            if state.signalled {
                state.signalled = false
                return nil
            }
            state.nextWait += 1
            return state.nextWait
        }
        guard let id else { return true }
        if isClosed || timeout <= .zero { return false }
        // A timer that fires before the continuation is in place marks the wait as timed out.
        let entry = timer.schedule(after: timeout, self, tag: id)
        defer { timer.cancel(entry) }
        return await withTaskCancellationHandler {
            await withCheckedContinuation { continuation in
                let immediate: Bool? = state.withLock { state in
                    if state.signalled {
                        state.signalled = false
                        return true
                    }
                    if state.closed || state.timedOut == id || Task.isCancelled { return false }
                    state.waiter = (id, continuation)
                    return nil
                }
                if let immediate { continuation.resume(returning: immediate) }
            }
        } onCancel: {
            self.resume(id, with: false)
        }
    }

    /// The shared timer's call: wait `tag` timed out.
    public func timerFired(_ tag: UInt64) {
        resume(tag, with: false)
    }

    private func resume(_ id: UInt64, with value: Bool) {
        let waiter = state.withLock { state -> CheckedContinuation<Bool, Never>? in
            guard let waiter = state.waiter, waiter.id == id else {
                state.timedOut = id
                return nil
            }
            state.waiter = nil
            return waiter.continuation
        }
        waiter?.resume(returning: value)
    }
}

/// The in-process notifier: a table from request id to its current subscriptions.
///
/// A request has one subscription while its PC waits (two for a moment when it reconnects),
/// so each keeps a small array, not a dictionary of its own: with 10,000 PCs waiting that is
/// one small heap block per PC instead of a hash table's.
public final class InProcessNotifier: LoginEventNotifier {
    private let table = Mutex<[String: [LoginEventSubscription]]>([:])

    /// Creates an empty notifier.
    public init() {}

    public func publish(requestId: String) async {
        let subscribers = table.withLock { $0[requestId] ?? [] }
        for subscriber in subscribers { subscriber.signal() }
    }

    public func subscribe(_ subscription: LoginEventSubscription, to requestId: String) {
        table.withLock { table in
            if table[requestId]?.contains(where: { $0 === subscription }) == true { return }
            table[requestId, default: []].append(subscription)
        }
    }

    public func unsubscribe(_ subscription: LoginEventSubscription, from requestId: String) {
        table.withLock { table in
            table[requestId]?.removeAll { $0 === subscription }
            if table[requestId]?.isEmpty == true { table[requestId] = nil }
        }
    }

    /// Signals every subscription: each waiter re-reads its request and sends what changed. For a
    /// notifier that may have missed changes (a shared one after its connection came back).
    public func signalAll() {
        let subscribers = table.withLock { $0.values.flatMap { $0 } }
        for subscriber in subscribers { subscriber.signal() }
    }

    /// How many subscriptions are registered (for tests and metrics).
    public var subscriptionCount: Int { table.withLock { $0.values.reduce(0) { $0 + $1.count } } }
}
