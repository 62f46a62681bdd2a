import StateStream

/// Why a bundle's tar archive cannot be read: what is wrong and the byte
/// offset (in the decompressed archive) where it shows.
public struct TarArchiveError: Error, Hashable, Sendable, CustomStringConvertible {
    /// The offset of the header or body where reading stopped.
    public let offset: UInt64
    /// What is wrong.
    public let message: String

    /// An error from its parts.
    public init(offset: UInt64, message: String) {
        self.offset = offset
        self.message = message
    }

    /// `MESSAGE at offset N`.
    public var description: String { "\(message) at offset \(offset)" }
}

/// Writes a POSIX ustar archive of regular files into a sink: a 512-byte
/// header per member, its bytes padded to 512, and two zero blocks at the end.
public struct TarWriter {
    /// The longest member name a ustar header holds without its prefix field.
    public static let longestName = 100
    private let sink: any ByteSink
    /// Bytes written so far.
    public private(set) var bytesWritten: UInt64 = 0

    /// A writer into `sink`.
    public init(into sink: any ByteSink) { self.sink = sink }

    /// The 512-byte ustar header of a regular file `name` of `size` bytes.
    public static func header(name: String, size: UInt64, modificationTime: UInt64 = 0) -> [UInt8] {
        var header = [UInt8](repeating: 0, count: 512)
        func put(_ text: String, at offset: Int, width: Int) {
            for (index, byte) in text.utf8.prefix(width).enumerated() { header[offset + index] = byte }
        }
        func octal(_ value: UInt64, width: Int) -> String {
            let digits = String(value, radix: 8)
            return String(repeating: "0", count: max(0, width - 1 - digits.count)) + digits
        }
        put(name, at: 0, width: 100)
        put(octal(0o644, width: 8), at: 100, width: 7)
        put(octal(0, width: 8), at: 108, width: 7)
        put(octal(0, width: 8), at: 116, width: 7)
        put(octal(size, width: 12), at: 124, width: 11)
        put(octal(modificationTime, width: 12), at: 136, width: 11)
        header[156] = UInt8(ascii: "0")
        put("ustar", at: 257, width: 6)
        put("00", at: 263, width: 2)
        for index in 148..<156 { header[index] = UInt8(ascii: " ") }
        let checksum = header.reduce(UInt64(0)) { $0 + UInt64($1) }
        put(octal(checksum, width: 7), at: 148, width: 6)
        header[154] = 0
        header[155] = UInt8(ascii: " ")
        return header
    }

    /// Adds a member `name` holding `bytes`.
    public mutating func add(name: String, bytes: [UInt8]) throws(OutputError) {
        precondition(name.utf8.count <= Self.longestName, "tar member names are made by the bundle writer and fit")
        try write(Self.header(name: name, size: UInt64(bytes.count)))
        try write(bytes)
        try pad()
    }

    /// Ends the archive: two zero blocks.
    public mutating func finish() throws(OutputError) {
        try write([UInt8](repeating: 0, count: 1024))
    }

    private mutating func pad() throws(OutputError) {
        let remainder = Int(bytesWritten % 512)
        if remainder != 0 { try write([UInt8](repeating: 0, count: 512 - remainder)) }
    }

    private mutating func write(_ bytes: [UInt8]) throws(OutputError) {
        try sink.write(bytes)
        bytesWritten += UInt64(bytes.count)
    }
}

/// Reads a ustar archive's regular-file members in order from a source,
/// each body read in blocks: memory stays bounded by the caller's limits.
public struct TarReader {
    /// One member's header.
    public struct Member: Hashable, Sendable {
        /// Its name.
        public let name: String
        /// Its size in bytes.
        public let size: UInt64
        /// Where its header starts in the archive.
        public let offset: UInt64

        /// A member from its parts.
        public init(name: String, size: UInt64, offset: UInt64) {
            self.name = name
            self.size = size
            self.offset = offset
        }
    }

    private let source: any ByteSource
    /// Bytes read so far.
    public private(set) var offset: UInt64 = 0
    private var pendingBody: UInt64 = 0

    /// A reader of the archive `source` holds.
    public init(_ source: any ByteSource) { self.source = source }

    /// The next member's header; `nil` at the end of the archive.
    ///
    /// - Throws: ``TarArchiveError`` for a header that is not ustar, a bad
    ///   checksum, or an archive that ends early; `InputError` when the source fails.
    public mutating func next() throws -> Member? {
        try skipBody()
        let start = offset
        let header = try readExactly(512)
        if header.allSatisfy({ $0 == 0 }) { return nil }
        guard header[257..<262].elementsEqual("ustar".utf8) else {
            throw TarArchiveError(offset: start, message: "no ustar header")
        }
        var sum: UInt64 = 0
        for (index, byte) in header.enumerated() { sum += (148..<156).contains(index) ? 32 : UInt64(byte) }
        guard let recorded = Self.octal(header[148..<156]), recorded == sum else {
            throw TarArchiveError(offset: start, message: "tar header checksum does not match")
        }
        guard let size = Self.octal(header[124..<136]) else {
            throw TarArchiveError(offset: start + 124, message: "tar member size is not octal")
        }
        let name = String(decoding: header[0..<100].prefix { $0 != 0 }, as: UTF8.self)
        pendingBody = (size + 511) / 512 * 512
        return Member(name: name, size: size, offset: start)
    }

    /// The body of `member` (just returned by ``next()``), at most `limit` bytes.
    ///
    /// - Throws: ``TarArchiveError`` when the member is larger than `limit` or the archive ends early.
    public mutating func body(of member: Member, limit: UInt64) throws -> [UInt8] {
        guard member.size <= limit else {
            throw TarArchiveError(offset: member.offset, message: "member \(member.name) is \(member.size) bytes, more than the \(limit) read")
        }
        let bytes = try readExactly(Int(member.size))
        pendingBody -= member.size
        return bytes
    }

    /// Copies the body of `member` (just returned by ``next()``) into `sink` in blocks.
    public mutating func copyBody(of member: Member, into sink: any ByteSink) throws {
        var left = member.size
        while left > 0 {
            let block = try readExactly(Int(min(left, 1 << 20)))
            try sink.write(block)
            left -= UInt64(block.count)
            pendingBody -= UInt64(block.count)
        }
    }

    private mutating func skipBody() throws {
        while pendingBody > 0 {
            let block = try readExactly(Int(min(pendingBody, 1 << 20)))
            pendingBody -= UInt64(block.count)
        }
    }

    private mutating func readExactly(_ count: Int) throws -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: count)
        var filled = 0
        while filled < count {
            let read = try bytes.withUnsafeMutableBytes { buffer in
                try source.read(into: UnsafeMutableRawBufferPointer(rebasing: buffer[filled...]))
            }
            if read == 0 { throw TarArchiveError(offset: offset + UInt64(filled), message: "the archive ends \(count - filled) bytes early") }
            filled += read
        }
        offset += UInt64(count)
        return bytes
    }

    private static func octal(_ field: ArraySlice<UInt8>) -> UInt64? {
        let digits = field.drop { $0 == 0x20 }.prefix { $0 >= 0x30 && $0 <= 0x37 }
        guard !digits.isEmpty else { return nil }
        return digits.reduce(UInt64(0)) { $0 * 8 + UInt64($1 - 0x30) }
    }
}
