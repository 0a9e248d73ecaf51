import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import Synchronization
import Testing

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A child process whose output is collected as it comes.
final class RunningProcess: @unchecked Sendable {
    let process: Process
    private let out = Mutex(Data())
    private let err = Mutex(Data())
    private let exited = Mutex<Int32?>(nil)
    /// Pipes not yet read to their end.
    private let openPipes = Mutex(2)

    init(_ executable: URL, _ arguments: [String], environment: [String: String], stdin: String? = nil) throws {
        let process = Process()
        process.executableURL = executable
        process.arguments = arguments
        process.environment = environment
        let outPipe = Pipe(), errPipe = Pipe()
        process.standardOutput = outPipe
        process.standardError = errPipe
        if let stdin {
            let inPipe = Pipe()
            process.standardInput = inPipe
            inPipe.fileHandleForWriting.write(Data(stdin.utf8))
            try inPipe.fileHandleForWriting.close()
        } else {
            process.standardInput = FileHandle.nullDevice
        }
        self.process = process
        process.terminationHandler = { [self] process in self.exited.withLock { $0 = process.terminationStatus } }
        try process.run()
        // Each pipe is read by a thread of its own with blocking reads. FileHandle's
        // readabilityHandler is not used: on Linux its dispatch sources can crash libdispatch's
        // event loop (swift-corelibs-foundation issue 3276), which took the whole test run down.
        startReader(outPipe.fileHandleForReading) { bytes in self.out.withLock { $0.append(contentsOf: bytes) } }
        startReader(errPipe.fileHandleForReading) { bytes in self.err.withLock { $0.append(contentsOf: bytes) } }
    }

    private func startReader(_ handle: FileHandle, append: @escaping @Sendable (ArraySlice<UInt8>) -> Void) {
        let thread = Thread { [self] in
            let fd = handle.fileDescriptor
            var chunk = [UInt8](repeating: 0, count: 65_536)
            while true {
                let count = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
                if count < 0 && errno == EINTR { continue }
                if count <= 0 { break }
                append(chunk[0..<count])
            }
            try? handle.close()
            self.openPipes.withLock { $0 -= 1 }
        }
        thread.name = "process output"
        thread.start()
    }

    var stdout: String { out.withLock { String(decoding: $0, as: UTF8.self) } }
    var stderr: String { err.withLock { String(decoding: $0, as: UTF8.self) } }

    /// The first match of `pattern`'s first capture group (or whole match) in stdout.
    func waitForOutput(_ pattern: String, timeout: Duration = .seconds(30)) async throws -> String {
        let regex = try Regex(pattern)
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            let text = stdout
            if let match = text.firstMatch(of: regex) {
                return String(match.output.count > 1 ? match.output[1].substring ?? match.output[0].substring! : match.output[0].substring!)
            }
            if exited.withLock({ $0 }) != nil, stdout == text { break }
            try await Task.sleep(for: .milliseconds(50))
        }
        Issue.record("no \(pattern) in output:\n\(stdout)\nstderr:\n\(stderr)")
        throw CancellationError()
    }

    /// Waits for the exit status (and the last output).
    func waitForExit(timeout: Duration = .seconds(60)) async throws -> Int32 {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if let status = exited.withLock({ $0 }) {
                // The last output: both pipes read to their end (a grandchild holding one open
                // gets two seconds).
                let drained = ContinuousClock.now + .seconds(2)
                while openPipes.withLock({ $0 }) > 0 && ContinuousClock.now < drained {
                    try await Task.sleep(for: .milliseconds(10))
                }
                return status
            }
            try await Task.sleep(for: .milliseconds(50))
        }
        process.terminate()
        Issue.record("timed out; output:\n\(stdout)\nstderr:\n\(stderr)")
        throw CancellationError()
    }

    func signal(_ number: Int32) {
        kill(process.processIdentifier, number)
    }
}

/// The built `qrlogin` tool, run with its own `$XDG_CONFIG_HOME`, against a `qrlogin serve`
/// process it starts.
struct CLIHarness {
    let binary: URL
    let configHome: URL
    let server: RunningProcess
    let serverURL: String
    /// Every client process started, so none outlives the test.
    private let children = Children()

    private final class Children: Sendable {
        let list = Mutex<[RunningProcess]>([])
    }

    /// The `qrlogin` built next to this test bundle (or `$QRLOGIN_BINARY`).
    static func locateBinary() throws -> URL {
        var candidates: [URL] = []
        if let given = ProcessInfo.processInfo.environment["QRLOGIN_BINARY"] { candidates.append(URL(fileURLWithPath: given)) }
        for path in [CommandLine.arguments.first, Bundle.main.executablePath].compactMap({ $0 }) {
            var dir = URL(fileURLWithPath: path).deletingLastPathComponent()
            for _ in 0..<4 {
                candidates.append(dir.appendingPathComponent("qrlogin"))
                dir = dir.deletingLastPathComponent()
            }
        }
        for candidate in candidates where FileManager.default.isExecutableFile(atPath: candidate.path) && !candidate.hasDirectoryPath {
            var isDirectory: ObjCBool = false
            if FileManager.default.fileExists(atPath: candidate.path, isDirectory: &isDirectory), !isDirectory.boolValue { return candidate }
        }
        Issue.record("qrlogin binary not found (build it first, or set QRLOGIN_BINARY); looked at \(candidates.map(\.path))")
        throw CancellationError()
    }

    static func start(extraServerArguments: [String] = []) async throws -> CLIHarness {
        // The harness finds its server by the server's info-level "listening on" line.
        if let index = extraServerArguments.firstIndex(of: "--log-level"), index + 1 < extraServerArguments.count,
           !["trace", "debug", "info"].contains(extraServerArguments[index + 1]) {
            Issue.record("the CLI harness needs the server's log at info or below, not \(extraServerArguments[index + 1])")
            throw CancellationError()
        }
        let binary = try locateBinary()
        let configHome = try temporaryConfigHome()
        for _ in 0..<10 {
            // Below the kernel's ephemeral range, where outgoing connections take their ports.
            let port = Int.random(in: 20_000...32_000)
            // At info the server logs when it listens (a later --log-level in the extra arguments
            // wins): only that line tells it apart from another test's server that already holds
            // the port, which would answer /health just as well while this one fails to bind.
            let server = try RunningProcess(binary, ["serve", "--port", "\(port)", "--database", ":memory:", "--rate-limits", "off", "--bcrypt-cost", "4", "--log-level", "info"] + extraServerArguments, environment: ProcessInfo.processInfo.environment)
            let url = "http://127.0.0.1:\(port)"
            let listening = "listening on 127.0.0.1:\(port)"
            for _ in 0..<300 where !server.stderr.contains(listening) && server.process.isRunning {
                try await Task.sleep(for: .milliseconds(100))
            }
            guard server.stderr.contains(listening) else {
                server.process.terminate()
                continue
            }
            for _ in 0..<100 {
                if let response = try? await HTTPClient.shared.execute(HTTPClientRequest(url: url + "/health"), timeout: .seconds(2)), response.status == .ok {
                    return CLIHarness(binary: binary, configHome: configHome, server: server, serverURL: url)
                }
                if !server.process.isRunning { break }
                try await Task.sleep(for: .milliseconds(100))
            }
            server.process.terminate()
        }
        Issue.record("qrlogin serve did not start")
        throw CancellationError()
    }

    func stop() {
        for child in children.list.withLock({ $0 }) where child.process.isRunning {
            child.process.terminate()
            Self.waitForExit(child, "qrlogin \(child.process.arguments?.first ?? "")")
        }
        server.signal(SIGTERM)
        Self.waitForExit(server, "qrlogin serve")
        try? FileManager.default.removeItem(at: configHome)
    }

    /// Waits up to 15 s for `process` to exit after it was asked to; then kills it and records
    /// the failure, so a process that ignores SIGTERM fails its test instead of hanging the run.
    private static func waitForExit(_ process: RunningProcess, _ name: String) {
        let deadline = Date().addingTimeInterval(15)
        while process.process.isRunning && Date() < deadline { usleep(20_000) }
        guard process.process.isRunning else { return }
        process.signal(SIGKILL)
        process.process.waitUntilExit()
        Issue.record("\(name) did not exit within 15 s of SIGTERM; output:\n\(process.stdout)\nstderr:\n\(process.stderr)")
    }

    var environment: [String: String] {
        var environment = ProcessInfo.processInfo.environment
        environment["XDG_CONFIG_HOME"] = configHome.path
        environment["QRLOGIN_SERVER"] = serverURL
        environment.removeValue(forKey: "QRLOGIN_PROFILE")
        return environment
    }

    /// Starts `qrlogin ARGS` in the background.
    func start(_ arguments: [String], stdin: String? = nil) throws -> RunningProcess {
        let process = try RunningProcess(binary, arguments, environment: environment, stdin: stdin)
        children.list.withLock { $0.append(process) }
        return process
    }

    /// Runs `qrlogin ARGS` to the end.
    func run(_ arguments: [String], stdin: String? = nil) async throws -> (status: Int32, stdout: String, stderr: String) {
        let process = try start(arguments, stdin: stdin)
        let status = try await process.waitForExit()
        return (status, process.stdout, process.stderr)
    }

    /// Registers and signs in `username` on profile `profile` through the CLI.
    func signedInPhone(_ username: String, displayName: String, profile: String = "phone") async throws {
        let registered = try await run(["phone", "register", "--profile", profile, "--username", username, "--display-name", displayName, "--password-stdin"], stdin: "correct horse battery\n")
        #expect(registered.status == 0, "\(registered.stderr)")
        let signedIn = try await run(["phone", "signin", "--profile", profile, "--username", username, "--password-stdin"], stdin: "correct horse battery\n")
        #expect(signedIn.status == 0, "\(signedIn.stderr)")
    }

    func profileDirectory(_ profile: String) -> URL {
        configHome.appendingPathComponent("qrlogin").appendingPathComponent(profile)
    }

    static func with(serverArguments: [String] = [], _ body: (CLIHarness) async throws -> Void) async throws {
        let harness = try await start(extraServerArguments: serverArguments)
        defer { harness.stop() }
        try await body(harness)
    }
}
