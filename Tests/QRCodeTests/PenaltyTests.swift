import Testing
@testable import QRCode

/// The bit-set penalty scorer against a module-by-module transcription of the rules
/// (Nayuki's `getPenaltyScore`), on matrices built from runs so that finder-like patterns
/// at scales 1 to 4 occur often.
@Suite("Mask penalty")
struct PenaltyTests {
    static func naivePenalty(_ m: [[Bool]]) -> Int {
        let size = m.count
        var result = 0
        func lineScore(_ line: [Bool]) -> Int {
            var score = 0
            var runColor = false
            var runLength = 0
            var history = [Int](repeating: 0, count: 7)
            func add(_ length: Int) {
                var length = length
                if history[0] == 0 { length += size }
                history.removeLast()
                history.insert(length, at: 0)
            }
            func count() -> Int {
                let n = history[1]
                let core = n > 0 && history[2] == n && history[3] == n * 3 && history[4] == n && history[5] == n
                return (core && history[0] >= n * 4 && history[6] >= n ? 1 : 0)
                    + (core && history[6] >= n * 4 && history[0] >= n ? 1 : 0)
            }
            for module in line {
                if module == runColor {
                    runLength += 1
                    if runLength == 5 { score += 3 } else if runLength > 5 { score += 1 }
                } else {
                    add(runLength)
                    if !runColor { score += count() * 40 }
                    runColor = module
                    runLength = 1
                }
            }
            if runColor {
                add(runLength)
                runLength = 0
            }
            runLength += size
            add(runLength)
            return score + count() * 40
        }
        for y in 0..<size { result += lineScore(m[y]) }
        for x in 0..<size { result += lineScore((0..<size).map { m[$0][x] }) }
        for y in 0..<(size - 1) {
            for x in 0..<(size - 1) where m[y][x] == m[y][x + 1] && m[y][x] == m[y + 1][x] && m[y][x] == m[y + 1][x + 1] {
                result += 3
            }
        }
        let dark = m.reduce(0) { $0 + $1.filter { $0 }.count }
        let total = size * size
        let k = (abs(dark * 20 - total * 10) + total - 1) / total - 1
        return result + k * 10
    }

    static func fastPenalty(_ m: [[Bool]]) -> Int {
        let size = m.count
        var matrix = BitMatrix(size: size)
        for y in 0..<size { for x in 0..<size where m[y][x] { matrix.set(x: x, y: y, true) } }
        var pair = [UInt64](repeating: 0, count: matrix.stride)
        for i in 0..<(size - 1) { pair[i >> 6] |= 1 << UInt64(i & 63) }
        func score<L: BitLine>(_: L.Type) -> Int {
            matrix.rows.withUnsafeBufferPointer { rows in
                matrix.cols.withUnsafeBufferPointer { cols in
                    pair.withUnsafeBufferPointer { pair in
                        MaskScoring.penalty(L.self, size: size, rows: rows.baseAddress!, cols: cols.baseAddress!,
                                            pairMask: L(pair.baseAddress!))
                    }
                }
            }
        }
        switch matrix.stride {
        case 1: return score(Line64.self)
        case 2: return score(Line128.self)
        default: return score(Line192.self)
        }
    }

    static func runMatrix(size: Int, generator: inout SplitMix64) -> [[Bool]] {
        let runs = [1, 1, 1, 1, 2, 2, 3, 3, 4, 6, 8, 9, 12]
        var rows: [[Bool]] = []
        for _ in 0..<size {
            var line: [Bool] = []
            var color = generator.next() & 1 == 0
            while line.count < size {
                let length = runs[Int(generator.next() % UInt64(runs.count))]
                line.append(contentsOf: repeatElement(color, count: length))
                color.toggle()
            }
            rows.append(Array(line.prefix(size)))
        }
        // Mix in some columns built the same way, so columns also get patterns.
        for x in 0..<size where generator.next() % 3 == 0 {
            var y = 0
            var color = generator.next() & 1 == 0
            while y < size {
                let length = runs[Int(generator.next() % UInt64(runs.count))]
                for yy in y..<min(size, y + length) { rows[yy][x] = color }
                y += length
                color.toggle()
            }
        }
        return rows
    }

    @Test(arguments: [21, 25, 45, 61, 65, 101, 125, 129, 157, 177])
    func matchesReference(size: Int) {
        var generator = SplitMix64(seed: UInt64(size))
        for _ in 0..<12 {
            let m = Self.runMatrix(size: size, generator: &generator)
            #expect(Self.fastPenalty(m) == Self.naivePenalty(m))
        }
    }

    /// Line by line, over many random lines of every width class: the bit-set N1 + N3 score
    /// equals N1 by the reference plus N3 counted run by run. Patterns near both ends included.
    @Test(arguments: [21, 33, 61, 65, 97, 125, 129, 177])
    func linesMatchRunScan(size: Int) {
        var generator = SplitMix64(seed: UInt64(size) * 31)
        let runs = [1, 1, 1, 1, 2, 2, 3, 3, 4, 6, 8, 9, 12]
        var pair = [UInt64](repeating: 0, count: 3)
        for i in 0..<(size - 1) { pair[i >> 6] |= 1 << UInt64(i & 63) }
        for _ in 0..<3000 {
            var line: [Bool] = []
            var color = generator.next() & 1 == 0
            while line.count < size {
                line.append(contentsOf: repeatElement(color, count: runs[Int(generator.next() % UInt64(runs.count))]))
                color.toggle()
            }
            line = Array(line.prefix(size))
            var words = [UInt64](repeating: 0, count: 3)
            for (i, dark) in line.enumerated() where dark { words[i >> 6] |= 1 << UInt64(i & 63) }
            // N1 alone, from the reference on a matrix whose other lines are empty, is awkward;
            // compute it directly from runs instead.
            var n1 = 0, run = 1
            for i in 1...size {
                if i < size && line[i] == line[i - 1] { run += 1 } else { n1 += run >= 5 ? run - 2 : 0; run = 1 }
            }
            func check<L: BitLine>(_: L.Type) {
                let fast = words.withUnsafeBufferPointer { w in
                    pair.withUnsafeBufferPointer { p in
                        MaskScoring.linePenalty(L(w.baseAddress!), size: size, pairMask: L(p.baseAddress!))
                    }
                }
                let byRuns = words.withUnsafeBufferPointer { w in
                    MaskScoring.finderPatternsByRuns(L(w.baseAddress!), size: size)
                }
                #expect(fast == n1 + 40 * byRuns, "\(String(line.map { $0 ? "#" : "." }))")
            }
            switch (size + 63) >> 6 {
            case 1: check(Line64.self)
            case 2: check(Line128.self)
            default: check(Line192.self)
            }
        }
    }

    @Test func scaledFinderPatternsCount() {
        // Scale 2 pattern in row 0 with light all around: counted twice (both sides >= 4n).
        let size = 29
        var m = [[Bool]](repeating: [Bool](repeating: false, count: size), count: size)
        for x in [8, 9, 12, 13, 14, 15, 16, 17, 20, 21] { m[0][x] = true }
        #expect(Self.fastPenalty(m) == Self.naivePenalty(m))
    }

    @Test func symbolsScoreLikeReference() throws {
        for text in ["01234567", "https://login.example.com/q/0123456789abcdefghijklmnopqrstuv", String(repeating: "x", count: 300)] {
            for mask in QRCode.Mask.all {
                let code = try QRCode.encode(text: text, correction: .medium, minVersion: .min, maxVersion: .max,
                                             mask: mask, boostCorrection: false)
                #expect(Self.fastPenalty(code.rows) == Self.naivePenalty(code.rows))
            }
        }
    }
}
