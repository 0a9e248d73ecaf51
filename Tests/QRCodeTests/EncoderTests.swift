import Testing
@testable import QRCode

@Suite("Encoder")
struct EncoderTests {
    /// The standard's example, "01234567" at 1-M with mask 2; the matrix is the one Nayuki's
    /// generator draws for the same segment, version, level and mask.
    @Test func standardExample() throws {
        let expected = [
            "111111100101101111111",
            "100000100111101000001",
            "101110101000001011101",
            "101110101100001011101",
            "101110101011101011101",
            "100000101000101000001",
            "111111101010101111111",
            "000000001001100000000",
            "101111100100101111100",
            "000101011010100101100",
            "001000110101010011111",
            "000010000100000111100",
            "000111111001010010000",
            "000000001011111001100",
            "111111100110101100000",
            "100000101011111000101",
            "101110101000100101100",
            "101110101100100100000",
            "101110101011010010100",
            "100000100000000110110",
            "111111101111010010100",
        ]
        let code = try QRCode.encode(
            segments: [QRSegment.numeric("01234567")], correction: .medium,
            minVersion: .min, maxVersion: .min, mask: QRCode.Mask(2), boostCorrection: false)
        #expect(code.version.number == 1)
        #expect(code.size == 21)
        #expect(code.correction == .medium)
        #expect(code.mask.number == 2)
        #expect(code.rows.map { String($0.map { $0 ? "1" : "0" }) } == expected)

        let automatic = try QRCode.encode(
            segments: [QRSegment.numeric("01234567")], correction: .medium, boostCorrection: false)
        #expect(automatic.mask.number == 0)
    }

    @Test func numericSegmentBits() throws {
        let segment = try QRSegment.numeric("01234567")
        #expect(segment.characterCount == 8)
        #expect(segment.bitLength == 27)
        #expect(QRSegment.totalBits([segment], version: 1) == 41)
    }

    @Test func alphanumericSegmentBits() throws {
        // "AC-42": (10*45+12), (41*45+4), 2 → 11 + 11 + 6 bits.
        let segment = try QRSegment.alphanumeric("AC-42")
        #expect(segment.bitLength == 28)
        #expect(segment.dataBytes == [0b0011_1001, 0b1101_1100, 0b1110_0100, 0b0010_0000])
    }

    @Test func eciDesignatorLengths() throws {
        #expect(try QRSegment.eci(26).bitLength == 8)
        #expect(try QRSegment.eci(127).bitLength == 8)
        #expect(try QRSegment.eci(128).bitLength == 16)
        #expect(try QRSegment.eci(16383).bitLength == 16)
        #expect(try QRSegment.eci(16384).bitLength == 24)
        #expect(try QRSegment.eci(999_999).bitLength == 24)
        #expect(throws: QRCodeError.outOfRange(what: "ECI designator", value: 1_000_000, allowed: 0...999_999)) {
            try QRSegment.eci(1_000_000)
        }
    }

    @Test func kanjiSegment() throws {
        // The standard's examples: 0x935F → 0xD9F, 0xE4AA → 0x1AAA.
        let segment = try QRSegment.kanji(shiftJIS: [0x93, 0x5F, 0xE4, 0xAA])
        #expect(segment.characterCount == 2)
        #expect(segment.bitLength == 26)
        #expect(QRSegment.kanjiValue(0x93, 0x5F) == 0xD9F)
        #expect(QRSegment.kanjiValue(0xE4, 0xAA) == 0x1AAA)
        #expect(QRSegment.kanjiValue(0xEB, 0xC0) == nil)
        #expect(QRSegment.kanjiValue(0xA0, 0x40) == nil)
        #expect(throws: QRCodeError.self) { try QRSegment.kanji(shiftJIS: [0x93]) }
    }

    @Test func invalidCharactersAreReported() {
        #expect(throws: QRCodeError.invalidCharacter(mode: .numeric, offset: 3)) { try QRSegment.numeric("123a") }
        #expect(throws: QRCodeError.invalidCharacter(mode: .alphanumeric, offset: 0)) { try QRSegment.alphanumeric("abc") }
    }

    @Test func emptyInputIsRejected() {
        #expect(throws: QRCodeError.emptyInput) { try QRCode.encode(text: "") }
        #expect(throws: QRCodeError.emptyInput) { try QRCode.encode(bytes: [UInt8]()) }
        #expect(throws: QRCodeError.emptyInput) { try QRCode.encode(segments: [], correction: .low) }
        #expect(throws: QRCodeError.emptyInput) { try QRCode.encode(segments: [QRSegment.eci(26)], correction: .low) }
    }

    @Test func rangesAreChecked() {
        #expect(throws: QRCodeError.outOfRange(what: "version", value: 0, allowed: 1...40)) { try QRCode.Version(0) }
        #expect(throws: QRCodeError.outOfRange(what: "version", value: 41, allowed: 1...40)) { try QRCode.Version(41) }
        #expect(throws: QRCodeError.outOfRange(what: "mask", value: 8, allowed: 0...7)) { try QRCode.Mask(8) }
        #expect(throws: QRCodeError.outOfRange(what: "mask", value: -1, allowed: 0...7)) { try QRCode.Mask(-1) }
        #expect(throws: QRCodeError.invalidVersionRange(min: 5, max: 2)) {
            try QRCode.encode(segments: [QRSegment.bytes([1])], correction: .low,
                              minVersion: QRCode.Version(5), maxVersion: QRCode.Version(2))
        }
    }

    @Test func tooLongStatesBitsAndCapacity() throws {
        let error = #expect(throws: QRCodeError.self) {
            try QRCode.encode(bytes: [UInt8](repeating: 0x41, count: 2954), correction: .low)
        }
        #expect(error == .dataTooLong(dataBits: 4 + 16 + 2954 * 8, capacityBits: 2956 * 8, version: 40))
        #expect(error?.description.contains("23652 data bits") == true)
        #expect(error?.description.contains("23648 bits") == true)
    }

    @Test func boostRaisesTheLevelWithinTheVersion() throws {
        // 1 byte fits version 1 even at H; with boost the result is H, without it stays L.
        let boosted = try QRCode.encode(bytes: [0x41], correction: .low)
        #expect(boosted.version.number == 1 && boosted.correction == .high)
        let plain = try QRCode.encode(segments: [QRSegment.bytes([0x41])], correction: .low, boostCorrection: false)
        #expect(plain.correction == .low)
    }

    @Test func moduleAccessOutsideIsLight() throws {
        let code = try QRCode.encode(text: "hello")
        #expect(code[x: -1, y: 0] == false)
        #expect(code[x: code.size, y: 0] == false)
        #expect(code[x: 0, y: 0] == true)  // finder corner
    }

    @Test func everyMaskIsHonoured() throws {
        for mask in QRCode.Mask.all {
            let code = try QRCode.encode(text: "https://example.com", correction: .quartile,
                                         minVersion: .min, maxVersion: .max, mask: mask, boostCorrection: false)
            #expect(code.mask == mask)
        }
    }
}
