import QRLoginCore
import Synchronization
import Testing

@Suite("InProcessNotifier")
struct InProcessNotifierTests {
    private let timer = WaitTimer()

    @Test func publishSignalsEverySubscriberOfThatRequestAndNoOther() async {
        let notifier = InProcessNotifier()
        let first = CountingSubscription(timer: timer)
        let second = CountingSubscription(timer: timer)
        let stranger = CountingSubscription(timer: timer)
        notifier.subscribe(first.subscription, to: "req-a")
        notifier.subscribe(second.subscription, to: "req-a")
        notifier.subscribe(stranger.subscription, to: "req-b")
        #expect(notifier.subscriptionCount == 3)

        await notifier.publish(requestId: "req-a")
        #expect(first.signals == 1)
        #expect(second.signals == 1)
        #expect(stranger.signals == 0)

        notifier.unsubscribe(first.subscription, from: "req-a")
        await notifier.publish(requestId: "req-a")
        #expect(first.signals == 1, "an unsubscribed waiter was still signalled")
        #expect(second.signals == 2)
        #expect(notifier.subscriptionCount == 2)
    }

    @Test func subscribingTwiceIsOneSubscription() async {
        let notifier = InProcessNotifier()
        let waiter = CountingSubscription(timer: timer)
        notifier.subscribe(waiter.subscription, to: "req-a")
        notifier.subscribe(waiter.subscription, to: "req-a")
        #expect(notifier.subscriptionCount == 1)
        await notifier.publish(requestId: "req-a")
        #expect(waiter.signals == 1, "one change was delivered twice")
        notifier.unsubscribe(waiter.subscription, from: "req-a")
        #expect(notifier.subscriptionCount == 0)
    }

    @Test func unsubscribingWhatWasNeverSubscribedChangesNothing() async {
        let notifier = InProcessNotifier()
        let waiter = CountingSubscription(timer: timer)
        let other = CountingSubscription(timer: timer)
        notifier.subscribe(waiter.subscription, to: "req-a")
        notifier.unsubscribe(other.subscription, from: "req-a")
        notifier.unsubscribe(waiter.subscription, from: "req-b")
        #expect(notifier.subscriptionCount == 1)
        await notifier.publish(requestId: "req-a")
        #expect(waiter.signals == 1)
        await notifier.publish(requestId: "nobody")
        #expect(waiter.signals == 1)
    }
}

/// A subscription whose signals are counted instead of waking a task.
private struct CountingSubscription {
    private let counter = Counter()
    let subscription: LoginEventSubscription

    init(timer: WaitTimer) {
        let counter = self.counter
        subscription = LoginEventSubscription(timer: timer) { counter.value.withLock { $0 += 1 } }
    }

    var signals: Int { counter.value.withLock { $0 } }
}

private final class Counter: Sendable {
    let value = Mutex(0)
}
