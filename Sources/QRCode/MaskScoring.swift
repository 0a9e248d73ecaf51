/// Mask patterns and the penalty rules N1–N4, computed on whole rows and columns as bit sets.
///
/// The scores equal Nayuki's `getPenaltyScore` exactly, so the automatic mask choice is the same:
/// N1 adds 3 + (length - 5) for each run of 5 or more same-coloured modules in a row or column;
/// N2 adds 3 for each 2 × 2 block of one colour; N3 adds 40 for each 1:1:3:1:1 finder-like
/// pattern (at any scale n) with 4n light modules on one side and n on the other, the area
/// outside the symbol counting as light (a pattern with 4n light on both sides counts twice);
/// N4 adds 10 for each 5% by which the dark share departs from 50%.
enum MaskScoring {
    static let n1 = 3, n2 = 3, n3 = 40, n4 = 10

    /// Whether mask `mask` inverts module (x, y).
    @inline(__always)
    static func inverts(mask: Int, x: Int, y: Int) -> Bool {
        switch mask {
        case 0: return (x + y) % 2 == 0
        case 1: return y % 2 == 0
        case 2: return x % 3 == 0
        case 3: return (x + y) % 3 == 0
        case 4: return (x / 3 + y / 2) % 2 == 0
        case 5: return x * y % 2 + x * y % 3 == 0
        case 6: return (x * y % 2 + x * y % 3) % 2 == 0
        default: return ((x + y) % 2 + x * y % 3) % 2 == 0
        }
    }

    /// Every mask depends on the other coordinate only modulo 12, so 12 lines per mask suffice.
    static let period = 12

    /// Row patterns: words [(mask * 12 + y % 12) * 3 ..< +3] hold the bits over x for row y.
    static let rowPatterns: [UInt64] = patterns(transposed: false)
    /// Column patterns: words [(mask * 12 + x % 12) * 3 ..< +3] hold the bits over y for column x.
    static let columnPatterns: [UInt64] = patterns(transposed: true)

    private static func patterns(transposed: Bool) -> [UInt64] {
        var words = [UInt64](repeating: 0, count: 8 * period * 3)
        for mask in 0..<8 {
            for phase in 0..<period {
                for i in 0..<192 {
                    let hit = transposed
                        ? inverts(mask: mask, x: phase, y: i)
                        : inverts(mask: mask, x: i, y: phase)
                    if hit { words[(mask * period + phase) * 3 + i >> 6] |= 1 << UInt64(i & 63) }
                }
            }
        }
        return words
    }

    /// Writes the symbol with `mask` applied and its format bits drawn into `rowsOut` and
    /// `colsOut` (as rows and as columns). `dataRows`/`dataCols` mark the maskable modules.
    static func apply<L: BitLine>(
        _: L.Type, mask: Int, formatBits: Int, size: Int,
        base: BitMatrix, dataRows: UnsafePointer<UInt64>, dataCols: UnsafePointer<UInt64>,
        rowsOut: UnsafeMutablePointer<UInt64>, colsOut: UnsafeMutablePointer<UInt64>
    ) {
        let stride = L.wordCount
        base.rows.withUnsafeBufferPointer { baseRows in
            base.cols.withUnsafeBufferPointer { baseCols in
                rowPatterns.withUnsafeBufferPointer { rp in
                    columnPatterns.withUnsafeBufferPointer { cp in
                        var phase = 0
                        for i in 0..<size {
                            let o = i * stride
                            let p = (mask * period + phase) * 3
                            let row = L(baseRows.baseAddress! + o) ^ (L(rp.baseAddress! + p) & L(dataRows + o))
                            row.store(rowsOut + o)
                            let col = L(baseCols.baseAddress! + o) ^ (L(cp.baseAddress! + p) & L(dataCols + o))
                            col.store(colsOut + o)
                            phase = phase == period - 1 ? 0 : phase + 1
                        }
                    }
                }
            }
        }
        drawFormat(formatBits, size: size, stride: stride, rows: rowsOut, cols: colsOut)
    }

    /// ORs the 15 format bits (both copies) into the rows and columns; the base leaves them light.
    @inline(__always)
    static func drawFormat(
        _ bits: Int, size: Int, stride: Int,
        rows: UnsafeMutablePointer<UInt64>, cols: UnsafeMutablePointer<UInt64>
    ) {
        @inline(__always) func dark(_ x: Int, _ y: Int) {
            rows[y * stride + x >> 6] |= 1 << UInt64(x & 63)
            cols[x * stride + y >> 6] |= 1 << UInt64(y & 63)
        }
        for i in 0..<15 where (bits >> i) & 1 != 0 {
            // First copy, around the top-left finder.
            switch i {
            case 0..<6: dark(8, i)
            case 6: dark(8, 7)
            case 7: dark(8, 8)
            case 8: dark(7, 8)
            default: dark(14 - i, 8)
            }
            // Second copy, split between the top-right and bottom-left finders.
            if i < 8 { dark(size - 1 - i, 8) } else { dark(8, size - 15 + i) }
        }
    }

    /// The penalty score of a masked symbol given as rows and columns.
    static func penalty<L: BitLine>(
        _: L.Type, size: Int, rows: UnsafePointer<UInt64>, cols: UnsafePointer<UInt64>,
        pairMask: L
    ) -> Int {
        let stride = L.wordCount
        var score = 0
        var dark = 0
        var blocks = 0
        var previous = L(rows)
        for y in 0..<size {
            let r = L(rows + y * stride)
            score += linePenalty(r, size: size, pairMask: pairMask)
            dark += r.popcount
            if y > 0 {
                // 2 × 2 blocks: equal vertically in both columns, and equal horizontally.
                let vertical = ~(previous ^ r)
                blocks += (vertical & vertical.down(1) & ~(r ^ r.down(1)) & pairMask).popcount
            }
            previous = r
        }
        for x in 0..<size {
            score += linePenalty(L(cols + x * stride), size: size, pairMask: pairMask)
        }
        score += blocks * n2
        let total = size * size
        let k = (abs(dark * 20 - total * 10) + total - 1) / total - 1
        return score + k * n4
    }

    /// N1 and N3 for one line. `pairMask` has bits 0..<size-1 set.
    @inline(__always)
    static func linePenalty<L: BitLine>(_ r: L, size: Int, pairMask: L) -> Int {
        // N1: e marks x where modules x and x+1 match; w marks the start of 5 equal modules.
        // A run of length n >= 5 has n - 4 such starts and one first start: (n - 4) + 2 = n - 2.
        let e = ~(r ^ r.down(1)) & pairMask
        let w = e & e.down(1) & e.down(2) & e.down(3)
        let score = w.popcount + 2 * (w & ~w.up(1)).popcount

        // Bits beyond the line are zero in r, so light (~r) is one there, as N3 requires; the
        // *Ones shifts bring in light from beyond both ends. dK/lK: K dark/light from x upwards;
        // uK: K light from x downwards. Windows are only shifted away from the end they were
        // built towards, so a window that straddles the symbol's edge is never filled in whole.
        let light = ~r
        let d2 = r & r.down(1)
        let d4 = d2 & d2.down(2)
        let d8 = d4 & d4.down(4)
        let d9 = d8 & r.down(8)
        let l2 = light & light.downOnes(1)
        let l3 = l2 & light.downOnes(2)
        let u2 = light & light.upOnes(1)
        let u3 = u2 & light.upOnes(2)
        // A pattern at scale n >= 3 has 3 light then 9 dark modules, and 9 dark then 3 light.
        // Only lines with both are scanned run by run; the rest count scales 1 and 2 here.
        if !d9.isZero, !(d9 & u3.upOnes(1)).isZero, !(d9 & l3.downOnes(9)).isZero {
            return score + n3 * finderPatternsByRuns(r, size: size)
        }
        var patterns = 0
        // Scale 1: light, d l ddd l d, light; then 3 more light before, or 3 more after.
        let d3 = d2 & r.down(2)
        let core1 = r & light.downOnes(1) & d3.down(2) & light.downOnes(5) & r.down(6)
            & light.downOnes(7) & light.upOnes(1)
        if !core1.isZero {
            patterns += (core1 & u3.upOnes(2)).popcount + (core1 & l3.downOnes(8)).popcount
        }
        // Scale 2: ll, dd ll dddddd ll dd, ll; then 6 more light before, or 6 more after.
        let d6 = d4 & d2.down(4)
        let core2 = d2 & l2.downOnes(2) & d6.down(4) & l2.downOnes(10) & d2.down(12)
            & u2.upOnes(1) & l2.downOnes(14)
        if !core2.isZero {
            let l6 = l3 & l3.downOnes(3)
            let u6 = u3 & u3.upOnes(3)
            patterns += (core2 & u6.upOnes(3)).popcount + (core2 & l6.downOnes(16)).popcount
        }
        return score + n3 * patterns
    }

    /// N3 pattern count by run lengths, as in Nayuki's reference, for lines that may hold a
    /// pattern at a scale above 1.
    static func finderPatternsByRuns<L: BitLine>(_ r: L, size: Int) -> Int {
        var words: (UInt64, UInt64, UInt64) = (0, 0, 0)
        withUnsafeMutableBytes(of: &words) { raw in
            r.store(raw.baseAddress!.assumingMemoryBound(to: UInt64.self))
        }
        var history = (0, 0, 0, 0, 0, 0, 0)
        var count = 0
        func add(_ length: Int) {
            let run = history.0 == 0 ? length + size : length
            history = (run, history.0, history.1, history.2, history.3, history.4, history.5)
        }
        func patterns() -> Int {
            let n = history.1
            let core = n > 0 && history.2 == n && history.3 == n * 3 && history.4 == n && history.5 == n
            return (core && history.0 >= n * 4 && history.6 >= n ? 1 : 0)
                + (core && history.6 >= n * 4 && history.0 >= n ? 1 : 0)
        }
        func module(_ x: Int) -> Bool {
            let word = x < 64 ? words.0 : (x < 128 ? words.1 : words.2)
            return word >> UInt64(x & 63) & 1 != 0
        }
        var runColor = false
        var runLength = 0
        for x in 0..<size {
            let m = module(x)
            if m == runColor {
                runLength += 1
            } else {
                add(runLength)
                if !runColor { count += patterns() }
                runColor = m
                runLength = 1
            }
        }
        if runColor {
            add(runLength)
            runLength = 0
        }
        add(runLength + size)
        return count + patterns()
    }
}
