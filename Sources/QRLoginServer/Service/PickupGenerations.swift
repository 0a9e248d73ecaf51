import Synchronization

/// Numbers the PC's reads of a login request so that only the newest may collect the token.
/// In-process: a deployment with several instances routes a PC's reads of one request to one
/// instance, or keeps these numbers in shared storage.
final class PickupGenerations: Sendable {
    private let state = Mutex<(next: UInt64, current: [String: UInt64])>((0, [:]))

    /// Starts a read of request `id`; it supersedes every earlier read.
    func begin(_ id: String) -> UInt64 {
        state.withLock { state in
            state.next += 1
            state.current[id] = state.next
            return state.next
        }
    }

    /// Whether `pickup` is still the newest read of request `id`.
    func isCurrent(_ pickup: UInt64, of id: String) -> Bool {
        state.withLock { $0.current[id] == pickup }
    }

    /// Ends a read; forgets the request when no newer read started.
    func end(_ id: String, _ pickup: UInt64) {
        state.withLock { state in
            if state.current[id] == pickup { state.current[id] = nil }
        }
    }
}
