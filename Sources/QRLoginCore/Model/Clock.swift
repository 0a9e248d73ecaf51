import Foundation
import Synchronization

/// The source of "now" for everything that expires. Injected so that tests can move time
/// forward without sleeping.
public protocol NowClock: Sendable {
    /// The current wall-clock time.
    var now: Date { get }
}

/// The real wall clock.
public struct SystemClock: NowClock {
    /// Creates the system clock.
    public init() {}
    /// The current wall-clock time.
    public var now: Date { Date() }
}

/// A clock that only moves when told to; for tests and simulations.
public final class ManualClock: NowClock {
    private let current: Mutex<Date>

    /// Creates a clock stopped at `start`.
    public init(_ start: Date = Date(timeIntervalSince1970: 1_800_000_000)) {
        current = Mutex(start)
    }

    /// The clock's current time.
    public var now: Date { current.withLock { $0 } }

    /// Moves the clock forward by `seconds`.
    public func advance(by seconds: TimeInterval) {
        current.withLock { $0 = $0.addingTimeInterval(seconds) }
    }
}
