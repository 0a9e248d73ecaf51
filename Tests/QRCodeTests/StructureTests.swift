import Testing
@testable import QRCode

@Suite("Function patterns, format and version information")
struct StructureTests {
    /// Alignment pattern centres from ISO/IEC 18004 annex E.
    @Test(arguments: [
        (1, []),
        (2, [6, 18]),
        (7, [6, 22, 38]),
        (14, [6, 26, 46, 66]),
        (22, [6, 26, 50, 74, 98]),
        (32, [6, 34, 60, 86, 112, 138]),
        (36, [6, 24, 50, 76, 102, 128, 154]),
        (40, [6, 30, 58, 86, 114, 142, 170]),
    ])
    func alignmentPositions(version: Int, expected: [Int]) {
        #expect(QRCode.alignmentPositions(version: version) == expected)
    }

    /// Format information after masking with 0x5412 (annex C), by level and mask.
    @Test func formatBits() {
        let table: [QRCode.ErrorCorrection: [Int]] = [
            .low: [0b111011111000100, 0b111001011110011, 0b111110110101010, 0b111100010011101,
                   0b110011000101111, 0b110001100011000, 0b110110001000001, 0b110100101110110],
            .medium: [0b101010000010010, 0b101000100100101, 0b101111001111100, 0b101101101001011,
                      0b100010111111001, 0b100000011001110, 0b100111110010111, 0b100101010100000],
            .quartile: [0b011010101011111, 0b011000001101000, 0b011111100110001, 0b011101000000110,
                        0b010010010110100, 0b010000110000011, 0b010111011011010, 0b010101111101101],
            .high: [0b001011010001001, 0b001001110111110, 0b001110011100111, 0b001100111010000,
                    0b000011101100010, 0b000001001010101, 0b000110100001100, 0b000100000111011],
        ]
        for (level, values) in table {
            for mask in 0..<8 {
                #expect(QRCode.formatBits(level: level, mask: mask) == values[mask], "\(level) mask \(mask)")
            }
        }
    }

    /// Version information (annex D).
    @Test func versionBits() {
        let expected = [
            0x07C94, 0x085BC, 0x09A99, 0x0A4D3, 0x0BBF6, 0x0C762, 0x0D847, 0x0E60D, 0x0F928, 0x10B78,
            0x1145D, 0x12A17, 0x13532, 0x149A6, 0x15683, 0x168C9, 0x177EC, 0x18EC4, 0x191E1, 0x1AFAB,
            0x1B08E, 0x1CC1A, 0x1D33F, 0x1ED75, 0x1F250, 0x209D5, 0x216F0, 0x228BA, 0x2379F, 0x24B0B,
            0x2542E, 0x26A64, 0x27541, 0x28C69,
        ]
        for (i, value) in expected.enumerated() {
            #expect(QRCode.versionBits(version: i + 7) == value, "version \(i + 7)")
        }
    }

    @Test func rawModuleCounts() {
        #expect(QRCode.rawDataModules(version: 1) == 208)
        #expect(QRCode.rawDataModules(version: 7) == 1568)
        #expect(QRCode.rawDataModules(version: 40) == 29648)
    }

    @Test func functionTemplateCountsMatchRawModules() {
        for v in 1...40 {
            let template = FunctionTemplate(version: v)
            let functionModules = template.isFunction.rows.reduce(0) { $0 + $1.nonzeroBitCount }
            let size = v * 4 + 17
            #expect(size * size - functionModules == QRCode.rawDataModules(version: v), "version \(v)")
        }
    }
}
