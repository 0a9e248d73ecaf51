import Foundation
import QRCode
import QRCodeRender
import Testing

/// Runs the built `qrlogin` executable (`swift test` builds it with the tests) and checks the
/// `qr` command's output, messages and exit codes.
@Suite("qrlogin qr")
struct QRCommandTests {
    static let executable: URL? = {
        var directories = [
            URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent(),
            Bundle.main.bundleURL,
            Bundle.main.bundleURL.deletingLastPathComponent(),
        ]
        for bundle in Bundle.allBundles where bundle.bundleURL.pathExtension == "xctest" {
            directories.append(bundle.bundleURL.deletingLastPathComponent())
        }
        return directories.map { $0.appendingPathComponent("qrlogin") }
            .first { FileManager.default.isExecutableFile(atPath: $0.path) }
    }()

    struct Result {
        var status: Int32
        var stdout: String
        var stderr: String
    }

    static func run(_ arguments: [String]) throws -> Result {
        let executable = try #require(executable, "the qrlogin executable is not next to the test bundle; run `swift build` first")
        let process = Process()
        process.executableURL = executable
        process.arguments = arguments
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        try process.run()
        let stdout = out.fileHandleForReading.readDataToEndOfFile()
        let stderr = err.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return Result(status: process.terminationStatus,
                      stdout: String(decoding: stdout, as: UTF8.self),
                      stderr: String(decoding: stderr, as: UTF8.self))
    }

    @Test(arguments: [
        (["qr", "--version", "0", "x"], 64, "--version must be in 1...40, not 0"),
        (["qr", "--version", "41", "x"], 64, "--version must be in 1...40, not 41"),
        (["qr", "--mask", "8", "x"], 64, "--mask must be in 0...7, not 8"),
        (["qr", "--ecc", "Z", "x"], 64, "'Z' is invalid for '--ecc"),
        (["qr", "--format", "jpeg", "x"], 64, "'jpeg' is invalid for '--format"),
        (["qr", "--mode", "kanji", "x"], 64, "'kanji' is invalid for '--mode"),
        (["qr", "--mode", "numeric", "12a"], 64, "character at offset 2 cannot be encoded in numeric mode"),
        (["qr", "--mode", "alphanumeric", "abc"], 64, "cannot be encoded in alphanumeric mode"),
        (["qr", ""], 64, "The text is empty"),
        (["qr", "--quiet-zone=65", "x"], 64, "--quiet-zone must be in 0...64, not 65"),
        (["qr", "--scale", "0", "x"], 64, "--scale must be in 1...64, not 0"),
        (["qr"], 64, "Missing expected argument '<text>'"),
        (["qr", String(repeating: "a", count: 3000)], 65, "data too long: 24020 data bits, but version 40 holds at most 18672 bits"),
        (["qr", "--version", "1", "--ecc", "H", "abcdefgh"], 65, "data too long: 76 data bits, but version 1 holds at most 72 bits"),
    ] as [([String], Int32, String)])
    func errors(arguments: [String], status: Int32, message: String) throws {
        let result = try Self.run(arguments)
        #expect(result.status == status)
        #expect(result.stderr.contains(message), "stderr: \(result.stderr)")
        #expect(result.stdout.isEmpty)
    }

    @Test func textFormatIsTheExactMatrix() throws {
        let result = try Self.run(["qr", "--format", "text", "--version", "5", "--mask", "3", "--ecc", "L", "hello"])
        #expect(result.status == 0)
        let expected = try QRCode.encode(text: "hello", correction: .low, minVersion: QRCode.Version(5),
                                         maxVersion: QRCode.Version(5), mask: QRCode.Mask(3), boostCorrection: false)
        #expect(expected.correction == .low)  // no boost with --version
        #expect(result.stdout == (try expected.plainText()))
        #expect(result.stdout.split(separator: "\n").count == 37)
    }

    @Test func automaticChoicesMatchTheLibrary() throws {
        let result = try Self.run(["qr", "--format", "text", "https://login.example.com/q/abc"])
        #expect(result.status == 0)
        #expect(result.stdout == (try QRCode.encode(text: "https://login.example.com/q/abc").plainText()))
    }

    @Test func svgAndPngFiles() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("qr-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let png = directory.appendingPathComponent("code.png").path
        let svg = directory.appendingPathComponent("code.svg").path
        #expect(try Self.run(["qr", "hello", "--output", png, "--scale", "2"]).status == 0)
        #expect(try Self.run(["qr", "hello", "--format", "svg", "--output", svg]).status == 0)
        let pngBytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: png)))
        #expect(pngBytes == (try QRCode.encode(text: "hello").png(scale: 2)))
        let svgText = try String(contentsOfFile: svg, encoding: .utf8)
        #expect(svgText == (try QRCode.encode(text: "hello").svg()))
    }

    @Test func unwritableOutputFails() throws {
        let result = try Self.run(["qr", "hello", "--output", "/nonexistent-directory/code.svg"])
        #expect(result.status == 74)
        #expect(result.stderr.contains("cannot write"))
    }
}
