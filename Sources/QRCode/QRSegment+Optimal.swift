extension QRSegment {
    /// The shortest sequence of numeric, alphanumeric and byte segments for `text` at `version`
    /// (1...40; only the count-width class matters: 1-9, 10-26, 27-40). Byte segments hold
    /// UTF-8. The result is never longer than one byte segment holding the whole text: a mixed
    /// stream is only returned when it is strictly shorter. Returns `[]` for an empty text.
    public static func segments(for text: String, version: Int = 1) -> [QRSegment] {
        let utf8 = Array(text.utf8)
        if utf8.isEmpty { return [] }
        let single = bytes(utf8)
        let optimal = optimalSegments(utf8, version: version)
        guard let optimalBits = totalBits(optimal, version: version) else { return [single] }
        if let singleBits = totalBits([single], version: version), singleBits <= optimalBits {
            return [single]
        }
        return optimal
    }

    /// Dynamic programming over the UTF-8 bytes; mode 0 is byte, 1 alphanumeric, 2 numeric.
    /// Costs are in sixths of a bit so that numeric (10 bits per 3) and alphanumeric (11 bits
    /// per 2) are exact; a segment's cost is rounded up to whole bits when it ends, which is its
    /// real length. Working on bytes keeps multi-byte characters whole: their bytes are never
    /// digits or alphanumerics, so they always fall in one byte segment.
    private static func optimalSegments(_ utf8: [UInt8], version: Int) -> [QRSegment] {
        let n = utf8.count
        let headByte = (4 + Mode.byte.characterCountBits(version: version)) * 6
        let headAlpha = (4 + Mode.alphanumeric.characterCountBits(version: version)) * 6
        let headNumeric = (4 + Mode.numeric.characterCountBits(version: version)) * 6
        let unreachable = Int.max / 4
        // from[i * 3 + m]: the mode of byte i, given that the stream is in mode m after byte i.
        var from = [UInt8](repeating: 0, count: n * 3)
        var byteCost = headByte, alphaCost = headAlpha, numericCost = headNumeric
        from.withUnsafeMutableBufferPointer { from in
            alphanumericCode.withUnsafeBufferPointer { code in
                for i in 0..<n {
                    let c = utf8[i]
                    var b = byteCost + 48, a = unreachable, d = unreachable
                    var fromB: UInt8 = 0, fromA: UInt8 = 1, fromD: UInt8 = 2
                    if code[Int(c)] >= 0 { a = alphaCost + 33 }
                    if c >= 0x30 && c <= 0x39 { d = numericCost + 20 }
                    // End the cheapest segment after this byte (ties to the lower mode) and
                    // start another; taken only when strictly cheaper than continuing.
                    var end = (b + 5) / 6 * 6, endMode: UInt8 = 0
                    if a < unreachable, (a + 5) / 6 * 6 < end { end = (a + 5) / 6 * 6; endMode = 1 }
                    if d < unreachable, (d + 5) / 6 * 6 < end { end = (d + 5) / 6 * 6; endMode = 2 }
                    if end + headByte < b { b = end + headByte; fromB = endMode }
                    if end + headAlpha < a { a = end + headAlpha; fromA = endMode }
                    if end + headNumeric < d { d = end + headNumeric; fromD = endMode }
                    from[i * 3] = fromB
                    from[i * 3 + 1] = fromA
                    from[i * 3 + 2] = fromD
                    byteCost = b
                    alphaCost = a
                    numericCost = d
                }
            }
        }
        var mode: UInt8 = 0
        if alphaCost < byteCost { mode = 1 }
        if numericCost < (mode == 0 ? byteCost : alphaCost) { mode = 2 }
        var modes = [UInt8](repeating: 0, count: n)
        for i in stride(from: n - 1, through: 0, by: -1) {
            mode = from[i * 3 + Int(mode)]
            modes[i] = mode
        }

        var result: [QRSegment] = []
        var start = 0
        while start < n {
            var end = start + 1
            while end < n && modes[end] == modes[start] { end += 1 }
            let part = utf8[start..<end]
            switch modes[start] {
            case 0: result.append(bytes(part))
            case 1: result.append(alphanumeric(validText: part))
            default: result.append(numeric(validDigits: part))
            }
            start = end
        }
        return result
    }
}
