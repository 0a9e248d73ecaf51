import QRCode

extension QRCode {
    /// A PNG image of the symbol: 1-bit greyscale, black modules on white, `scale` pixels per
    /// module (1...64, default 8) and a quiet zone of `quietZone` modules (0...64, default 4).
    /// Throws `QRRenderError` when either is out of range.
    ///
    /// The image data is zlib with stored (uncompressed) deflate blocks, checked with our own
    /// CRC-32 and Adler-32, so the package needs no system zlib: `qrlogin serve` runs with
    /// nothing installed. A 1-bit image stays small without compression (a version 40 symbol
    /// at scale 8 is about 270 kB).
    public func png(scale: Int = 8, quietZone: Int = 4) throws(QRRenderError) -> [UInt8] {
        try QRRenderLimits.check(scale: scale)
        try QRRenderLimits.check(quietZone: quietZone)
        let side = (size + 2 * quietZone) * scale
        let rowBytes = (side + 7) / 8

        // Raw scanlines: filter type 0, then pixels, 1 = white.
        var raw = [UInt8]()
        raw.reserveCapacity((rowBytes + 1) * side)
        var line = [UInt8](repeating: 0, count: rowBytes)
        for moduleY in -quietZone..<(size + quietZone) {
            for i in 0..<rowBytes { line[i] = 0xFF }
            for moduleX in 0..<size where self[x: moduleX, y: moduleY] {
                let start = (moduleX + quietZone) * scale
                for px in start..<(start + scale) { line[px >> 3] &= ~(0x80 >> UInt8(px & 7)) }
            }
            // Pad bits after the last pixel are ignored by readers; keep them zero.
            if side % 8 != 0 { line[rowBytes - 1] &= ~(0xFF >> UInt8(side % 8)) }
            for _ in 0..<scale {
                raw.append(0)
                raw.append(contentsOf: line)
            }
        }

        var out: [UInt8] = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]
        var header = [UInt8]()
        PNG.appendBigEndian(UInt32(side), to: &header)
        PNG.appendBigEndian(UInt32(side), to: &header)
        header += [1, 0, 0, 0, 0]  // bit depth 1, greyscale, deflate, filter 0, no interlace
        PNG.appendChunk("IHDR", header, to: &out)
        PNG.appendChunk("IDAT", PNG.zlibStored(raw), to: &out)
        PNG.appendChunk("IEND", [], to: &out)
        return out
    }
}

/// PNG container helpers: chunks, CRC-32, and zlib streams of stored deflate blocks.
enum PNG {
    /// CRC-32 (ISO 3309, polynomial 0xEDB88320 reflected), table-driven.
    static let crcTable: [UInt32] = (0..<256).map { n in
        var c = UInt32(n)
        for _ in 0..<8 { c = c & 1 != 0 ? 0xEDB8_8320 ^ (c >> 1) : c >> 1 }
        return c
    }

    static func crc32<S: Sequence<UInt8>>(_ bytes: S, initial: UInt32 = 0) -> UInt32 {
        var c = ~initial
        for b in bytes { c = crcTable[Int((c ^ UInt32(b)) & 0xFF)] ^ (c >> 8) }
        return ~c
    }

    /// Adler-32 of `bytes`, reducing modulo 65521 every 5552 bytes as zlib does.
    static func adler32(_ bytes: [UInt8]) -> UInt32 {
        var a: UInt32 = 1, b: UInt32 = 0
        var i = 0
        while i < bytes.count {
            let end = min(i + 5552, bytes.count)
            while i < end {
                a += UInt32(bytes[i])
                b += a
                i += 1
            }
            a %= 65521
            b %= 65521
        }
        return b << 16 | a
    }

    /// A zlib stream holding `data` in stored deflate blocks of at most 65535 bytes.
    static func zlibStored(_ data: [UInt8]) -> [UInt8] {
        var out: [UInt8] = [0x78, 0x01]
        out.reserveCapacity(data.count + data.count / 65535 * 5 + 16)
        var start = 0
        repeat {
            let length = min(65535, data.count - start)
            let final: UInt8 = start + length == data.count ? 1 : 0
            out.append(final)  // BFINAL, BTYPE = 00 (stored)
            out.append(UInt8(length & 0xFF))
            out.append(UInt8(length >> 8))
            out.append(UInt8(~length & 0xFF))
            out.append(UInt8((~length >> 8) & 0xFF))
            out.append(contentsOf: data[start..<(start + length)])
            start += length
        } while start < data.count
        appendBigEndian(adler32(data), to: &out)
        return out
    }

    static func appendBigEndian(_ value: UInt32, to out: inout [UInt8]) {
        out += [UInt8(value >> 24), UInt8((value >> 16) & 0xFF), UInt8((value >> 8) & 0xFF), UInt8(value & 0xFF)]
    }

    static func appendChunk(_ type: String, _ data: [UInt8], to out: inout [UInt8]) {
        appendBigEndian(UInt32(data.count), to: &out)
        let typeBytes = Array(type.utf8)
        out += typeBytes
        out += data
        appendBigEndian(crc32(data, initial: crc32(typeBytes)), to: &out)
    }
}
