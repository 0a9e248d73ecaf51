import QRLoginCore
import Synchronization
import Testing

/// Records which tags fired, and when.
private final class Recorder: WaitTimerTarget {
    let fired = Mutex<[(tag: UInt64, at: ContinuousClock.Instant)]>([])

    func timerFired(_ tag: UInt64) {
        fired.withLock { $0.append((tag, .now)) }
    }

    var tags: [UInt64] { fired.withLock { $0.map(\.tag) } }

    /// Waits until `count` entries fired. The limit only catches "never fires": it returns as
    /// soon as they have, and on a busy machine other suites can hold the cooperative pool for
    /// seconds.
    func waitFor(count: Int, within limit: Duration = .seconds(60)) async {
        let end = ContinuousClock.now + limit
        while fired.withLock({ $0.count }) < count, ContinuousClock.now < end {
            try? await Task.sleep(for: .milliseconds(5))
        }
    }
}

@Suite("WaitTimer")
struct WaitTimerTests {
    @Test func deadlineFiresNotEarlyAndWithinAResolution() async throws {
        let timer = WaitTimer(resolution: .milliseconds(20))
        let recorder = Recorder()
        let start = ContinuousClock.now
        timer.schedule(after: .milliseconds(100), recorder, tag: 7)
        await recorder.waitFor(count: 1)
        let fired = recorder.fired.withLock { $0 }
        #expect(fired.map(\.tag) == [7])
        let elapsed = try #require(fired.first).at - start
        #expect(elapsed >= .milliseconds(100))
        // One tick late at most, plus scheduling slack. Only a bound that catches "never fires":
        // tests run in parallel on a busy machine and other suites can hold the cooperative
        // pool for seconds, so a tight wall-clock bound here would be a timed test.
        #expect(elapsed < .seconds(60))
        #expect(timer.pendingCount == 0)
    }

    @Test func entriesFireInDeadlineOrder() async {
        let timer = WaitTimer(resolution: .milliseconds(10))
        let recorder = Recorder()
        timer.schedule(after: .milliseconds(150), recorder, tag: 3)
        timer.schedule(after: .milliseconds(30), recorder, tag: 1)
        timer.schedule(after: .milliseconds(90), recorder, tag: 2)
        await recorder.waitFor(count: 3)
        #expect(recorder.tags == [1, 2, 3])
    }

    @Test func cancelledEntryNeverFires() async throws {
        let timer = WaitTimer(resolution: .milliseconds(10))
        let recorder = Recorder()
        let cancelled = timer.schedule(after: .milliseconds(30), recorder, tag: 1)
        timer.schedule(after: .milliseconds(60), recorder, tag: 2)
        #expect(timer.cancel(cancelled))
        #expect(timer.cancel(cancelled) == false)
        await recorder.waitFor(count: 1)
        try await Task.sleep(for: .milliseconds(60))
        #expect(recorder.tags == [2])
    }

    @Test func tickerStopsWhenIdleAndRestarts() async {
        let timer = WaitTimer(resolution: .milliseconds(10))
        let recorder = Recorder()
        timer.schedule(after: .milliseconds(20), recorder, tag: 1)
        await recorder.waitFor(count: 1)
        let end = ContinuousClock.now + .seconds(2)
        while timer.isTicking, ContinuousClock.now < end { try? await Task.sleep(for: .milliseconds(5)) }
        #expect(timer.isTicking == false)
        timer.schedule(after: .milliseconds(20), recorder, tag: 2)
        await recorder.waitFor(count: 2)
        #expect(recorder.tags == [1, 2])
    }

    @Test func shutdownFiresPendingAndLaterEntriesAtOnce() {
        let timer = WaitTimer(resolution: .milliseconds(10))
        let recorder = Recorder()
        timer.schedule(after: .seconds(60), recorder, tag: 1)
        timer.schedule(after: .seconds(30), recorder, tag: 2)
        timer.shutdown()
        #expect(Set(recorder.tags) == [1, 2])
        #expect(timer.pendingCount == 0)
        timer.schedule(after: .seconds(60), recorder, tag: 3)
        #expect(recorder.tags.last == 3)
    }

    @Test func manyEntriesAllFire() async {
        let timer = WaitTimer(resolution: .milliseconds(10))
        let recorder = Recorder()
        for tag in 0..<2000 { timer.schedule(after: .milliseconds(Int64(tag % 100)), recorder, tag: UInt64(tag)) }
        await recorder.waitFor(count: 2000)
        #expect(Set(recorder.tags).count == 2000)
        #expect(timer.pendingCount == 0)
    }
}

@Suite("LoginEventSubscription on a WaitTimer")
struct LoginEventSubscriptionTests {
    @Test func waitTimesOut() async {
        let subscription = LoginEventSubscription(timer: WaitTimer(resolution: .milliseconds(10)))
        let start = ContinuousClock.now
        #expect(await subscription.wait(timeout: .milliseconds(50)) == false)
        #expect(ContinuousClock.now - start >= .milliseconds(50))
    }

    @Test func signalWakesBeforeTheDeadlineAndCancelsTheTimer() async {
        let timer = WaitTimer(resolution: .milliseconds(10))
        let subscription = LoginEventSubscription(timer: timer)
        async let woken = subscription.wait(timeout: .seconds(30))
        try? await Task.sleep(for: .milliseconds(30))
        subscription.signal()
        #expect(await woken)
        #expect(timer.pendingCount == 0)
    }

    @Test func signalBeforeTheWaitIsNotLost() async {
        let subscription = LoginEventSubscription(timer: WaitTimer())
        subscription.signal()
        #expect(await subscription.wait(timeout: .seconds(30)))
    }

    @Test func closeEndsAWait() async {
        let subscription = LoginEventSubscription(timer: WaitTimer())
        async let woken = subscription.wait(timeout: .seconds(30))
        try? await Task.sleep(for: .milliseconds(30))
        subscription.close()
        #expect(await woken == false)
        #expect(subscription.isClosed)
        #expect(await subscription.wait(timeout: .seconds(30)) == false)
    }

    @Test func cancellationEndsAWait() async {
        let timer = WaitTimer()
        let subscription = LoginEventSubscription(timer: timer)
        let task = Task { await subscription.wait(timeout: .seconds(30)) }
        try? await Task.sleep(for: .milliseconds(30))
        task.cancel()
        #expect(await task.value == false)
        #expect(timer.pendingCount == 0)
    }

    @Test func timerShutdownEndsAWait() async {
        let timer = WaitTimer()
        let subscription = LoginEventSubscription(timer: timer)
        async let woken = subscription.wait(timeout: .seconds(30))
        try? await Task.sleep(for: .milliseconds(30))
        timer.shutdown()
        #expect(await woken == false)
    }

    /// Signals racing with 1 ms timeouts: each signal is sent after the previous was seen, so
    /// the waiter must see every one; a lost signal stalls the test until its deadline.
    @Test func noSignalLostWhileTimeoutsRace() async {
        let timer = WaitTimer(resolution: .milliseconds(1))
        let subscription = LoginEventSubscription(timer: timer)
        let rounds = 200
        let received = Atomic<Int>(0)
        let deadline = ContinuousClock.now + .seconds(20)
        let waiter = Task {
            while received.load(ordering: .acquiring) < rounds, ContinuousClock.now < deadline {
                if await subscription.wait(timeout: .milliseconds(1)) { received.add(1, ordering: .releasing) }
            }
        }
        for round in 1...rounds {
            subscription.signal()
            while received.load(ordering: .acquiring) < round, ContinuousClock.now < deadline {
                try? await Task.sleep(for: .microseconds(100))
            }
        }
        await waiter.value
        #expect(received.load(ordering: .acquiring) == rounds)
    }
}
