import QRLoginCore
import Synchronization

/// The error of a call that passed its deadline.
struct DeadlineExceeded: Error {}

/// Runs work with a deadline without waiting for the work to notice cancellation: the caller gets
/// its answer (or ``DeadlineExceeded``) at the deadline at the latest, while the work is
/// cancelled and left to finish on its own. postgres-nio's pool waits for a connection while the
/// database is away, and a query on a connection that died without a word is never answered; a
/// task group would wait for that child too, so this races the two with one continuation.
///
/// The deadline is an entry on a shared ``WaitTimer``, cancelled when the work finishes: not a
/// sleeping task per call (on Linux a cancelled `Task.sleep` leaves its timer armed until it
/// would have fired, and thousands of calls a second kept seconds of those alive).
enum Deadline {
    static func run<T: Sendable>(within timeout: Duration, on timer: WaitTimer, _ body: @escaping @Sendable () async throws -> T) async throws -> T {
        let gate = Gate<T>()
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<T, any Error>) in
                gate.install(continuation)
                let work = Task {
                    do {
                        gate.finish(.success(try await body()))
                    } catch {
                        gate.finish(.failure(error))
                    }
                }
                gate.onCancel { work.cancel() }
                let entry = timer.schedule(after: timeout, gate)
                gate.onFinish { timer.cancel(entry) }
            }
        } onCancel: {
            gate.cancel(with: CancellationError())
        }
    }

    /// One continuation, resumed once by whichever comes first: the work's answer, the
    /// deadline, or the caller's cancellation (the last two also cancel the work).
    private final class Gate<T: Sendable>: WaitTimerTarget {
        private struct State {
            var continuation: CheckedContinuation<T, any Error>?
            var pending: Result<T, any Error>?
            var done = false
            var cancelled = false
            var finishHooks: [@Sendable () -> Void] = []
            var cancelHooks: [@Sendable () -> Void] = []
        }

        private let state = Mutex(State())

        func install(_ continuation: CheckedContinuation<T, any Error>) {
            let pending: Result<T, any Error>? = state.withLock { state in
                if let pending = state.pending {
                    state.pending = nil
                    return pending
                }
                state.continuation = continuation
                return nil
            }
            if let pending { continuation.resume(with: pending) }
        }

        /// Resumes the caller with `result` unless it was already resumed; returns whether this
        /// call did it.
        @discardableResult
        func finish(_ result: Result<T, any Error>) -> Bool {
            let (continuation, hooks, won): (CheckedContinuation<T, any Error>?, [@Sendable () -> Void], Bool) = state.withLock { state in
                guard !state.done else { return (nil, [], false) }
                state.done = true
                defer { state.continuation = nil; state.finishHooks = [] }
                if state.continuation == nil { state.pending = result }
                return (state.continuation, state.finishHooks, true)
            }
            continuation?.resume(with: result)
            for hook in hooks { hook() }
            return won
        }

        /// Runs `hook` when the caller is answered (at once if it was).
        func onFinish(_ hook: @escaping @Sendable () -> Void) {
            let now = state.withLock { state -> Bool in
                if state.done { return true }
                state.finishHooks.append(hook)
                return false
            }
            if now { hook() }
        }

        /// Runs `hook` when the work is to stop (at once if it is).
        func onCancel(_ hook: @escaping @Sendable () -> Void) {
            let now = state.withLock { state -> Bool in
                if state.cancelled { return true }
                state.cancelHooks.append(hook)
                return false
            }
            if now { hook() }
        }

        /// Answers the caller with `error` (if not answered yet) and stops the work.
        func cancel(with error: any Error) {
            let hooks = state.withLock { state -> [@Sendable () -> Void] in
                state.cancelled = true
                defer { state.cancelHooks = [] }
                return state.cancelHooks
            }
            finish(.failure(error))
            for hook in hooks { hook() }
        }

        /// The deadline passed.
        func timerFired(_ tag: UInt64) {
            cancel(with: DeadlineExceeded())
        }
    }
}
