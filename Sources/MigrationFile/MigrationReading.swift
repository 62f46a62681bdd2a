/// How a walk of a migration file may get to its device sections.
public enum ReadingStrategy: Sendable, Hashable {
    /// In a regular, uncompressed file, place the device sections from the
    /// file's end (``TailPlacement``) and read only them, the file's header
    /// and its configuration; walk the whole file where that does not check out.
    case placeFromEnd
    /// Read every byte, front to back, for `reason` (what ``MigrationReading/reason`` then says).
    case walk(reason: String)

    /// A walk because one was asked for (`--full-walk`).
    public static let fullWalk = ReadingStrategy.walk(reason: "a full walk was asked for")
}

/// How a walk read its file: which path it took, why, and how many bytes it read.
public struct MigrationReading: Sendable, Hashable, Codable {
    /// The two ways through a file.
    public enum Path: String, Sendable, Hashable, Codable {
        /// The header and configuration, then the device sections placed from
        /// the end of the file: the RAM in between was not read.
        case tail
        /// Front to back.
        case walk
    }

    /// The path taken.
    public let path: Path
    /// For a walk, why the tail path was not taken (or not asked for).
    public let reason: String?
    /// For the tail path, how many device sections were placed from the end.
    public let placedSections: Int
    /// For the tail path, the offset where reading resumed after the configuration.
    public let resumedAt: UInt64?
    /// Bytes read from the input as it is stored (compressed ones, for a
    /// compressed file): the walk's reads and the placement's together.
    public let bytesRead: UInt64

    /// A record of a reading from its fields.
    public init(path: Path, reason: String?, placedSections: Int, resumedAt: UInt64?, bytesRead: UInt64) {
        self.path = path
        self.reason = reason
        self.placedSections = placedSections
        self.resumedAt = resumedAt
        self.bytesRead = bytesRead
    }

    private enum CodingKeys: String, CodingKey {
        case path, reason, placedSections, resumedAt, bytesRead
    }

    /// Encodes the one JSON shape of a reading, every key present: `reason`
    /// and `resumedAt` are `null` where the path has none.
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(path, forKey: .path)
        try container.encode(reason, forKey: .reason)
        try container.encode(placedSections, forKey: .placedSections)
        try container.encode(resumedAt, forKey: .resumedAt)
        try container.encode(bytesRead, forKey: .bytesRead)
    }

    /// One line for `-v`: `placed 3 device sections from the end; read 289 KB`,
    /// or `walked front to back (a pipe); read 64 MB`.
    public var summary: String {
        switch path {
        case .tail:
            let sections = placedSections == 1 ? "1 device section" : "\(placedSections) device sections"
            return "placed \(sections) from the end, resumed at offset \(resumedAt ?? 0); read \(bytesRead) bytes"
        case .walk:
            return "walked front to back (\(reason ?? "asked for")); read \(bytesRead) bytes"
        }
    }
}
