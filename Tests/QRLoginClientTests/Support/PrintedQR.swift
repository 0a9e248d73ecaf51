import Foundation
import QRCode

/// A QR code that `qrlogin login` printed with half blocks, and the url line beneath it.
struct PrintedQR {
    /// The symbol's modules (quiet zone removed), `true` for dark.
    let modules: [[Bool]]
    /// The line printed under the code.
    let urlLine: String

    /// Whether the modules are exactly those of the QR code of `text` (as `login` encodes it):
    /// the encoder is deterministic, so the same matrix means the code carries `text`.
    func encodes(_ text: String) -> Bool {
        (try? QRCode.encode(text: text, correction: .low).rows) == modules
    }

    /// Every code in `output`, in order. Output to a pipe has no colours, so a dark module is
    /// drawn: `█` both halves, `▀` the top one, `▄` the bottom one, a space neither.
    static func all(in output: String) -> [PrintedQR] {
        let lines = output.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        let blocks: Set<Character> = ["\u{2588}", "\u{2580}", "\u{2584}"]
        func isCodeLine(_ line: String) -> Bool {
            line.contains(where: blocks.contains) && line.allSatisfy { $0 == " " || blocks.contains($0) }
        }
        var found: [PrintedQR] = []
        var index = 0
        while index < lines.count {
            guard isCodeLine(lines[index]) else { index += 1; continue }
            var grid: [[Bool]] = []
            while index < lines.count, isCodeLine(lines[index]) {
                let characters = Array(lines[index])
                grid.append(characters.map { $0 == "\u{2588}" || $0 == "\u{2580}" })
                grid.append(characters.map { $0 == "\u{2588}" || $0 == "\u{2584}" })
                index += 1
            }
            // The finder patterns sit in three corners, so the dark modules' bounding box is the symbol.
            let darkRows = grid.indices.filter { grid[$0].contains(true) }
            let darkColumns = grid.flatMap { row in row.indices.filter { row[$0] } }
            guard let top = darkRows.first, let left = darkColumns.min() else { continue }
            let size = (darkColumns.max() ?? left) - left + 1
            let modules = (top..<min(top + size, grid.count)).map { y in
                (left..<(left + size)).map { x in x < grid[y].count && grid[y][x] }
            }
            let urlLine = lines[index...].first { !$0.trimmingCharacters(in: .whitespaces).isEmpty } ?? ""
            found.append(PrintedQR(modules: modules, urlLine: urlLine.trimmingCharacters(in: .whitespaces)))
        }
        return found
    }
}
