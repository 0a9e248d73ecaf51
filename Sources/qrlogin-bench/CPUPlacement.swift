import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Where the server and the harness run (`--server-cores N`): the server the harness starts on
/// N CPUs of its own with N event loops, as an instance on an N-CPU machine or container (NIO
/// makes one loop per CPU it is given by a container's quota, and `NIO_SINGLETON_GROUP_LOOP_COUNT`
/// says how many otherwise); the harness, its wrk runs included, on the CPUs left. Without it
/// both share every CPU, and the server's CPU per request also pays for being preempted by the
/// load it measures (BENCHMARKS.md, "The server on a core of its own").
struct CPUPlacement {
    /// The server's CPUs.
    var server: [Int]
    /// The harness's CPUs.
    var harness: [Int]

    /// The last `serverCores` CPUs this process may use for the server, the rest for the
    /// harness; nil when it has no more than `serverCores`.
    init?(serverCores: Int) {
        let allowed = Self.allowed()
        guard serverCores >= 1, allowed.count > serverCores else { return nil }
        server = Array(allowed.suffix(serverCores))
        harness = Array(allowed.dropLast(serverCores))
    }

    /// The environment the server starts with: one event loop per CPU of its own.
    var serverEnvironment: [String: String] {
        ["NIO_SINGLETON_GROUP_LOOP_COUNT": String(server.count)]
    }

    var description: String {
        "server on CPU \(Self.list(server)) with \(server.count) event loop\(server.count == 1 ? "" : "s"); harness and wrk on CPU \(Self.list(harness))"
    }

    /// The CPUs this process may run on.
    static func allowed() -> [Int] {
        #if canImport(Glibc)
        var set = [UInt8](repeating: 0, count: setSize)
        guard let call = affinity("sched_getaffinity"), call(0, setSize, &set) == 0 else { return [] }
        return (0..<(setSize * 8)).filter { set[$0 / 8] & (1 << UInt8($0 % 8)) != 0 }
        #else
        return []
        #endif
    }

    #if canImport(Glibc)
    /// The size of glibc's `cpu_set_t`: 1,024 CPUs.
    private static let setSize = 128

    private typealias AffinityCall = @convention(c) (pid_t, Int, UnsafeMutableRawPointer) -> Int32

    /// glibc's `sched_getaffinity` or `sched_setaffinity`, which Swift does not import (they
    /// need `_GNU_SOURCE`).
    private static func affinity(_ name: String) -> AffinityCall? {
        dlsym(dlopen(nil, RTLD_NOW), name).map { unsafeBitCast($0, to: AffinityCall.self) }
    }
    #endif

    /// Restricts every thread of process `pid` to `cpus`, and reads each one's set back; the
    /// threads and processes they start later inherit it. The threads are listed again until a
    /// pass finds none it has not placed, so one started meanwhile by a thread not yet placed is
    /// placed too.
    static func pin(process pid: pid_t, to cpus: [Int]) throws {
        #if canImport(Glibc)
        guard let set = affinity("sched_setaffinity"), let get = affinity("sched_getaffinity") else {
            throw BenchError.unexpected("sched_setaffinity or sched_getaffinity is missing")
        }
        var wanted = [UInt8](repeating: 0, count: setSize)
        for cpu in cpus { wanted[cpu / 8] |= 1 << UInt8(cpu % 8) }
        var placed = Set<pid_t>()
        for _ in 0..<10 {
            let threads = Set(try FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/task").compactMap { pid_t($0) })
            let new = threads.subtracting(placed)
            if new.isEmpty { return }
            for thread in new {
                // A thread that ended since the listing is no matter; any other failure is.
                if set(thread, setSize, &wanted) != 0 {
                    let error = errno
                    if error == ESRCH { continue }
                    throw BenchError.unexpected("cannot place thread \(thread) of process \(pid) on CPU \(list(cpus)): errno \(error)")
                }
                // Read back: a figure measured in the wrong place would be reported as if in this one.
                var actual = [UInt8](repeating: 0, count: setSize)
                if get(thread, setSize, &actual) != 0 {
                    let error = errno
                    if error == ESRCH { continue }
                    throw BenchError.unexpected("cannot read the CPUs of thread \(thread) of process \(pid): errno \(error)")
                }
                guard actual == wanted else { throw BenchError.unexpected("thread \(thread) of process \(pid) is not on CPU \(list(cpus)) alone") }
            }
            placed.formUnion(new)
        }
        throw BenchError.unexpected("process \(pid) kept starting threads while it was being placed")
        #else
        throw BenchError.unexpected("--server-cores needs Linux")
        #endif
    }

    /// Places the server `pid`, started with ``serverEnvironment``, on the server's CPUs, checks
    /// that it runs one event loop per CPU, and puts this process on the harness's CPUs.
    func place(server pid: pid_t) throws {
        try Self.pin(process: pid, to: server)
        try Self.pin(process: getpid(), to: harness)
        let loops = Self.eventLoops(of: pid)
        guard loops == server.count else { throw BenchError.unexpected("the server runs \(loops) event loops, not \(server.count)") }
    }

    /// The event loops of NIO's singleton group that process `pid` runs (its threads named so).
    static func eventLoops(of pid: pid_t) -> Int {
        let threads = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/task")) ?? []
        return threads.filter { thread in
            ((try? String(contentsOfFile: "/proc/\(pid)/task/\(thread)/comm", encoding: .utf8)) ?? "").hasPrefix("NIO-SGLTN-")
        }.count
    }

    private static func list(_ cpus: [Int]) -> String {
        cpus.map(String.init).joined(separator: ",")
    }
}
