import Foundation

/// Builds QEMU migration files byte by byte for tests, independently of the
/// code under test, and remembers where each part went.
struct MigrationFileBuilder {
    private(set) var bytes: [UInt8] = []
    /// Offsets of named places, set by the builder functions.
    private(set) var marks: [String: Int] = [:]
    /// Whether sections end with a footer (machine types since 2.4).
    let footers: Bool

    init(version: UInt32 = 3, footers: Bool = true) {
        bytes = Self.be32(0x5145_564D) + Self.be32(version)
        self.footers = footers
    }

    static func be16(_ value: UInt16) -> [UInt8] { [UInt8(value >> 8), UInt8(value & 0xff)] }
    static func be32(_ value: UInt32) -> [UInt8] { (0..<4).reversed().map { UInt8(value >> (8 * UInt32($0)) & 0xff) } }
    static func be64(_ value: UInt64) -> [UInt8] { (0..<8).reversed().map { UInt8(value >> (8 * UInt64($0)) & 0xff) } }
    static func name(_ text: String) -> [UInt8] { [UInt8(text.utf8.count)] + Array(text.utf8) }

    /// `[be32 length][bytes]` per chunk, then the zero terminator.
    static func stream(_ chunks: [[UInt8]]) -> [UInt8] {
        chunks.flatMap { be32(UInt32($0.count)) + $0 } + [0, 0, 0, 0]
    }

    /// A subsection header: 0x05, name, be32 version.
    static func subsectionHeader(_ name: String, version: UInt32 = 0) -> [UInt8] {
        [0x05] + Self.name(name) + be32(version)
    }

    mutating func mark(_ name: String) { marks[name] = bytes.count }

    mutating func append(_ more: [UInt8]) { bytes += more }

    /// 0x07, be32 length, machine type, subsections.
    mutating func configuration(_ machine: String, pageBits: UInt32? = nil, capabilities: [String] = []) {
        mark("configuration")
        bytes += [0x07] + Self.be32(UInt32(machine.utf8.count)) + Array(machine.utf8)
        if let pageBits {
            bytes += Self.subsectionHeader("configuration/target-page-bits", version: 1) + Self.be32(pageBits)
        }
        if !capabilities.isEmpty {
            bytes += Self.subsectionHeader("configuration/capabilities", version: 1) + Self.be32(UInt32(capabilities.count))
            for capability in capabilities { bytes += Self.name(capability) }
        }
    }

    /// START or FULL header.
    mutating func sectionHeader(type: UInt8, id: UInt32, name: String, instance: UInt32 = 0, version: UInt32 = 1) {
        bytes += [type] + Self.be32(id) + Self.name(name) + Self.be32(instance) + Self.be32(version)
    }

    mutating func footer(_ id: UInt32) {
        if footers { bytes += [0x7e] + Self.be32(id) }
    }

    /// A RAM record.
    enum RAMRecord {
        case zero(block: String?, address: UInt64)
        case page(block: String?, address: UInt64, [UInt8])
        case xbzrle(block: String?, address: UInt64, [UInt8])
        case flush
    }

    mutating func ramRecords(_ records: [RAMRecord]) {
        for record in records {
            switch record {
            case .zero(let block, let address):
                bytes += Self.be64(address | 0x02 | (block == nil ? 0x20 : 0)) + (block.map(Self.name) ?? []) + [0]
            case .page(let block, let address, let content):
                bytes += Self.be64(address | 0x08 | (block == nil ? 0x20 : 0)) + (block.map(Self.name) ?? []) + content
            case .xbzrle(let block, let address, let encoded):
                bytes += Self.be64(address | 0x40 | (block == nil ? 0x20 : 0)) + (block.map(Self.name) ?? [])
                    + [1] + Self.be16(UInt16(encoded.count)) + encoded
            case .flush:
                bytes += Self.be64(0x200)
            }
        }
        bytes += Self.be64(0x10)
    }

    /// The RAM START section: MEM_SIZE, the block list, records, EOS, footer.
    mutating func ramStart(id: UInt32, blocks: [(String, UInt64)], ignoreShared: Bool = false, records: [RAMRecord] = []) {
        mark("ram")
        sectionHeader(type: 0x01, id: id, name: "ram", version: 4)
        bytes += Self.be64(blocks.reduce(0) { $0 + $1.1 } | 0x04)
        for (name, length) in blocks {
            bytes += Self.name(name) + Self.be64(length)
            if ignoreShared { bytes += Self.be64(0xfeed_0000) }
        }
        ramRecords(records)
        footer(id)
    }

    /// A RAM PART (0x02) or END (0x03) section.
    mutating func ramContinuation(type: UInt8, id: UInt32, records: [RAMRecord]) {
        bytes += [type] + Self.be32(id)
        ramRecords(records)
        footer(id)
    }

    mutating func fullSection(id: UInt32, name: String, instance: UInt32 = 0, version: UInt32 = 1, body: [UInt8]) {
        mark("section \(id)")
        sectionHeader(type: 0x04, id: id, name: name, instance: instance, version: version)
        bytes += body
        footer(id)
    }

    mutating func command(_ command: UInt16, data: [UInt8] = []) {
        bytes += [0x08] + Self.be16(command) + Self.be16(UInt16(data.count)) + data
    }

    mutating func endOfFile() {
        mark("eof")
        bytes += [0x00]
    }

    mutating func description(_ json: String) {
        mark("description")
        bytes += [0x06] + Self.be32(UInt32(json.utf8.count)) + Array(json.utf8)
    }
}
