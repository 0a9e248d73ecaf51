/// A QR code symbol (ISO/IEC 18004 Model 2): an immutable square grid of dark and light modules
/// with its version, error correction level and mask.
///
/// Make one with the layered entry points, highest level first:
/// `encode(text:correction:)` and `encode(bytes:correction:)`, then
/// `encode(segments:correction:minVersion:maxVersion:mask:boostCorrection:)`. The symbol has no
/// quiet zone; renderers add it.
public struct QRCode: Sendable, Hashable {
    /// The version, 1...40.
    public let version: Version
    /// The error correction level actually used (it may be higher than requested when boosted).
    public let correction: ErrorCorrection
    /// The mask actually used.
    public let mask: Mask
    /// Modules as rows of bit sets: row y is words `y * wordsPerRow ..< (y + 1) * wordsPerRow`, bit x of
    /// the row is module x, 1 is dark.
    let rowWords: [UInt64]
    let wordsPerRow: Int

    /// The side of the symbol in modules, 21...177.
    public var size: Int { version.size }

    /// Whether the module at column `x`, row `y` is dark. Coordinates outside the symbol
    /// (including the quiet zone) read as light; nothing traps.
    public subscript(x x: Int, y y: Int) -> Bool {
        guard x >= 0, y >= 0, x < size, y < size else { return false }
        return rowWords[y * wordsPerRow + x >> 6] >> UInt64(x & 63) & 1 != 0
    }

    /// The modules as rows of booleans, `true` for dark; `size` rows of `size` modules.
    public var rows: [[Bool]] {
        (0..<size).map { y in (0..<size).map { x in self[x: x, y: y] } }
    }

    // MARK: - High level

    /// Encodes text at the given error correction level, picking the shortest mix of numeric,
    /// alphanumeric and byte (UTF-8) segments, the smallest version that fits, a boosted level
    /// and the automatic mask. Throws `emptyInput` for "" and `dataTooLong` (with the data bits
    /// and the capacity of version 40) when it does not fit.
    public static func encode(text: String, correction: ErrorCorrection = .medium) throws(QRCodeError) -> QRCode {
        try encode(text: text, correction: correction, minVersion: .min, maxVersion: .max, mask: nil, boostCorrection: true)
    }

    /// Encodes text as `encode(text:correction:)` does, within `minVersion...maxVersion`, with a
    /// fixed `mask` or automatic (nil), boosting the level only if `boostCorrection`. Segments
    /// are chosen per count-width class, so the version is the smallest that fits.
    /// Throws `emptyInput`, `invalidVersionRange` or `dataTooLong`.
    public static func encode(
        text: String, correction: ErrorCorrection, minVersion: Version, maxVersion: Version,
        mask: Mask?, boostCorrection: Bool
    ) throws(QRCodeError) -> QRCode {
        if text.isEmpty { throw .emptyInput }
        guard minVersion <= maxVersion else {
            throw .invalidVersionRange(min: minVersion.number, max: maxVersion.number)
        }
        // Count field widths differ in versions 1-9, 10-26 and 27-40: segment once per class,
        // skipping a class when even the cheapest mode for every character cannot fit it.
        var sixths = 0
        for c in text.utf8 {
            sixths += c >= 0x30 && c <= 0x39 ? 20 : (c < 128 && QRSegment.alphanumericCode[Int(c)] >= 0 ? 33 : 48)
        }
        let lowerBound = (sixths + 5) / 6
        var v = minVersion.number
        while true {
            let classStart = v <= 9 ? 1 : (v <= 26 ? 10 : 27)
            let classEnd = Swift.min(v <= 9 ? 9 : (v <= 26 ? 26 : 40), maxVersion.number)
            let capacity = dataCodewords(version: classEnd, level: correction) * 8
            if lowerBound <= capacity || classEnd == maxVersion.number {
                let segments = QRSegment.segments(for: text, version: classStart)
                let fits = QRSegment.totalBits(segments, version: classEnd).map { $0 <= capacity } ?? false
                if fits || classEnd == maxVersion.number {
                    return try encode(
                        segments: segments, correction: correction,
                        minVersion: Version(unchecked: v), maxVersion: Version(unchecked: classEnd),
                        mask: mask, boostCorrection: boostCorrection)
                }
            }
            v = classEnd + 1
        }
    }

    /// Encodes bytes as one byte segment at the given level, with the smallest version that
    /// fits, a boosted level and the automatic mask. Throws `emptyInput` for no bytes and
    /// `dataTooLong` beyond 2953 bytes at level L (fewer at higher levels).
    public static func encode(bytes: some Collection<UInt8>, correction: ErrorCorrection = .medium) throws(QRCodeError) -> QRCode {
        if bytes.isEmpty { throw .emptyInput }
        return try encode(segments: [QRSegment.bytes(bytes)], correction: correction)
    }

    // MARK: - Mid level

    /// Encodes segments with the smallest version in `minVersion...maxVersion` that holds them.
    /// With `boostCorrection` the level is raised to the highest that fits the same version.
    /// `mask` nil picks the mask with the lowest penalty (N1–N4), as Nayuki's generator does.
    /// Throws `emptyInput` when there is no segment with data, `invalidVersionRange` when
    /// `minVersion > maxVersion`, and `dataTooLong` with the data bits and the capacity of
    /// `maxVersion` when the segments do not fit.
    public static func encode(
        segments: [QRSegment], correction: ErrorCorrection,
        minVersion: Version = .min, maxVersion: Version = .max,
        mask: Mask? = nil, boostCorrection: Bool = true
    ) throws(QRCodeError) -> QRCode {
        guard segments.contains(where: { $0.mode != .eci }) else { throw .emptyInput }
        guard minVersion <= maxVersion else {
            throw .invalidVersionRange(min: minVersion.number, max: maxVersion.number)
        }
        var version = minVersion.number
        var usedBits: Int
        while true {
            let capacity = dataCodewords(version: version, level: correction) * 8
            let used = QRSegment.totalBits(segments, version: version)
            if let used, used <= capacity {
                usedBits = used
                break
            }
            if version >= maxVersion.number {
                throw .dataTooLong(dataBits: used, capacityBits: capacity, version: version)
            }
            version += 1
        }
        var level = correction
        if boostCorrection {
            for higher in [ErrorCorrection.medium, .quartile, .high]
            where higher.rawValue > level.rawValue && usedBits <= dataCodewords(version: version, level: higher) * 8 {
                level = higher
            }
        }

        let capacity = dataCodewords(version: version, level: level) * 8
        var bits = BitBuffer(reservingBits: capacity)
        for segment in segments {
            bits.append(segment.mode.indicator, bits: 4)
            bits.append(UInt64(segment.characterCount), bits: segment.mode.characterCountBits(version: version))
            bits.append(contentsOf: segment.data)
        }
        bits.append(0, bits: Swift.min(4, capacity - bits.count))
        bits.append(0, bits: (8 - bits.count % 8) % 8)
        var pad: UInt64 = 0xEC
        while bits.count < capacity {
            bits.append(pad, bits: 8)
            pad ^= 0xEC ^ 0x11
        }
        return QRCode(version: version, level: level, dataCodewords: bits.bytes, mask: mask)
    }

    // MARK: - Low level

    /// Builds the symbol from data codewords that already fill the capacity of `version` at
    /// `level`: adds ECC, interleaves, places the bits and masks.
    init(version v: Int, level: ErrorCorrection, dataCodewords: [UInt8], mask: Mask?) {
        let codewords = QRCode.addECCAndInterleave(dataCodewords, version: v, level: level)
        var template = FunctionTemplate(version: v)
        QRCode.place(codewords, into: &template)
        let stride = template.modules.stride
        let chosen: Int
        let words: [UInt64]
        switch stride {
        case 1: (chosen, words) = QRCode.finish(Line64.self, template, level: level, mask: mask?.number)
        case 2: (chosen, words) = QRCode.finish(Line128.self, template, level: level, mask: mask?.number)
        default: (chosen, words) = QRCode.finish(Line192.self, template, level: level, mask: mask?.number)
        }
        self.version = Version(unchecked: v)
        self.correction = level
        self.mask = Mask(unchecked: chosen)
        self.rowWords = words
        self.wordsPerRow = stride
    }

    /// Splits data into blocks, appends each block's Reed–Solomon codewords and interleaves.
    static func addECCAndInterleave(_ data: [UInt8], version v: Int, level: ErrorCorrection) -> [UInt8] {
        let blockCount = errorCorrectionBlocks[level.rawValue][v]
        let eccLength = eccCodewordsPerBlock[level.rawValue][v]
        let raw = rawDataModules(version: v) / 8
        let shortBlocks = blockCount - raw % blockCount
        let shortLength = raw / blockCount
        let shortData = shortLength - eccLength
        let generatorLogs = ReedSolomon.generator(degree: eccLength).map { GF256.log[Int($0)] }

        var ecc = [UInt8](repeating: 0, count: blockCount * eccLength)
        var result = [UInt8](repeating: 0, count: raw)
        data.withUnsafeBufferPointer { data in
            ecc.withUnsafeMutableBufferPointer { ecc in
                var start = 0
                for b in 0..<blockCount {
                    let length = shortData + (b < shortBlocks ? 0 : 1)
                    ReedSolomon.remainder(
                        UnsafeBufferPointer(rebasing: data[start..<start + length]),
                        generatorLogs: generatorLogs,
                        into: UnsafeMutableBufferPointer(rebasing: ecc[b * eccLength..<(b + 1) * eccLength]))
                    start += length
                }
            }
            // Interleave: data codeword i of every block (long blocks have one more), then ECC.
            var k = 0
            for i in 0...shortData {
                var start = 0
                for b in 0..<blockCount {
                    let length = shortData + (b < shortBlocks ? 0 : 1)
                    if i < length {
                        result[k] = data[start + i]
                        k += 1
                    }
                    start += length
                }
            }
            for i in 0..<eccLength {
                for b in 0..<blockCount {
                    result[k] = ecc[b * eccLength + i]
                    k += 1
                }
            }
        }
        return result
    }

    /// Places codeword bits in the zigzag order of the standard, skipping function modules.
    /// Remainder bits stay light.
    static func place(_ codewords: [UInt8], into template: inout FunctionTemplate) {
        let size = template.modules.size
        let stride = template.modules.stride
        let total = codewords.count * 8
        let function = template.isFunction.rows
        function.withUnsafeBufferPointer { function in
            codewords.withUnsafeBufferPointer { codewords in
                template.modules.rows.withUnsafeMutableBufferPointer { rows in
                    template.modules.cols.withUnsafeMutableBufferPointer { cols in
                        var i = 0
                        var right = size - 1
                        while right >= 1 {
                            if right == 6 { right = 5 }
                            let upward = (right + 1) & 2 == 0
                            for vertical in 0..<size {
                                let y = upward ? size - 1 - vertical : vertical
                                var x = right
                                for _ in 0..<2 {
                                    let isFunction = function[y * stride + x >> 6] >> UInt64(x & 63) & 1 != 0
                                    if !isFunction && i < total {
                                        if codewords[i >> 3] >> UInt8(7 - (i & 7)) & 1 != 0 {
                                            rows[y * stride + x >> 6] |= 1 << UInt64(x & 63)
                                            cols[x * stride + y >> 6] |= 1 << UInt64(y & 63)
                                        }
                                        i += 1
                                    }
                                    x -= 1
                                }
                            }
                            right -= 2
                        }
                    }
                }
            }
        }
    }

    /// Masks the placed symbol (fixed mask, or each of the 8 scored) and returns the mask and the
    /// final rows.
    static func finish<L: BitLine>(
        _ line: L.Type, _ template: FunctionTemplate, level: ErrorCorrection, mask: Int?
    ) -> (Int, [UInt64]) {
        let size = template.modules.size
        let stride = L.wordCount
        let count = size * stride
        // Maskable modules: not function modules, and inside the symbol.
        var lineMaskWords = [UInt64](repeating: 0, count: stride)
        var pairMaskWords = [UInt64](repeating: 0, count: stride)
        for i in 0..<size { lineMaskWords[i >> 6] |= 1 << UInt64(i & 63) }
        for i in 0..<(size - 1) { pairMaskWords[i >> 6] |= 1 << UInt64(i & 63) }
        var dataRows = template.isFunction.rows
        var dataCols = template.isFunction.cols
        for i in 0..<count {
            dataRows[i] = ~dataRows[i] & lineMaskWords[i % stride]
            dataCols[i] = ~dataCols[i] & lineMaskWords[i % stride]
        }
        let pairMask = pairMaskWords.withUnsafeBufferPointer { L($0.baseAddress!) }

        var rows = [UInt64](repeating: 0, count: count)
        var cols = [UInt64](repeating: 0, count: count)
        var chosen = mask ?? 0
        dataRows.withUnsafeBufferPointer { dr in
            dataCols.withUnsafeBufferPointer { dc in
                rows.withUnsafeMutableBufferPointer { rows in
                    cols.withUnsafeMutableBufferPointer { cols in
                        if mask == nil {
                            var best = Int.max
                            for m in 0..<8 {
                                MaskScoring.apply(
                                    L.self, mask: m, formatBits: formatBits(level: level, mask: m), size: size,
                                    base: template.modules, dataRows: dr.baseAddress!, dataCols: dc.baseAddress!,
                                    rowsOut: rows.baseAddress!, colsOut: cols.baseAddress!)
                                let score = MaskScoring.penalty(
                                    L.self, size: size, rows: rows.baseAddress!, cols: cols.baseAddress!,
                                    pairMask: pairMask)
                                if score < best {
                                    best = score
                                    chosen = m
                                }
                            }
                        }
                        MaskScoring.apply(
                            L.self, mask: chosen, formatBits: formatBits(level: level, mask: chosen), size: size,
                            base: template.modules, dataRows: dr.baseAddress!, dataCols: dc.baseAddress!,
                            rowsOut: rows.baseAddress!, colsOut: cols.baseAddress!)
                    }
                }
            }
        }
        return (chosen, rows)
    }
}
