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
            let address = word & ~(pageSize - 1)
            if !flags.isDisjoint(with: [.zero, .page, .xbzrle]) && !flags.contains(.continue) {
                try require(1, inside: where_)
                let length = Int(cursor.byte(at: 0))
                try require(1 + length, inside: where_)
                if ramPages != nil { currentBlock = String(decoding: cursor.bytes(at: 1, count: length), as: UTF8.self) }
                cursor.advance(1 + length)
            }
            flags.remove(.continue)
            switch flags {
            case .memorySize:
                try readRAMBlockList(totalBytes: address, at: offset, inside: where_)
            case .zero:
                try require(1, inside: where_)
                try ramPages?.zeroPage(block: currentBlock, address: address, fill: cursor.byte(at: 0))
                cursor.advance(1)
            case .page:
                if let ramPages {
                    try require(Int(pageSize), inside: where_)
                    let run = pageRun(block: currentBlock, address: address, pageSize: pageSize)
                    try ramPages.pages(run)
                    cursor.advance(run.records.count)
                } else {
                    try skip(pageSize, inside: where_)
                }
            case .xbzrle:
                if ramPages != nil { try stop(.unsupported("XBZRLE-encoded RAM page: its content depends on the page before it, which is not rebuilt", at: offset)) }
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

    /// The page at the cursor (its record header read) and the records of
    /// the block's next pages that follow it in the buffer: each a header
    /// with only the page and continue flags, for the address after the last.
    /// QEMU writes a block's dirty pages in address order, so a guest's RAM
    /// comes as runs of up to a buffer's worth of pages.
    func pageRun(block: String, address: UInt64, pageSize: UInt64) -> RAMPageRun {
        let stride = Int(pageSize) + RAMPageRun.headerSize
        let available = cursor.available
        let continuing = MigrationFormat.RAMFlags([.page, .continue]).rawValue
        var count = 1
        var length = Int(pageSize)
        while length + stride <= available {
            let (next, overflow) = address.addingReportingOverflow(UInt64(count) * pageSize)
            guard !overflow, cursor.bigEndian(UInt64.self, at: length) == next | continuing else { break }
            count += 1
            length += stride
        }
        return RAMPageRun(block: block, address: address, pageSize: Int(pageSize), count: count,
                          records: UnsafeRawBufferPointer(rebasing: cursor.availableBytes.prefix(length)))
    }

    /// The RAM block list after a MEM_SIZE word: per block, u8 name length,
    /// name, be64 length, a be64 address with `x-ignore-shared`, and with
    /// `mapped-ram` the block's header and its region of the file.
    func readRAMBlockList(totalBytes: UInt64, at offset: UInt64, inside where_: String) throws {
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
            let name = String(decoding: cursor.bytes(at: 1, count: length), as: UTF8.self)
            remaining -= blockLength
            cursor.advance(1 + length + 8)
            if capabilities.contains("x-ignore-shared") { try skip(8, inside: where_) }
            var region: RAMBlock.MappedRegion?
            if capabilities.contains("mapped-ram") { region = try skipMappedRAMRegion(block: name, length: blockLength, inside: where_) }
            try handle(.ramBlock(RAMBlock(
                name: name, byteCount: blockLength, pageSize: UInt64(1) << targetPageBits, offset: blockOffset, mappedRegion: region)))
        }
    }

    /// A mapped-ram block (QEMU 9.0 on, `migration/ram.c`, `MappedRamHeader`):
    /// be32 version, be64 page size, be64 bitmap offset, be64 pages offset,
    /// all file offsets; the bitmap follows the header, the pages start at the
    /// next 1 MiB boundary, and the stream goes on after the pages. Nothing of
    /// the bitmap or the pages is read: the walk moves past them (on a
    /// regular file, without reading).
    ///
    /// - Returns: Where the bitmap and the pages are; `nil` for a block
    ///   `x-ignore-shared` leaves out.
    @discardableResult
    func skipMappedRAMRegion(block: String, length: UInt64, inside where_: String) throws -> RAMBlock.MappedRegion? {
        let headerOffset = cursor.offset
        let what = "the mapped-ram header of RAM block \(block)"
        try require(MigrationFormat.mappedRAMHeaderSize, inside: what)
        let version = cursor.bigEndian(UInt32.self, at: 0)
        let pageSize = cursor.bigEndian(UInt64.self, at: 4)
        let bitmapOffset = cursor.bigEndian(UInt64.self, at: 12)
        let pagesOffset = cursor.bigEndian(UInt64.self, at: 20)
        cursor.advance(MigrationFormat.mappedRAMHeaderSize)
        guard version == MigrationFormat.mappedRAMVersion else {
            try stop(.unsupported("\(what) has version \(version); QEMU writes \(MigrationFormat.mappedRAMVersion)", at: headerOffset))
        }
        guard pageSize == UInt64(1) << targetPageBits else {
            try stop(.malformed("\(what) gives page size \(pageSize), the file \(UInt64(1) << targetPageBits)", at: headerOffset + 4))
        }
        // A block x-ignore-shared leaves out has no region (QEMU 10.2 on).
        if bitmapOffset == 0 && pagesOffset == 0 { return nil }
        guard bitmapOffset == cursor.offset else {
            try stop(.malformed("\(what) puts its bitmap at \(bitmapOffset), not right after the header at \(cursor.offset)", at: headerOffset + 12))
        }
        let bitmapBytes = (length / pageSize + 7) / 8
        let (end, overflow) = pagesOffset.addingReportingOverflow(length)
        guard pagesOffset >= bitmapOffset + bitmapBytes, !overflow else {
            try stop(.malformed("\(what) puts its pages at \(pagesOffset), inside its \(bitmapBytes)-byte bitmap or beyond any file", at: headerOffset + 20))
        }
        try skip(end - cursor.offset, inside: "RAM block \(block)'s pages (mapped-ram, \(length) bytes from \(pagesOffset))")
        return RAMBlock.MappedRegion(bitmapOffset: bitmapOffset, pagesOffset: pagesOffset)
    }
}

/// What a walk hands RAM page records to, as it reads them
/// (``MigrationFileReader/init(input:maximumChunkLength:strategy:keepsSectionBodies:ramPages:)``).
/// A page's bytes are valid only during the call.
public protocol RAMPageHandler: AnyObject {
    /// A page of `block` at `address` (its offset in the block): its bytes, one target page.
    func page(block: String, address: UInt64, bytes: UnsafeRawBufferPointer) throws
    /// Page records of consecutive pages of one block, as they follow each
    /// other in the file. By default, each page in turn to
    /// ``page(block:address:bytes:)``.
    func pages(_ run: RAMPageRun) throws
    /// A page of `block` at `address` whose every byte is `fill` (QEMU writes 0).
    func zeroPage(block: String, address: UInt64, fill: UInt8) throws
}

extension RAMPageHandler {
    /// Hands each page of `run` to ``page(block:address:bytes:)`` in turn.
    public func pages(_ run: RAMPageRun) throws {
        for index in 0..<run.count {
            try page(block: run.block, address: run.address(of: index), bytes: run.page(index))
        }
    }
}

/// Page records of consecutive pages of one RAM block as they sit in the
/// file (the walk's buffer): the first page's bytes, then for each further
/// page its 8-byte record header (address and flags, no block name) and its
/// bytes. Valid only during ``RAMPageHandler/pages(_:)``.
public struct RAMPageRun {
    /// The size of a record header between two pages of a run.
    public static let headerSize = 8

    /// The block the pages belong to.
    public let block: String
    /// The first page's offset in the block.
    public let address: UInt64
    /// The bytes of a page (the target page size).
    public let pageSize: Int
    /// How many pages the run holds, at least one.
    public let count: Int
    /// The records, from the first page's bytes to the last page's end.
    public let records: UnsafeRawBufferPointer

    /// The offset in the block of page `index` of the run.
    public func address(of index: Int) -> UInt64 {
        address + UInt64(index) * UInt64(pageSize)
    }

    /// The bytes of page `index` of the run.
    public func page(_ index: Int) -> UnsafeRawBufferPointer {
        let start = index * (pageSize + Self.headerSize)
        return UnsafeRawBufferPointer(rebasing: records[start..<start + pageSize])
    }
}
