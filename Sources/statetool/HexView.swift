import StateStream

/// The hex view around a first difference: shared bytes, then each side's
/// bytes with `^^` under those that differ.
enum HexView {
    static let width = 16

    static func rows(_ comparison: PayloadComparison) -> [String] {
        var rows: [String] = []
        var offset = comparison.contextOffset
        for line in stride(from: 0, to: comparison.contextBefore.count, by: width) {
            let bytes = comparison.contextBefore[line..<min(line + width, comparison.contextBefore.count)]
            rows.append("  =" + TextFormat.padded(offset, to: 12) + "  " + bytes.hexString(separator: " "))
            offset += UInt64(bytes.count)
        }
        let a = comparison.contextA, b = comparison.contextB
        for line in stride(from: 0, to: max(a.count, b.count), by: width) {
            let rowA = a.dropFirst(line).prefix(width), rowB = b.dropFirst(line).prefix(width)
            rows.append("  a" + TextFormat.padded(offset, to: 12) + "  " + rowA.hexString(separator: " "))
            rows.append("  b" + TextFormat.padded(offset, to: 12) + "  " + rowB.hexString(separator: " "))
            let marks = (0..<max(rowA.count, rowB.count)).map { index in
                index < rowA.count && index < rowB.count && rowA[rowA.startIndex + index] == rowB[rowB.startIndex + index] ? "  " : "^^"
            }
            var markRow = String(repeating: " ", count: 17) + marks.joined(separator: " ")
            while markRow.last == " " { markRow.removeLast() }
            rows.append(markRow)
            offset += UInt64(width)
        }
        return rows
    }
}
