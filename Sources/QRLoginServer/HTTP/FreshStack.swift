import Hummingbird

/// Runs `body` in a short-lived child task and returns its result.
///
/// Why: a Swift task keeps the memory its deepest call ever needed (its allocator's slabs are
/// reused, never given back) until the task ends. An SSE stream runs on its connection's task
/// for minutes, so one deep call at the start (routing, proof checks, a store read, JSON) would
/// otherwise stay allocated for every waiting PC. Deep work done here is freed when it returns.
@inline(never)
func onFreshStack<T: Sendable>(_ body: @escaping @Sendable () async throws -> T) async throws -> T {
    try await withThrowingTaskGroup(of: T.self) { group in
        group.addTask(operation: body)
        return try await group.next()!
    }
}
