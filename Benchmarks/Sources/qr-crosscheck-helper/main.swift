import Foundation
import QRCode
import QRCodeRender

// Test helper for scripts/qr-crosscheck: encodes one case per input line and prints one result
// line, so hundreds of symbols come from a single process.
//
// Input:  MODE LEVEL MINVERSION MAXVERSION MASK BOOST HEXPAYLOAD ECI RENDERPREFIX
//   MODE is numeric, alphanumeric, byte, kanji (payload = Shift_JIS), eci (ECI segment, then
//   the payload as a byte segment) or text (payload = UTF-8, automatic segmentation);
//   MASK is -1 for automatic; BOOST is 0 or 1; ECI is the designator or -; RENDERPREFIX is -
//   or a path prefix to which .png, .svg and .term files are written.
// Output: ok VERSION LEVEL MASK SEGMENTS MATRIX, where SEGMENTS is MODE:COUNT:BITS:HEX joined by
//   commas and MATRIX is the rows of 0/1 joined together; or error MESSAGE.

func hexDecode(_ hex: Substring) -> [UInt8] {
    var bytes: [UInt8] = []
    var index = hex.startIndex
    while index < hex.endIndex {
        let next = hex.index(index, offsetBy: 2)
        bytes.append(UInt8(hex[index..<next], radix: 16)!)
        index = next
    }
    return bytes
}

func hexEncode(_ bytes: [UInt8]) -> String {
    bytes.map { String(format: "%02x", $0) }.joined()
}

func level(_ letter: Substring) -> QRCode.ErrorCorrection {
    switch letter {
    case "L": .low
    case "M": .medium
    case "Q": .quartile
    default: .high
    }
}

func run(_ fields: [Substring]) throws -> String {
    let mode = fields[0]
    let correction = level(fields[1])
    let minVersion = try QRCode.Version(Int(fields[2])!)
    let maxVersion = try QRCode.Version(Int(fields[3])!)
    let maskNumber = Int(fields[4])!
    let mask = maskNumber < 0 ? nil : try QRCode.Mask(maskNumber)
    let boost = fields[5] == "1"
    let payload = fields[6] == "-" ? [] : hexDecode(fields[6])
    let code: QRCode
    var segments: [QRSegment]
    if mode == "text" {
        let text = String(decoding: payload, as: UTF8.self)
        code = try QRCode.encode(text: text, correction: correction, minVersion: minVersion,
                                 maxVersion: maxVersion, mask: mask, boostCorrection: boost)
        segments = QRSegment.segments(for: text, version: code.version.number)
    } else {
        switch mode {
        case "numeric": segments = [try QRSegment.numeric(String(decoding: payload, as: UTF8.self))]
        case "alphanumeric": segments = [try QRSegment.alphanumeric(String(decoding: payload, as: UTF8.self))]
        case "kanji": segments = [try QRSegment.kanji(shiftJIS: payload)]
        case "eci": segments = [try QRSegment.eci(Int(fields[7])!), QRSegment.bytes(payload)]
        default: segments = [QRSegment.bytes(payload)]
        }
        code = try QRCode.encode(segments: segments, correction: correction, minVersion: minVersion,
                                 maxVersion: maxVersion, mask: mask, boostCorrection: boost)
    }
    if fields[8] != "-" {
        let prefix = String(fields[8])
        try Data(code.png(scale: 4, quietZone: 4)).write(to: URL(fileURLWithPath: prefix + ".png"))
        try code.svg().write(toFile: prefix + ".svg", atomically: true, encoding: .utf8)
        try code.terminalText().write(toFile: prefix + ".term", atomically: true, encoding: .utf8)
    }
    let segmentText = segments.map { "\($0.mode):\($0.characterCount):\($0.bitLength):\(hexEncode($0.dataBytes))" }
        .joined(separator: ",")
    let matrix = try code.plainText().filter { $0 != "\n" }
    return "ok \(code.version) \(code.correction) \(code.mask) \(segmentText) \(matrix)"
}

while let line = readLine() {
    let fields = line.split(separator: " ")
    guard fields.count == 9 else {
        print("error malformed input line")
        continue
    }
    do {
        print(try run(fields))
    } catch {
        print("error \(error)")
    }
}
