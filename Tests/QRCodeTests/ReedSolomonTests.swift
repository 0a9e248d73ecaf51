import Testing
@testable import QRCode

@Suite("GF(256) and Reed–Solomon")
struct ReedSolomonTests {
    @Test func fieldArithmetic() {
        #expect(GF256.exp[0] == 1)
        #expect(GF256.exp[8] == 0x1D)  // x^8 reduced by x^8 + x^4 + x^3 + x^2 + 1
        #expect(GF256.exp[255] == 1)
        #expect(GF256.multiply(0x80, 2) == 0x1D)
        #expect(GF256.multiply(0, 0x53) == 0)
        #expect(GF256.multiply(0x53, 0xCA) == GF256.multiply(0xCA, 0x53))
        for a in 1...255 {
            // Every non-zero element has an inverse: a * a^(254) = 1.
            let inverse = GF256.exp[(255 - GF256.log[a]) % 255]
            #expect(GF256.multiply(UInt8(a), inverse) == 1)
        }
    }

    /// Generator polynomials from ISO/IEC 18004 annex A, as exponents of alpha.
    @Test(arguments: [
        (7, [87, 229, 146, 149, 238, 102, 21]),
        (10, [251, 67, 46, 61, 118, 70, 64, 94, 32, 45]),
    ])
    func generatorPolynomial(degree: Int, exponents: [Int]) {
        let generator = ReedSolomon.generator(degree: degree)
        #expect(generator.map { GF256.log[Int($0)] } == exponents)
    }

    @Test func generatorDegree7Values() {
        #expect(ReedSolomon.generator(degree: 7) == [127, 122, 154, 164, 11, 68, 117])
    }

    /// The standard's example: "01234567" at 1-M.
    @Test func remainderOfStandardExample() {
        let data: [UInt8] = [0x10, 0x20, 0x0C, 0x56, 0x61, 0x80, 0xEC, 0x11, 0xEC, 0x11, 0xEC, 0x11, 0xEC, 0x11, 0xEC, 0x11]
        let logs = ReedSolomon.generator(degree: 10).map { GF256.log[Int($0)] }
        var ecc = [UInt8](repeating: 0, count: 10)
        data.withUnsafeBufferPointer { d in
            ecc.withUnsafeMutableBufferPointer { e in ReedSolomon.remainder(d, generatorLogs: logs, into: e) }
        }
        #expect(ecc == [0xA5, 0x24, 0xD4, 0xC1, 0xED, 0x36, 0xC7, 0x87, 0x2C, 0x55])
    }
}
