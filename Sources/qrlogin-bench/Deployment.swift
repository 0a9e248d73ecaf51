import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// A group of processes whose CPU the report reads besides the server's: PostgreSQL (a
/// postmaster and everything under it), nginx (its master and workers).
struct CPUGroup: Sendable {
    let name: String
    let read: @Sendable () -> Double?
}

/// The server under test: one `qrlogin serve` (on SQLite or PostgreSQL), or several instances on
/// PostgreSQL behind nginx (`--cluster`).
final class BenchTarget: Sendable {
    /// One `qrlogin serve` process and the URL it listens on.
    struct Instance: Sendable {
        var base: String
        var pid: Int32?
    }

    /// Where clients send their requests, and the URL their proofs name: the server's own URL,
    /// or in a cluster nginx's, which every instance has as its public URL.
    let base: String
    /// Every instance, each with its own URL (in a cluster, behind nginx).
    let instances: [Instance]
    let process: Process?
    /// Whether the instances run behind nginx (`--cluster`).
    let isCluster: Bool
    /// What else serves the requests and has its CPU read: PostgreSQL, nginx.
    let others: [CPUGroup]
    /// What serves the requests but cannot be measured, and why.
    let notMeasured: [String]
    private let stopper: Mutex<(@Sendable () -> Void)?>

    init(base: String, pid: Int32?, process: Process?) {
        self.base = base
        self.instances = [Instance(base: base, pid: pid)]
        self.process = process
        self.isCluster = false
        self.others = []
        self.notMeasured = []
        self.stopper = Mutex(nil)
    }

    init(base: String, instances: [Instance], process: Process?, isCluster: Bool, others: [CPUGroup], notMeasured: [String], stop: (@Sendable () -> Void)?) {
        self.base = base
        self.instances = instances
        self.process = process
        self.isCluster = isCluster
        self.others = others
        self.notMeasured = notMeasured
        self.stopper = Mutex(stop)
    }

    /// The pid of the only instance (nil in a cluster, or when unknown).
    var pid: Int32? { instances.count == 1 ? instances[0].pid : nil }

    /// CPU seconds of every instance together; nil if any cannot be read.
    func serverCPU() -> Double? {
        var total = 0.0
        for instance in instances {
            guard let pid = instance.pid, let seconds = ProcessStats.cpuSeconds(pid: pid) else { return nil }
            total += seconds
        }
        return total
    }

    /// Resident set size of every instance together; nil if any cannot be read.
    func serverRSS() -> Int? {
        var total = 0
        for instance in instances {
            guard let pid = instance.pid, let bytes = ProcessStats.rssBytes(pid: pid) else { return nil }
            total += bytes
        }
        return total
    }

    /// Starts `qrlogin serve` (the binary built beside this one) on a free loopback port with rate limits off
    /// and a temporary SQLite database (or `database`, a PostgreSQL URL), and waits for `/health`. Ports are picked below the
    /// kernel's ephemeral range, where the generator's own thousands of connections take theirs,
    /// and a server that exits at once (the port was taken after all) is tried again on another.
    /// With `plainStream`, starts the bare NIO stream server of the memory floor instead
    /// (``PlainStreamServerCommand``).
    /// The server registers the bench's OAuth clients at start (``BenchClients``, from a client
    /// file) and lets a device poll every second, the least it allows, so that a device that
    /// polls once its phone has confirmed is never told to slow down.
    /// `postgres` is the run's own PostgreSQL that `database` names, whose CPU is then read.
    static func spawn(plainStream: Bool = false, database: String? = nil, postgres: PrivatePostgres? = nil, environment: [String: String] = [:]) async throws -> BenchTarget {
        for _ in 0..<5 {
            let port = Int.random(in: 20_000...32_000)
            let directory = FileManager.default.temporaryDirectory.appendingPathComponent("qrlogin-bench-\(port)")
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            let clientFile = directory.appendingPathComponent("clients.json")
            try BenchClients.file(resourceServerSecret: BenchClients.resourceServerSecret).write(to: clientFile)
            let process = Process()
            // The plain stream server is this binary's; `qrlogin serve` is the one built beside it.
            process.executableURL = plainStream ? Deployment.me : Deployment.serverBinary
            process.arguments = plainStream
                ? ["plain-stream-server", "--port", String(port)]
                : ["serve", "--port", String(port), "--database", database ?? directory.appendingPathComponent("bench.sqlite").path]
                    + Deployment.serveArguments(clientFile: clientFile.path)
            if !environment.isEmpty { process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 } }
            try process.run()
            let base = "http://127.0.0.1:\(port)"
            let target = database == nil || plainStream
                ? BenchTarget(base: base, pid: process.processIdentifier, process: process)
                : BenchTarget(
                    base: base, instances: [Instance(base: base, pid: process.processIdentifier)], process: process, isCluster: false,
                    others: postgres.map { [$0.cpu] } ?? [],
                    notMeasured: postgres == nil ? ["PostgreSQL (--database names a server the harness did not start)"] : [], stop: nil
                )
            for _ in 0..<200 where process.isRunning {
                if let response = try? await HTTPClient.shared.execute(HTTPClientRequest(url: target.base + "/health"), timeout: .seconds(1)), response.status == .ok {
                    return target
                }
                try await Task.sleep(for: .milliseconds(50))
            }
            target.stop()
        }
        throw BenchError.unexpected("server did not start")
    }

    /// Stops what was started for this target (once).
    func stop() {
        if let process, process.isRunning {
            process.terminate()
            process.waitUntilExit()
        }
        let stop = stopper.withLock { stop in
            defer { stop = nil }
            return stop
        }
        stop?()
    }
}

/// Starting and stopping what a run needs besides the generator: the `qrlogin` binary beside
/// this one, a private PostgreSQL (`scripts/postgres.sh`), a cluster behind nginx
/// (`scripts/cluster.sh`).
enum Deployment {
    /// This executable, symlinks resolved.
    static var me: URL { URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath() }

    /// `qrlogin`, built beside this binary.
    static var serverBinary: URL { me.deletingLastPathComponent().appendingPathComponent("qrlogin") }

    /// What every server the harness starts runs with besides its address and database.
    static func serveArguments(clientFile: String) -> [String] {
        ["--rate-limits", "off", "--bcrypt-cost", "4", "--log-level", "error", "--client-file", clientFile, "--device-interval", "1"]
    }

    /// `scripts/NAME` of the package: under the current directory, or above this binary
    /// (`.build/release/qrlogin-bench` is three folders below the package once `release` is
    /// resolved to `.build/<triple>/release`, two before).
    static func script(_ name: String) throws -> String {
        var folders = [URL(fileURLWithPath: FileManager.default.currentDirectoryPath)]
        for start in [URL(fileURLWithPath: CommandLine.arguments[0]), me] {
            var folder = start.deletingLastPathComponent()
            for _ in 0..<4 {
                folder = folder.deletingLastPathComponent()
                folders.append(folder)
            }
        }
        for folder in folders {
            let path = folder.appendingPathComponent("scripts").appendingPathComponent(name).path
            if FileManager.default.isReadableFile(atPath: path) { return path }
        }
        throw BenchError.unexpected("scripts/\(name) not found under the current directory or above \(me.deletingLastPathComponent().path); run from the package's folder")
    }

    /// Runs `bash script arguments…`; its stderr goes to ours. Returns its exit status and stdout.
    ///
    /// Not by Foundation's `Process`: that learns of a child's exit when a socket the child
    /// inherits is closed by every process holding it, and the servers these scripts leave
    /// running in the background (PostgreSQL, nginx, the instances) would hold it for as long as
    /// they run. See ``spawn(_:stdout:quiet:)``.
    static func run(script: String, _ arguments: [String]) throws -> (status: Int32, output: String) {
        // What this process printed comes before what the script prints.
        fflush(nil)
        var fds: [Int32] = [-1, -1]
        guard pipe(&fds) == 0 else { throw BenchError.unexpected("pipe: errno \(errno)") }
        let pid: pid_t
        do {
            pid = try spawn(["bash", script] + arguments, stdout: fds[1])
        } catch {
            close(fds[0]); close(fds[1])
            throw error
        }
        close(fds[1])
        // Read until the script's stdout is closed, or until the script has exited and what it
        // wrote is drained (a process it left running might still hold the pipe).
        var output: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        var status: Int32 = 0
        var exited = false
        _ = fcntl(fds[0], F_SETFL, fcntl(fds[0], F_GETFL) | O_NONBLOCK)
        while true {
            let count = read(fds[0], &buffer, buffer.count)
            if count > 0 { output += buffer[..<count]; continue }
            if count == 0 || exited { break }
            guard errno == EAGAIN || errno == EINTR else { break }
            if waitpid(pid, &status, WNOHANG) == pid { exited = true; continue }
            var poller = pollfd(fd: fds[0], events: Int16(POLLIN), revents: 0)
            _ = poll(&poller, 1, 200)
        }
        close(fds[0])
        let code = exited ? exitCode(status) : wait(pid)
        return (code, String(decoding: output, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines))
    }

    /// Starts `arguments` (the program looked up in PATH) with stdin from /dev/null, stdout on
    /// `stdout` (ours if nil), our stderr, no other descriptor, no blocked signal and every
    /// signal's default action. The signals matter: a thread of this process blocks most of
    /// them (Dispatch's workers do), a child inherits the spawning thread's mask, and a `perf`
    /// or script started with SIGINT or SIGTERM blocked would not stop when told to.
    /// With `quiet`, stdout and stderr go to /dev/null.
    static func spawn(_ arguments: [String], stdout: Int32? = nil, quiet: Bool = false) throws -> pid_t {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        if quiet {
            posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0)
            posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0)
        } else if let stdout {
            posix_spawn_file_actions_adddup2(&actions, stdout, 1)
        }
        // Every other descriptor closed (glibc ignores one that was closed in the meantime).
        let open = ((try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd")) ?? []).compactMap { Int32($0) }
        for fd in open where fd > 2 { posix_spawn_file_actions_addclose(&actions, fd) }
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var none = sigset_t(), all = sigset_t()
        sigemptyset(&none)
        sigfillset(&all)
        posix_spawnattr_setsigmask(&attributes, &none)
        posix_spawnattr_setsigdefault(&attributes, &all)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))
        let argv = arguments.map { strdup($0) } + [nil]
        defer { for pointer in argv { free(pointer) } }
        var pid: pid_t = 0
        let spawned = posix_spawnp(&pid, arguments[0], &actions, &attributes, argv, environ)
        guard spawned == 0 else { throw BenchError.unexpected("cannot start \(arguments[0]): error \(spawned)") }
        return pid
    }

    /// Waits for child `pid`; its exit code (128 + the signal if a signal ended it).
    @discardableResult
    static func wait(_ pid: pid_t) -> Int32 {
        var status: Int32 = 0
        while waitpid(pid, &status, 0) == -1 && errno == EINTR {}
        return exitCode(status)
    }

    private static func exitCode(_ status: Int32) -> Int32 {
        status & 0x7F == 0 ? (status >> 8) & 0xFF : 128 + (status & 0x7F)
    }

    /// Whether nothing listens on 127.0.0.1:`port` (a bind succeeds).
    static func isFree(port: Int) -> Bool {
        let socket = Glibc.socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard socket >= 0 else { return false }
        defer { close(socket) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = UInt16(port).bigEndian
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        return withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(socket, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        } == 0
    }

    /// A new empty folder under the temporary directory.
    static func temporaryFolder(_ prefix: String) throws -> String {
        var template = Array((FileManager.default.temporaryDirectory.path + "/\(prefix)-XXXXXX").utf8CString)
        guard let made = mkdtemp(&template) else { throw BenchError.unexpected("mkdtemp: errno \(errno)") }
        return String(cString: made)
    }

    /// The first line of `path` as a pid.
    static func pid(inFile path: String) -> Int32? {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8),
              let line = text.split(separator: "\n").first else { return nil }
        return Int32(line.trimmingCharacters(in: .whitespaces))
    }
}

/// A throwaway PostgreSQL server of the run's own (`scripts/postgres.sh start DIR PORT`): a new
/// cluster in a new folder, so every run starts from an empty database; stopped and deleted at
/// the end. Its CPU is the postmaster's and everything under it.
final class PrivatePostgres: Sendable {
    let script: String
    let directory: String
    let url: String

    private init(script: String, directory: String, url: String) {
        self.script = script
        self.directory = directory
        self.url = url
    }

    static func start() throws -> PrivatePostgres {
        let script = try Deployment.script("postgres.sh")
        for _ in 0..<5 {
            let port = Int.random(in: 20_000...32_000)
            guard Deployment.isFree(port: port) else { continue }
            let directory = try Deployment.temporaryFolder("qrlogin-bench-pg")
            let (status, output) = try Deployment.run(script: script, ["start", directory, String(port)])
            if status == 0, let url = output.split(separator: "\n").last.map(String.init), url.hasPrefix("postgres://") {
                return PrivatePostgres(script: script, directory: directory, url: url)
            }
            _ = try? Deployment.run(script: script, ["stop", directory])
            try? FileManager.default.removeItem(atPath: directory)
        }
        throw BenchError.unexpected("could not start a private PostgreSQL with \(script)")
    }

    /// The postmaster's pid: the first line of `DIR/data/postmaster.pid`.
    var postmasterPID: Int32? { Deployment.pid(inFile: directory + "/data/postmaster.pid") }

    var cpu: CPUGroup {
        let file = directory + "/data/postmaster.pid"
        return CPUGroup(name: "PostgreSQL") { Deployment.pid(inFile: file).flatMap(ProcessStats.treeCPUSeconds) }
    }

    func stop() {
        _ = try? Deployment.run(script: script, ["stop", directory])
        try? FileManager.default.removeItem(atPath: directory)
    }
}

/// `scripts/cluster.sh`: N instances of `qrlogin serve` on one PostgreSQL database, on ports
/// P+1…P+N, behind nginx on P.
enum Cluster {
    /// Starts the cluster, with the same serve arguments as a single server the harness starts;
    /// `postgres` is what the instances use (its CPU is read if it is the run's own).
    static func start(instances count: Int, database: String, postgres: PrivatePostgres?) throws -> BenchTarget {
        let script = try Deployment.script("cluster.sh")
        for _ in 0..<5 {
            let port = Int.random(in: 20_000...(32_000 - count))
            guard (port...(port + count)).allSatisfy(Deployment.isFree(port:)) else { continue }
            let directory = try Deployment.temporaryFolder("qrlogin-bench-cluster")
            let clientFile = directory + "/clients.json"
            try BenchClients.file(resourceServerSecret: BenchClients.resourceServerSecret).write(to: URL(fileURLWithPath: clientFile))
            let (status, output) = try Deployment.run(script: script, [
                "start", directory, "--binary", Deployment.serverBinary.path, "--database", database,
                "--instances", String(count), "--port", String(port), "--",
            ] + Deployment.serveArguments(clientFile: clientFile))
            guard status == 0, let base = output.split(separator: "\n").last.map(String.init), base.hasPrefix("http://") else {
                _ = try? Deployment.run(script: script, ["stop", directory])
                try? FileManager.default.removeItem(atPath: directory)
                continue
            }
            let instances = (1...count).map { index in
                BenchTarget.Instance(base: "http://127.0.0.1:\(port + index)", pid: Deployment.pid(inFile: directory + "/instance-\(index).pid"))
            }
            let nginxFile = directory + "/nginx.pid"
            var others = [CPUGroup(name: "nginx") { Deployment.pid(inFile: nginxFile).flatMap(ProcessStats.treeCPUSeconds) }]
            var notMeasured: [String] = []
            if let postgres { others.insert(postgres.cpu, at: 0) } else { notMeasured.append("PostgreSQL (--database names a server the harness did not start)") }
            return BenchTarget(base: base, instances: instances, process: nil, isCluster: true, others: others, notMeasured: notMeasured) {
                _ = try? Deployment.run(script: script, ["stop", directory])
                try? FileManager.default.removeItem(atPath: directory)
            }
        }
        throw BenchError.unexpected("could not start a cluster with \(script)")
    }
}

/// What a run must stop however it ends: at the end of `run()`, and on SIGINT or SIGTERM (nginx
/// and PostgreSQL leave the terminal's process group, so they would outlive an interrupted run).
enum Cleanup {
    private static let actions = Mutex<[@Sendable () -> Void]>([])
    /// The pipe's write end, for the signal handler.
    nonisolated(unsafe) private static var signalFD: Int32 = -1

    static func add(_ action: @escaping @Sendable () -> Void) {
        actions.withLock { $0.append(action) }
    }

    /// Held while actions run, so that a second caller (the end of `run()` while a signal is
    /// being handled) waits for them instead of ending the process halfway.
    private static let running = NSLock()

    /// Runs every action once, newest first.
    static func runAll() {
        running.lock()
        defer { running.unlock() }
        let all = actions.withLock { actions in
            defer { actions = [] }
            return actions
        }
        for action in all.reversed() { action() }
    }

    /// Installs handlers for SIGINT and SIGTERM that run every action and exit. The handlers only
    /// write to a pipe (what a signal handler may do); a thread reads it and cleans up. Handlers,
    /// unlike ignored signals, are reset in the processes the harness starts.
    static func installSignalHandlers() {
        var fds: [Int32] = [-1, -1]
        guard Glibc.pipe(&fds) == 0 else { return }
        // Not inherited by the processes the harness starts.
        for fd in fds { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }
        signalFD = fds[1]
        let handler: @convention(c) (Int32) -> Void = { signal in
            var byte = UInt8(truncatingIfNeeded: signal)
            _ = Glibc.write(Cleanup.signalFD, &byte, 1)
        }
        signal(SIGINT, handler)
        signal(SIGTERM, handler)
        let readFD = fds[0]
        let reader = Thread {
            var byte: UInt8 = 0
            guard Glibc.read(readFD, &byte, 1) == 1 else { return }
            print("\nsignal \(byte): stopping what the harness started")
            runAll()
            exit(128 + Int32(byte))
        }
        reader.start()
    }
}
