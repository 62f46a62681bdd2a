/// One piece of evidence for a cause: a log line (its file, line number and
/// byte offset), a place in the input file (its offset), or a path in a share.
/// Its `Encodable` form is `{source, path, line, offset, text}`.
public struct Evidence: Hashable, Sendable, Codable {
    /// Where the evidence was found.
    public enum Source: String, Hashable, Sendable, Codable {
        /// QEMU's standard error or its lines in libvirt's domain log.
        case qemu
        /// libvirt's own lines in a domain log.
        case libvirt
        /// virtiofsd's log.
        case virtiofsd
        /// passt's log.
        case passt
        /// The migration file, save image or state.
        case file
        /// The destination's shared directory.
        case share
        /// The destination's arguments (`--destination-args`).
        case arguments

        /// The source of a log line written by `source`.
        public init(_ source: LogSource) {
            switch source {
            case .qemu: self = .qemu
            case .libvirt: self = .libvirt
            case .virtiofsd: self = .virtiofsd
            case .passt: self = .passt
            }
        }
    }

    /// Where it was found.
    public let source: Source
    /// The log's, file's or share's path; `nil` for the destination's arguments.
    public let path: String?
    /// The line number in a log, from 1; `nil` for anything else.
    public let line: Int?
    /// The byte offset of a log line in its log, or of the state in the file;
    /// `nil` where there is none (a share's path).
    public let offset: UInt64?
    /// What it says: the log line as written, or what was found.
    public let text: String

    /// Evidence from its parts.
    public init(source: Source, path: String?, line: Int? = nil, offset: UInt64? = nil, text: String) {
        self.source = source
        self.path = path
        self.line = line
        self.offset = offset
        self.text = text
    }

    private enum CodingKeys: String, CodingKey { case source, path, line, offset, text }

    /// Decodes `{source, path, line, offset, text}` (a bundle's recorded share check).
    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        source = try container.decode(Source.self, forKey: .source)
        path = try container.decodeIfPresent(String.self, forKey: .path)
        line = try container.decodeIfPresent(Int.self, forKey: .line)
        offset = try container.decodeIfPresent(UInt64.self, forKey: .offset)
        text = try container.decode(String.self, forKey: .text)
    }

    /// Encodes `{source, path, line, offset, text}`, absent values as `null`.
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(source, forKey: .source)
        try container.encode(path, forKey: .path)
        try container.encode(line, forKey: .line)
        try container.encode(offset, forKey: .offset)
        try container.encode(text, forKey: .text)
    }
}
