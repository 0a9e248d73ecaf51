/// A square bit matrix kept twice, as rows and as columns, so that the penalty scorer can read
/// both directions as bit sets. Line `i` occupies words `i * stride ..< (i + 1) * stride`.
struct BitMatrix: Sendable {
    let size: Int
    /// Words per line: 1 for sizes up to 64, 2 up to 128, 3 up to 177.
    let stride: Int
    var rows: [UInt64]
    var cols: [UInt64]

    init(size: Int) {
        self.size = size
        stride = (size + 63) >> 6
        rows = [UInt64](repeating: 0, count: size * stride)
        cols = rows
    }

    @inline(__always)
    func get(x: Int, y: Int) -> Bool {
        rows[y * stride + x >> 6] >> UInt64(x & 63) & 1 != 0
    }

    @inline(__always)
    mutating func set(x: Int, y: Int, _ dark: Bool) {
        let rowBit: UInt64 = 1 << UInt64(x & 63)
        let colBit: UInt64 = 1 << UInt64(y & 63)
        if dark {
            rows[y * stride + x >> 6] |= rowBit
            cols[x * stride + y >> 6] |= colBit
        } else {
            rows[y * stride + x >> 6] &= ~rowBit
            cols[x * stride + y >> 6] &= ~colBit
        }
    }
}

/// The parts of a symbol that depend only on its version: function patterns (finders,
/// separators, timing, alignment, version information and the dark module) and the map of
/// which modules are function modules. The format area is reserved but left light.
struct FunctionTemplate: Sendable {
    var modules: BitMatrix
    var isFunction: BitMatrix

    init(version: Int) {
        let size = version * 4 + 17
        modules = BitMatrix(size: size)
        isFunction = BitMatrix(size: size)

        for i in 0..<size {
            setFunction(x: 6, y: i, i % 2 == 0)
            setFunction(x: i, y: 6, i % 2 == 0)
        }
        drawFinder(centreX: 3, centreY: 3)
        drawFinder(centreX: size - 4, centreY: 3)
        drawFinder(centreX: 3, centreY: size - 4)

        let positions = QRCode.alignmentPositions(version: version)
        let last = positions.count - 1
        for (i, y) in positions.enumerated() {
            for (j, x) in positions.enumerated() {
                // The three corners hold finder patterns.
                if (i == 0 && j == 0) || (i == 0 && j == last) || (i == last && j == 0) { continue }
                for dy in -2...2 {
                    for dx in -2...2 {
                        setFunction(x: x + dx, y: y + dy, Swift.max(abs(dx), abs(dy)) != 1)
                    }
                }
            }
        }

        // Reserve both copies of the format information; masks draw them later.
        for (x, y) in FunctionTemplate.formatPositions(size: size).first { setFunction(x: x, y: y, false) }
        for (x, y) in FunctionTemplate.formatPositions(size: size).second { setFunction(x: x, y: y, false) }
        setFunction(x: 8, y: size - 8, true)

        if version >= 7 {
            let bits = QRCode.versionBits(version: version)
            for i in 0..<18 {
                let dark = (bits >> i) & 1 != 0
                let a = size - 11 + i % 3
                let b = i / 3
                setFunction(x: a, y: b, dark)
                setFunction(x: b, y: a, dark)
            }
        }
    }

    private mutating func setFunction(x: Int, y: Int, _ dark: Bool) {
        modules.set(x: x, y: y, dark)
        isFunction.set(x: x, y: y, true)
    }

    private mutating func drawFinder(centreX: Int, centreY: Int) {
        let size = modules.size
        for dy in -4...4 {
            for dx in -4...4 {
                let x = centreX + dx, y = centreY + dy
                guard x >= 0, x < size, y >= 0, y < size else { continue }
                let distance = Swift.max(abs(dx), abs(dy))
                setFunction(x: x, y: y, distance != 2 && distance != 4)
            }
        }
    }

    /// Where format bit i (0 = least significant) goes, for both copies.
    static func formatPositions(size: Int) -> (first: [(Int, Int)], second: [(Int, Int)]) {
        var first: [(Int, Int)] = []
        for i in 0..<6 { first.append((8, i)) }
        first.append((8, 7))
        first.append((8, 8))
        first.append((7, 8))
        for i in 9..<15 { first.append((14 - i, 8)) }
        var second: [(Int, Int)] = []
        for i in 0..<8 { second.append((size - 1 - i, 8)) }
        for i in 8..<15 { second.append((8, size - 15 + i)) }
        return (first, second)
    }
}
