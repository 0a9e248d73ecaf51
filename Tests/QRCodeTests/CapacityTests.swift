import Testing
@testable import QRCode

/// Data capacity at every version and level boundary (ISO/IEC 18004 table 7): the data at
/// capacity fits that version; one character more moves to the next version, or fails at 40.
@Suite("Capacity")
struct CapacityTests {
    /// Data codewords by level (L, M, Q, H) and version 1...40, from table 7.
    static let dataCodewords: [[Int]] = [
        [19, 34, 55, 80, 108, 136, 156, 194, 232, 274, 324, 370, 428, 461, 523, 589, 647, 721, 795, 861, 932, 1006, 1094, 1174, 1276, 1370, 1468, 1531, 1631, 1735, 1843, 1955, 2071, 2191, 2306, 2434, 2566, 2702, 2812, 2956],
        [16, 28, 44, 64, 86, 108, 124, 154, 182, 216, 254, 290, 334, 365, 415, 453, 507, 563, 627, 669, 714, 782, 860, 914, 1000, 1062, 1128, 1193, 1267, 1373, 1455, 1541, 1631, 1725, 1812, 1914, 1992, 2102, 2216, 2334],
        [13, 22, 34, 48, 62, 76, 88, 110, 132, 154, 180, 206, 244, 261, 295, 325, 367, 397, 445, 485, 512, 568, 614, 664, 718, 754, 808, 871, 911, 985, 1033, 1115, 1171, 1231, 1286, 1354, 1426, 1502, 1582, 1666],
        [9, 16, 26, 36, 46, 60, 66, 86, 100, 122, 140, 158, 180, 197, 223, 253, 283, 313, 341, 385, 406, 442, 464, 514, 538, 596, 628, 661, 701, 745, 793, 845, 901, 961, 986, 1054, 1096, 1142, 1222, 1276],
    ]

    @Test func dataCodewordTable() {
        for level in QRCode.ErrorCorrection.allCases {
            for v in 1...40 {
                #expect(QRCode.dataCodewords(version: v, level: level) == Self.dataCodewords[level.rawValue][v - 1])
            }
        }
    }

    /// Largest character count of `mode` that fits `bits` at `version`.
    static func capacity(_ mode: QRSegment.Mode, bits: Int, version: Int) -> Int {
        let room = bits - 4 - mode.characterCountBits(version: version)
        switch mode {
        case .numeric: return room / 10 * 3 + [0, 0, 0, 0, 1, 1, 1, 2, 2, 2][room % 10]
        case .alphanumeric: return room / 11 * 2 + (room % 11 >= 6 ? 1 : 0)
        default: return room / 8
        }
    }

    static func segment(_ mode: QRSegment.Mode, count: Int) throws -> QRSegment {
        switch mode {
        case .numeric: try QRSegment.numeric(String(repeating: "7", count: count))
        case .alphanumeric: try QRSegment.alphanumeric(String(repeating: "Q", count: count))
        default: QRSegment.bytes([UInt8](repeating: 0xA5, count: count))
        }
    }

    @Test(arguments: [QRSegment.Mode.numeric, .alphanumeric, .byte], QRCode.ErrorCorrection.allCases)
    func boundaries(mode: QRSegment.Mode, level: QRCode.ErrorCorrection) throws {
        let fixedMask = try QRCode.Mask(0)
        for v in 1...40 {
            let bits = Self.dataCodewords[level.rawValue][v - 1] * 8
            let count = Self.capacity(mode, bits: bits, version: v)
            let minVersion = try QRCode.Version(v)
            let fits = try QRCode.encode(segments: [Self.segment(mode, count: count)], correction: level,
                                         minVersion: minVersion, mask: fixedMask, boostCorrection: false)
            #expect(fits.version.number == v, "\(mode) \(level) v\(v) count \(count)")
            let over = try Self.segment(mode, count: count + 1)
            if v < 40 {
                let next = try QRCode.encode(segments: [over], correction: level, minVersion: minVersion,
                                             mask: fixedMask, boostCorrection: false)
                #expect(next.version.number == v + 1, "\(mode) \(level) v\(v) count \(count + 1)")
            } else {
                #expect(throws: QRCodeError.self) {
                    try QRCode.encode(segments: [over], correction: level, minVersion: minVersion, mask: fixedMask)
                }
            }
        }
    }

    /// Published byte-mode capacities at the extremes.
    @Test func publishedByteCapacities() {
        #expect(Self.capacity(.byte, bits: 19 * 8, version: 1) == 17)
        #expect(Self.capacity(.byte, bits: 9 * 8, version: 1) == 7)
        #expect(Self.capacity(.byte, bits: 2956 * 8, version: 40) == 2953)
        #expect(Self.capacity(.byte, bits: 1276 * 8, version: 40) == 1273)
        #expect(Self.capacity(.numeric, bits: 2956 * 8, version: 40) == 7089)
        #expect(Self.capacity(.alphanumeric, bits: 2956 * 8, version: 40) == 4296)
        #expect(Self.capacity(.numeric, bits: 19 * 8, version: 1) == 41)
        #expect(Self.capacity(.alphanumeric, bits: 19 * 8, version: 1) == 25)
    }
}
