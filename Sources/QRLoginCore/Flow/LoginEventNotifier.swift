/// Wakes whoever waits on a login request when its state changes. In-process now
/// (``InProcessNotifier``); a multi-instance deployment wakes other instances' waiters
/// through its own implementation (e.g. PostgreSQL LISTEN/NOTIFY).
public protocol LoginEventNotifier: Sendable {
    /// Announces that request `id` changed.
    func publish(requestId: String) async
    /// Starts listening for changes to request `id`. Subscribe before reading the state so
    /// that a change between the read and the wait is not lost.
    func subscribe(requestId: String) -> LoginEventSubscription
}

/// A subscription to one request's changes; ends when dropped or cancelled.
public struct LoginEventSubscription: Sendable {
    /// Yields once per burst of changes (changes that arrive while nobody reads coalesce).
    public let changes: AsyncStream<Void>

    /// Creates a subscription over a stream of change signals.
    public init(changes: AsyncStream<Void>) {
        self.changes = changes
    }
}
