import Testing
import QRCode
@testable import QRCodeRender

@Suite("Renderers")
struct RenderTests {
    static let code = try! QRCode.encode(text: "https://login.example.com/q/AbCdEfGhIjKlMnOpQrStUvWxYz012345")

    @Test func plainTextIsTheBareMatrix() throws {
        let lines = try Self.code.plainText().split(separator: "\n").map(String.init)
        #expect(lines.count == Self.code.size)
        #expect(lines == Self.code.rows.map { String($0.map { $0 ? "1" : "0" }) })
        let padded = try Self.code.plainText(quietZone: 2).split(separator: "\n")
        #expect(padded.count == Self.code.size + 4)
        #expect(padded[0] == Substring(String(repeating: "0", count: Self.code.size + 4)))
    }

    /// Parses terminal output back to modules: ANSI escapes removed, each character two modules.
    static func parseTerminal(_ text: String, ansi: Bool) -> [[Bool]] {
        var rows: [[Bool]] = []
        for line in text.split(separator: "\n", omittingEmptySubsequences: false) where !line.isEmpty {
            var top: [Bool] = [], bottom: [Bool] = []
            var skipping = false
            for ch in line {
                if ch == "\u{1B}" { skipping = true; continue }
                if skipping { if ch == "m" { skipping = false }; continue }
                var (t, b): (Bool, Bool)
                switch ch {
                case "\u{2588}": (t, b) = (true, true)
                case "\u{2580}": (t, b) = (true, false)
                case "\u{2584}": (t, b) = (false, true)
                default: (t, b) = (false, false)
                }
                // With colours the drawn (foreground) parts are the light modules.
                if ansi { t.toggle(); b.toggle() }
                top.append(t)
                bottom.append(b)
            }
            rows.append(top)
            rows.append(bottom)
        }
        return rows
    }

    @Test(arguments: [true, false])
    func terminalParsesBackToTheMatrix(ansi: Bool) throws {
        let quiet = 3
        let text = try Self.code.terminalText(quietZone: quiet, ansiColors: ansi)
        let side = Self.code.size + 2 * quiet
        #expect(text.split(separator: "\n").count == (side + 1) / 2)
        let parsed = Self.parseTerminal(text, ansi: ansi)
        for y in 0..<side {
            for x in 0..<side {
                #expect(parsed[y][x] == Self.code[x: x - quiet, y: y - quiet], "module \(x),\(y)")
            }
        }
        // The extra half row after an odd height is light.
        if side % 2 == 1 { #expect(parsed[side].allSatisfy { !$0 }) }
        if ansi {
            #expect(text.hasPrefix("\u{1B}[40;97m"))
            #expect(text.split(separator: "\n").allSatisfy { $0.hasSuffix("\u{1B}[0m") })
        }
    }

    @Test func svgIsOnePathWithCrispEdges() throws {
        let svg = try Self.code.svg(quietZone: 4, dark: "#112233", light: "white")
        let side = Self.code.size + 8
        #expect(svg.contains("viewBox=\"0 0 \(side) \(side)\""))
        #expect(svg.contains("shape-rendering=\"crispEdges\""))
        #expect(svg.split(separator: "<path").count == 2)
        #expect(svg.contains("fill=\"#112233\""))
        #expect(svg.contains("fill=\"white\""))
        // Top-left finder's first row: 7 dark modules starting at the quiet zone.
        #expect(svg.contains("M4 4h7v1h-7z"))
    }

    @Test func badOptionsThrow() {
        #expect(throws: QRRenderError.invalidQuietZone(-1)) { try Self.code.svg(quietZone: -1) }
        #expect(throws: QRRenderError.invalidQuietZone(65)) { try Self.code.terminalText(quietZone: 65) }
        #expect(throws: QRRenderError.invalidScale(0)) { try Self.code.png(scale: 0) }
        #expect(throws: QRRenderError.invalidScale(65)) { try Self.code.png(scale: 65) }
        #expect(throws: QRRenderError.invalidColor("red\" onload=\"x")) { try Self.code.svg(dark: "red\" onload=\"x") }
        #expect(throws: QRRenderError.invalidColor("#12345")) { try Self.code.svg(light: "#12345") }
    }

    @Test func crcAndAdlerMatchKnownValues() {
        #expect(PNG.crc32(Array("123456789".utf8)) == 0xCBF4_3926)
        #expect(PNG.crc32(Array("IEND".utf8)) == 0xAE42_6082)
        #expect(PNG.adler32(Array("Wikipedia".utf8)) == 0x11E6_0398)
        // Long input crosses the 5552-byte reduction boundary.
        let long = [UInt8](repeating: 0xFF, count: 100_000)
        var a: UInt64 = 1, b: UInt64 = 0
        for byte in long { a = (a + UInt64(byte)) % 65521; b = (b + a) % 65521 }
        #expect(PNG.adler32(long) == UInt32(b << 16 | a))
    }

    @Test func storedDeflateSplitsLargeData() {
        let data = [UInt8](repeating: 7, count: 70_000)
        let z = PNG.zlibStored(data)
        #expect(z.count == 2 + 5 + 65535 + 5 + (70_000 - 65535) + 4)
        #expect(z[2] == 0)  // first block not final
        #expect(z[2 + 5 + 65535] == 1)  // second block final
    }

    /// Decodes our own PNG (stored blocks, 1-bit grey) and compares the pixels with the matrix.
    @Test func pngPixelsMatchTheMatrix() throws {
        let scale = 3, quiet = 4
        let png = try Self.code.png(scale: scale, quietZone: quiet)
        #expect(Array(png.prefix(8)) == [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A])
        var offset = 8
        var idat: [UInt8] = []
        var side = 0
        while offset < png.count {
            let length = Int(png[offset]) << 24 | Int(png[offset + 1]) << 16 | Int(png[offset + 2]) << 8 | Int(png[offset + 3])
            let type = String(decoding: png[(offset + 4)..<(offset + 8)], as: UTF8.self)
            let data = Array(png[(offset + 8)..<(offset + 8 + length)])
            let crc = png[(offset + 8 + length)..<(offset + 12 + length)].reduce(UInt32(0)) { $0 << 8 | UInt32($1) }
            #expect(crc == PNG.crc32(Array(png[(offset + 4)..<(offset + 8 + length)])))
            if type == "IHDR" { side = Int(data[0]) << 24 | Int(data[1]) << 16 | Int(data[2]) << 8 | Int(data[3]) }
            if type == "IDAT" { idat += data }
            offset += 12 + length
        }
        #expect(side == (Self.code.size + 2 * quiet) * scale)
        // Inflate stored blocks.
        var raw: [UInt8] = []
        var i = 2
        while true {
            let final = idat[i] & 1
            let length = Int(idat[i + 1]) | Int(idat[i + 2]) << 8
            raw += idat[(i + 5)..<(i + 5 + length)]
            i += 5 + length
            if final == 1 { break }
        }
        let rowBytes = (side + 7) / 8
        #expect(raw.count == side * (rowBytes + 1))
        for py in Swift.stride(from: 0, to: side, by: scale) {
            for px in Swift.stride(from: 0, to: side, by: scale) {
                let byte = raw[py * (rowBytes + 1) + 1 + px / 8]
                let white = byte >> UInt8(7 - px % 8) & 1 == 1
                #expect(white == !Self.code[x: px / scale - quiet, y: py / scale - quiet])
            }
        }
    }
}

/// The example in docs/qr.md, kept compiling and true.
@Test func documentationExample() throws {
    let code = try QRCode.encode(text: "https://login.example.com/q/3q2-7wAbCdEfGhIjKlMnOpQrStUvWx")
    #expect("\(code.version) \(code.correction) \(code.mask) \(code.size)" == "4 M 3 33")
    #expect(code[x: 0, y: 0])
    _ = try code.svg(quietZone: 4)
    _ = try code.png(scale: 8)
    _ = try code.terminalText()
    _ = try code.plainText()
    let order = try QRCode.encode(
        segments: [try QRSegment.alphanumeric("ORDER-"), try QRSegment.numeric("20261125")],
        correction: .quartile, minVersion: try QRCode.Version(2), maxVersion: try QRCode.Version(10),
        mask: try QRCode.Mask(3), boostCorrection: false)
    #expect(order.version.number == 2 && order.mask.number == 3 && order.correction == .quartile)
}
