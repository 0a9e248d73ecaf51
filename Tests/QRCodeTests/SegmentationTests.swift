import Testing
@testable import QRCode

@Suite("Automatic segmentation")
struct SegmentationTests {
    @Test func singleModeTexts() {
        #expect(QRSegment.segments(for: "0123456789").map(\.mode) == [.numeric])
        #expect(QRSegment.segments(for: "HELLO WORLD").map(\.mode) == [.alphanumeric])
        #expect(QRSegment.segments(for: "hello").map(\.mode) == [.byte])
        #expect(QRSegment.segments(for: "").isEmpty)
    }

    @Test func mixedTextSwitchesWhenShorter() {
        let text = "abc" + String(repeating: "1", count: 40) + "xyz"
        let segments = QRSegment.segments(for: text)
        #expect(segments.map(\.mode) == [.byte, .numeric, .byte])
        let single = QRSegment.totalBits([QRSegment.bytes(utf8: text)], version: 1)!
        #expect(QRSegment.totalBits(segments, version: 1)! < single)
    }

    /// Texts that fit as one byte segment never come out longer, whatever the mix.
    @Test(arguments: ["a1", "A1b", "1A", "https://login.example.com/q/AbC123-_xyz", "Ünïcödé 123 ABC", "9a9a9a9a9a", "€1€", "A b C d 1 2 3 $ % *"])
    func neverLongerThanOneByteSegment(text: String) {
        for version in [1, 10, 27] {
            let single = QRSegment.totalBits([QRSegment.bytes(utf8: text)], version: version)!
            let chosen = QRSegment.totalBits(QRSegment.segments(for: text, version: version), version: version)!
            #expect(chosen <= single, "\(text) at \(version)")
        }
    }

    @Test func randomTextsNeverLonger() {
        var generator = SplitMix64(seed: 7)
        let alphabet = Array("0123456789ABCXYZ $%*+-./:abcxyzé€")
        for _ in 0..<500 {
            let length = Int(generator.next() % 60) + 1
            let text = String((0..<length).map { _ in alphabet[Int(generator.next() % UInt64(alphabet.count))] })
            for version in [1, 10, 27] {
                let single = QRSegment.totalBits([QRSegment.bytes(utf8: text)], version: version)!
                let chosen = QRSegment.totalBits(QRSegment.segments(for: text, version: version), version: version)!
                #expect(chosen <= single, "\(text)")
            }
        }
    }

    /// encode(text:) picks the smallest version whose own segmentation fits, also across the
    /// count-width classes (checked against trying every version in turn).
    @Test func textGetsTheSmallestVersion() throws {
        var generator = SplitMix64(seed: 11)
        let alphabets = ["0123456789", "0123456789ABCDEF $", "abc0123456789XYZ", "é€a1"]
        for length in [150, 200, 260, 300, 400, 1000, 1200, 1500, 2000] {
            for alphabet in alphabets.map(Array.init) {
                let text = String((0..<length).map { _ in alphabet[Int(generator.next() % UInt64(alphabet.count))] })
                let expected = (1...40).first { v in
                    QRSegment.totalBits(QRSegment.segments(for: text, version: v), version: v).map {
                        $0 <= QRCode.dataCodewords(version: v, level: .medium) * 8
                    } ?? false
                }
                if let expected {
                    let code = try QRCode.encode(text: text, correction: .medium, minVersion: .min, maxVersion: .max,
                                                 mask: QRCode.Mask(0), boostCorrection: false)
                    #expect(code.version.number == expected, "\(length) chars of \(String(alphabet))")
                } else {
                    #expect(throws: QRCodeError.self) { try QRCode.encode(text: text) }
                }
            }
        }
    }

    @Test func countWidthsChangeAtVersions10And27() {
        #expect(QRSegment.Mode.numeric.characterCountBits(version: 9) == 10)
        #expect(QRSegment.Mode.numeric.characterCountBits(version: 10) == 12)
        #expect(QRSegment.Mode.numeric.characterCountBits(version: 26) == 12)
        #expect(QRSegment.Mode.numeric.characterCountBits(version: 27) == 14)
        #expect(QRSegment.Mode.byte.characterCountBits(version: 9) == 8)
        #expect(QRSegment.Mode.byte.characterCountBits(version: 10) == 16)
        #expect(QRSegment.Mode.kanji.characterCountBits(version: 40) == 12)
    }
}

struct SplitMix64: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
