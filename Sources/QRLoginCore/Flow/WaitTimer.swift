import Synchronization

/// Something a ``WaitTimer`` calls back when a scheduled deadline passes.
public protocol WaitTimerTarget: AnyObject, Sendable {
    /// Called once, off the timer's lock, when the deadline scheduled with `tag` has passed
    /// (or at once if the timer was shut down). Never called for a cancelled entry.
    func timerFired(_ tag: UInt64)
}

/// A scheduled entry, for ``WaitTimer/cancel(_:)``.
public struct WaitTimerEntry: Sendable, Hashable {
    let tick: Int64
    let key: UInt64
}

/// One shared timer for every wait with a timeout (heartbeats, long-poll limits, request
/// deadlines), instead of one sleeping `Task` per wait: a single ticker task wakes every
/// `resolution` while anything is scheduled and fires what is due, so 10,000 waiting clients
/// cost one wake-up per tick rather than 10,000 timer tasks. Deadlines fire at most one
/// `resolution` late (and never early). The ticker runs only while entries are scheduled, and
/// ``shutdown()`` fires every pending entry at once and makes later ones fire immediately,
/// so nobody is left waiting on a timer that has stopped.
public final class WaitTimer: Sendable {
    /// How far apart ticks are; a deadline fires on the first tick at or after it.
    public let resolution: Duration
    private let epoch: ContinuousClock.Instant

    private struct State {
        /// Entries by the tick they fire on.
        var buckets: [Int64: [UInt64: Scheduled]] = [:]
        var count = 0
        var nextKey: UInt64 = 0
        /// The last tick whose entries were fired.
        var firedThrough: Int64 = 0
        var tickerRunning = false
        var shutDown = false
    }

    private struct Scheduled {
        let target: any WaitTimerTarget
        let tag: UInt64
    }

    private let state: Mutex<State>

    /// Creates an idle timer; its ticker starts with the first entry.
    public init(resolution: Duration = .milliseconds(250)) {
        precondition(resolution > .zero, "resolution must be positive")
        self.resolution = resolution
        self.epoch = .now
        self.state = Mutex(State())
    }

    /// Schedules `target.timerFired(tag)` for `delay` from now. Fires at once (on the caller's
    /// thread, before returning) if the timer was shut down, so a target must be ready for the
    /// call before it schedules.
    @discardableResult
    public func schedule(after delay: Duration, _ target: any WaitTimerTarget, tag: UInt64 = 0) -> WaitTimerEntry {
        let tick = self.tick(containing: ContinuousClock.now + max(delay, .zero), roundingUp: true)
        let (entry, startTicker, fireNow) = state.withLock { state -> (WaitTimerEntry, Bool, Bool) in
            state.nextKey += 1
            let entry = WaitTimerEntry(tick: max(tick, state.firedThrough + 1), key: state.nextKey)
            if state.shutDown { return (entry, false, true) }
            state.buckets[entry.tick, default: [:]][entry.key] = Scheduled(target: target, tag: tag)
            state.count += 1
            let start = !state.tickerRunning
            state.tickerRunning = true
            return (entry, start, false)
        }
        if fireNow { target.timerFired(tag) }
        if startTicker { Task.detached { await self.runTicker() } }
        return entry
    }

    /// Removes `entry` if it has not fired. Returns whether it was still pending.
    @discardableResult
    public func cancel(_ entry: WaitTimerEntry) -> Bool {
        state.withLock { state in
            guard state.buckets[entry.tick]?.removeValue(forKey: entry.key) != nil else { return false }
            if state.buckets[entry.tick]?.isEmpty == true { state.buckets[entry.tick] = nil }
            state.count -= 1
            return true
        }
    }

    /// Fires every pending entry now; entries scheduled later fire at once. The ticker stops.
    /// Called on graceful shutdown, after the server has stopped.
    public func shutdown() {
        let due = state.withLock { state -> [Scheduled] in
            state.shutDown = true
            let due = state.buckets.values.flatMap(\.values)
            state.buckets = [:]
            state.count = 0
            return due
        }
        for entry in due { entry.target.timerFired(entry.tag) }
    }

    /// How many entries are pending (for tests and metrics).
    public var pendingCount: Int { state.withLock { $0.count } }

    /// Whether the ticker task is running (for tests).
    public var isTicking: Bool { state.withLock { $0.tickerRunning } }

    private func tick(containing instant: ContinuousClock.Instant, roundingUp: Bool) -> Int64 {
        let ratio = (instant - epoch) / resolution
        let whole = Int64(ratio.rounded(.down))
        return roundingUp && Double(whole) < ratio ? whole + 1 : whole
    }

    /// The ticker: sleeps to each tick boundary and fires what is due; ends when nothing is
    /// scheduled (a later ``schedule(after:_:)`` starts a new one) or on shutdown.
    private func runTicker() async {
        while true {
            let next = state.withLock { $0.firedThrough + 1 }
            try? await Task.sleep(until: epoch + resolution * Int(next), tolerance: resolution / 10, clock: .continuous)
            let now = tick(containing: .now, roundingUp: false)
            let (due, stop) = state.withLock { state -> ([Scheduled], Bool) in
                if state.shutDown {
                    state.tickerRunning = false
                    return ([], true)
                }
                var due: [Scheduled] = []
                if now > state.firedThrough {
                    // Usually one bucket; after a stall or an idle spell, every bucket passed.
                    if now - state.firedThrough <= Int64(state.buckets.count) {
                        for tick in (state.firedThrough + 1)...now {
                            if let bucket = state.buckets.removeValue(forKey: tick) { due += bucket.values }
                        }
                    } else {
                        for tick in state.buckets.keys.filter({ $0 <= now }).sorted() {
                            due += state.buckets.removeValue(forKey: tick)!.values
                        }
                    }
                    state.firedThrough = now
                    state.count -= due.count
                }
                // Decided under the lock, so a schedule right after starts exactly one new ticker.
                let stop = state.count == 0
                if stop { state.tickerRunning = false }
                return (due, stop)
            }
            for entry in due { entry.target.timerFired(entry.tag) }
            if stop { return }
        }
    }
}
