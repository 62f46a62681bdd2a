import StateStream

/// The RAM section, read record by record: guest pages may hold any bytes.
extension Walk {
    /// Reads RAM records up to and including the end-of-section flag.
    mutating func readRAM(section: SectionIdentity) throws {
        let pageSize = UInt64(1) << targetPageBits
        let where_ = "RAM section \(section.id)"
        while true {
            let offset = cursor.offset
            try reportProgress()
            try require(8, inside: where_)
            let word = cursor.bigEndian(UInt64.self, at: 0)
            cursor.advance(8)
            var flags = MigrationFormat.RAMFlags(rawValue: word & (pageSize - 1))
            if !flags.isDisjoint(with: [.zero, .page, .xbzrle]) && !flags.contains(.continue) {
                try require(1, inside: where_)
                let length = Int(cursor.byte(at: 0))
                try require(1 + length, inside: where_)
                cursor.advance(1 + length)
            }
            flags.remove(.continue)
            switch flags {
            case .memorySize:
                try readRAMBlockList(totalBytes: word & ~(pageSize - 1), at: offset, inside: where_)
            case .zero:
                try skip(1, inside: where_)
            case .page:
                try skip(pageSize, inside: where_)
            case .xbzrle:
                try require(3, inside: where_)
                let length = UInt64(cursor.bigEndian(UInt16.self, at: 1))
                cursor.advance(3)
                try skip(length, inside: where_)
            case .multifdFlush:
                continue
            case .endOfSection:
                return
            default:
                if flags.contains(.hook) { try stop(.unsupported("RAM record with the RDMA hook flag", at: offset)) }
                if flags.contains(.compressedPage) { try stop(.unsupported("compressed RAM page (QEMU's removed compress capability)", at: offset)) }
                try stop(.malformed("RAM record with flags 0x\(String(flags.rawValue, radix: 16))", at: offset))
            }
        }
    }

    /// The RAM block list after a MEM_SIZE word: per block, u8 name length,
    /// name, be64 length, and a be64 address with `x-ignore-shared`.
    func readRAMBlockList(totalBytes: UInt64, at offset: UInt64, inside where_: String) throws {
        guard !capabilities.contains("mapped-ram") else {
            try stop(.unsupported("RAM written with the mapped-ram capability (pages at fixed file offsets)", at: offset))
        }
        var remaining = totalBytes
        while remaining > 0 {
            let blockOffset = cursor.offset
            try require(1, inside: where_)
            let length = Int(cursor.byte(at: 0))
            try require(1 + length + 8, inside: where_)
            let blockLength = cursor.bigEndian(UInt64.self, at: 1 + length)
            guard blockLength <= remaining else {
                try stop(.malformed("RAM block of \(blockLength) bytes, more than the \(remaining) left of the declared total", at: blockOffset))
            }
            remaining -= blockLength
            cursor.advance(1 + length + 8)
            if capabilities.contains("x-ignore-shared") { try skip(8, inside: where_) }
        }
    }
}
