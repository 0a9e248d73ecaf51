import ArgumentParser
import Foundation
import QRCode
import QRCodeRender

/// `qrlogin qr`: encodes text as a QR code for the terminal, SVG, PNG or a bare 0/1 matrix.
///
/// Exit codes: 0 on success, 64 for bad options or text the chosen mode cannot hold (usage),
/// 65 when the data does not fit (data error), 74 when the output cannot be written.
struct QRCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "qr",
        abstract: "Encode text as a QR code.",
        discussion: """
            The default format is terminal on a TTY; otherwise it follows the --output file's \
            extension (.png, .svg, .txt) and falls back to terminal. With --version the symbol has \
            exactly that version and the level is not boosted; with --mask it has that mask. \
            Exit codes: 64 for usage errors, 65 when the data is too long.
            """
    )

    enum Format: String, ExpressibleByArgument, CaseIterable {
        case terminal, svg, png, text
    }

    enum Level: String, ExpressibleByArgument, CaseIterable {
        case L, M, Q, H

        var correction: QRCode.ErrorCorrection {
            switch self {
            case .L: .low
            case .M: .medium
            case .Q: .quartile
            case .H: .high
            }
        }
    }

    enum Mode: String, ExpressibleByArgument, CaseIterable {
        case auto, numeric, alphanumeric, byte
    }

    @Argument(help: "The text to encode.")
    var text: String

    @Option(help: "Output format: terminal, svg, png or text (the bare 0/1 matrix).")
    var format: Format?

    @Option(help: "Error correction level: L, M, Q or H.")
    var ecc: Level = .M

    @Option(help: "Exact version, 1...40 (default: the smallest that fits).")
    var version: Int?

    @Option(help: "Mask, 0...7 (default: chosen by the penalty rules).")
    var mask: Int?

    @Option(help: "Segment mode: auto (shortest mix), numeric, alphanumeric or byte (UTF-8).")
    var mode: Mode = .auto

    @Option(name: .customLong("quiet-zone"), help: "Quiet zone in modules, 0...64 (default 4; 0 for text).")
    var quietZone: Int?

    @Option(help: "PNG pixels per module, 1...64.")
    var scale: Int = 8

    @Option(help: "Write to this file instead of standard output.")
    var output: String?

    func validate() throws {
        if text.isEmpty { throw ValidationError("The text is empty: there is nothing to encode.") }
        if let version, !(1...40).contains(version) {
            throw ValidationError("--version must be in 1...40, not \(version).")
        }
        if let mask, !(0...7).contains(mask) {
            throw ValidationError("--mask must be in 0...7, not \(mask).")
        }
        if let quietZone, !QRRenderLimits.quietZone.contains(quietZone) {
            throw ValidationError("--quiet-zone must be in 0...64, not \(quietZone).")
        }
        if !QRRenderLimits.scale.contains(scale) {
            throw ValidationError("--scale must be in 1...64, not \(scale).")
        }
        if resolvedFormat == .png && output == nil && isatty(STDOUT_FILENO) != 0 {
            throw ValidationError("PNG is binary: give --output FILE or redirect standard output.")
        }
    }

    var resolvedFormat: Format {
        if let format { return format }
        if let output {
            switch URL(fileURLWithPath: output).pathExtension.lowercased() {
            case "png": return .png
            case "svg": return .svg
            case "txt": return .text
            default: break
            }
        }
        return .terminal
    }

    func run() throws {
        let code: QRCode
        do {
            code = try encode()
        } catch let error as QRCodeError {
            // Too long is a data error (EX_DATAERR); anything else is a bad option (EX_USAGE).
            FileHandle.standardError.write(Data("Error: \(error)\n".utf8))
            if case .dataTooLong = error { throw ExitCode(65) }
            throw ExitCode(64)
        }
        let bytes: [UInt8]
        switch resolvedFormat {
        case .terminal:
            let colors = output == nil && isatty(STDOUT_FILENO) != 0
            bytes = Array(try code.terminalText(quietZone: quietZone ?? 4, ansiColors: colors).utf8)
        case .svg:
            bytes = Array(try code.svg(quietZone: quietZone ?? 4).utf8)
        case .png:
            bytes = try code.png(scale: scale, quietZone: quietZone ?? 4)
        case .text:
            bytes = Array(try code.plainText(quietZone: quietZone ?? 0).utf8)
        }
        if let output {
            do {
                try Data(bytes).write(to: URL(fileURLWithPath: output))
            } catch {
                FileHandle.standardError.write(Data("Error: cannot write \(output): \(error.localizedDescription)\n".utf8))
                throw ExitCode(74)
            }
        } else {
            FileHandle.standardOutput.write(Data(bytes))
        }
    }

    /// Encodes the text with the options; throws `QRCodeError`.
    func encode() throws -> QRCode {
        let correction = ecc.correction
        let fixedVersion = try version.map { try QRCode.Version($0) }
        let fixedMask = try mask.map { try QRCode.Mask($0) }
        let minVersion = fixedVersion ?? .min
        let maxVersion = fixedVersion ?? .max
        let boost = fixedVersion == nil
        let segment: QRSegment
        switch mode {
        case .auto:
            return try QRCode.encode(text: text, correction: correction, minVersion: minVersion,
                                     maxVersion: maxVersion, mask: fixedMask, boostCorrection: boost)
        case .numeric: segment = try QRSegment.numeric(text)
        case .alphanumeric: segment = try QRSegment.alphanumeric(text)
        case .byte: segment = QRSegment.bytes(utf8: text)
        }
        return try QRCode.encode(segments: [segment], correction: correction, minVersion: minVersion,
                                 maxVersion: maxVersion, mask: fixedMask, boostCorrection: boost)
    }
}
