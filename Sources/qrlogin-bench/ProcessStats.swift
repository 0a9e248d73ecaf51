import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// CPU time and memory of a process, read from `/proc` (Linux). The benchmark reports server
/// figures per server CPU-second, which hold on a noisy shared machine.
struct ProcessStats {
    /// CPU seconds (user + system) used so far by process `pid`.
    static func cpuSeconds(pid: Int32) -> Double? {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
              let close = stat.lastIndex(of: ")") else { return nil }
        // Fields after the command name, which may itself contain spaces: state is field 3,
        // utime field 14 and stime field 15.
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        guard fields.count > 13, let user = Double(fields[11]), let system = Double(fields[12]) else { return nil }
        return (user + system) / Double(sysconf(Int32(_SC_CLK_TCK)))
    }

    /// CPU seconds (user + system) used so far by process `root` and every process below it,
    /// counting what their exited children used (`cutime` and `cstime`, added to a parent when
    /// it reaps a child): a PostgreSQL postmaster with its backends and helpers, or an nginx
    /// master with its workers. A process that exits between two readings is still counted once
    /// its parent has reaped it. Nil when `root` is gone.
    static func treeCPUSeconds(root: Int32) -> Double? {
        var parents: [Int32: Int32] = [:]
        // Clock ticks, summed as integers: the same processes read twice must give the same
        // total whatever order they are read in.
        var ticks: [Int32: Int] = [:]
        guard let entries = try? FileManager.default.contentsOfDirectory(atPath: "/proc") else { return nil }
        for entry in entries {
            guard let pid = Int32(entry),
                  let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
                  let close = stat.lastIndex(of: ")") else { continue }
            // After the name: state, ppid (field 4), ... utime, stime, cutime, cstime (14-17).
            let fields = stat[stat.index(after: close)...].split(separator: " ")
            guard fields.count > 14, let parent = Int32(fields[1]),
                  let user = Int(fields[11]), let system = Int(fields[12]),
                  let childUser = Int(fields[13]), let childSystem = Int(fields[14]) else { continue }
            parents[pid] = parent
            ticks[pid] = user + system + childUser + childSystem
        }
        guard ticks[root] != nil else { return nil }
        var children: [Int32: [Int32]] = [:]
        for (pid, parent) in parents { children[parent, default: []].append(pid) }
        var total = 0
        var queue = [root]
        while let pid = queue.popLast() {
            total += ticks[pid] ?? 0
            queue += children[pid] ?? []
        }
        return Double(total) / Double(sysconf(Int32(_SC_CLK_TCK)))
    }

    /// Resident set size of process `pid`, in bytes.
    static func rssBytes(pid: Int32) -> Int? {
        guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8) else { return nil }
        for line in status.split(separator: "\n") where line.hasPrefix("VmRSS:") {
            let parts = line.split(separator: " ")
            if parts.count >= 2, let kib = Int(parts[1]) { return kib * 1024 }
        }
        return nil
    }

    /// CPU seconds used by this process (the load generator).
    static func ownCPUSeconds() -> Double {
        var usage = rusage()
        getrusage(RUSAGE_SELF.rawValue, &usage)
        let user = Double(usage.ru_utime.tv_sec) + Double(usage.ru_utime.tv_usec) / 1e6
        let system = Double(usage.ru_stime.tv_sec) + Double(usage.ru_stime.tv_usec) / 1e6
        return user + system
    }

    /// Raises this process's open-file limit to `wanted` (or the hard limit); children inherit
    /// it. Returns the new soft limit.
    @discardableResult
    static func raiseFileLimit(to wanted: Int) -> Int {
        var limit = rlimit()
        getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
        let target = min(rlim_t(wanted), limit.rlim_max)
        if limit.rlim_cur < target {
            limit.rlim_cur = target
            setrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
            getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
        }
        return Int(limit.rlim_cur)
    }
}

/// Latency samples and error counts of one scenario.
struct Measurements {
    var latencies: [Double] = []  // milliseconds
    /// Waiting scenario only: from sending the confirm (rather than its response) to the event.
    var fromRequest: [Double] = []
    var errors: [String: Int] = [:]
    var completed = 0

    mutating func merge(_ other: Measurements) {
        latencies += other.latencies
        fromRequest += other.fromRequest
        completed += other.completed
        for (key, count) in other.errors { errors[key, default: 0] += count }
    }

    func percentile(_ p: Double, of samples: [Double]? = nil) -> Double {
        let values = samples ?? latencies
        guard !values.isEmpty else { return .nan }
        let sorted = values.sorted()
        let index = min(sorted.count - 1, max(0, Int((p / 100 * Double(sorted.count)).rounded(.up)) - 1))
        return sorted[index]
    }

    var errorSummary: String {
        errors.isEmpty ? "0" : errors.sorted { $0.key < $1.key }.map { "\($0.key):\($0.value)" }.joined(separator: " ")
    }

    var errorCount: Int { errors.values.reduce(0, +) }
}
