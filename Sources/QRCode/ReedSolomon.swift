/// Arithmetic in GF(2^8) modulo the QR code polynomial x^8 + x^4 + x^3 + x^2 + 1 (0x11D).
enum GF256 {
    /// exp[i] = 2^i, doubled in length so that exp[log a + log b] needs no reduction.
    static let exp: [UInt8] = {
        var table = [UInt8](repeating: 0, count: 512)
        var x = 1
        for i in 0..<255 {
            table[i] = UInt8(x)
            x <<= 1
            if x & 0x100 != 0 { x ^= 0x11D }
        }
        for i in 255..<512 { table[i] = table[i - 255] }
        return table
    }()

    /// log[a] for a in 1...255; log[0] is unused.
    static let log: [Int] = {
        var table = [Int](repeating: 0, count: 256)
        for i in 0..<255 { table[Int(exp[i])] = i }
        return table
    }()

    /// The product of two field elements.
    static func multiply(_ a: UInt8, _ b: UInt8) -> UInt8 {
        if a == 0 || b == 0 { return 0 }
        return exp[log[Int(a)] + log[Int(b)]]
    }
}

/// Reed–Solomon error correction codewords for QR codes.
enum ReedSolomon {
    /// The generator polynomial (x - 2^0)(x - 2^1)...(x - 2^(degree-1)), monic, with the
    /// leading coefficient left out: `degree` coefficients from x^(degree-1) down to x^0.
    static func generator(degree: Int) -> [UInt8] {
        precondition((1...255).contains(degree))
        var result = [UInt8](repeating: 0, count: degree)
        result[degree - 1] = 1
        var root: UInt8 = 1
        for _ in 0..<degree {
            for j in 0..<degree {
                result[j] = GF256.multiply(result[j], root)
                if j + 1 < degree { result[j] ^= result[j + 1] }
            }
            root = GF256.multiply(root, 2)
        }
        return result
    }

    /// The remainder of data(x) * x^degree divided by the generator: the ECC codewords.
    /// `generatorLogs` holds the logarithms of the generator's coefficients.
    static func remainder(
        _ data: UnsafeBufferPointer<UInt8>,
        generatorLogs: [Int],
        into out: UnsafeMutableBufferPointer<UInt8>
    ) {
        let degree = generatorLogs.count
        for i in 0..<degree { out[i] = 0 }
        GF256.exp.withUnsafeBufferPointer { exp in
            generatorLogs.withUnsafeBufferPointer { logs in
                let log = GF256.log
                for byte in data {
                    let factor = byte ^ out[0]
                    for i in 0..<(degree - 1) { out[i] = out[i + 1] }
                    out[degree - 1] = 0
                    if factor != 0 {
                        let lf = log[Int(factor)]
                        for i in 0..<degree { out[i] ^= exp[lf + logs[i]] }
                    }
                }
            }
        }
    }
}
