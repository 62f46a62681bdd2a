import StateStream

/// What is wrong with a libvirt save image's own parts (its header and XML),
/// at a file offset. Problems of the QEMU stream inside are the migration
/// file's own (`MigrationProblem`), at offsets of the image.
public struct SaveImageProblem: Finding, Error, Hashable {
    /// The stable kinds, as scripts match them.
    public enum Kind: String, Sendable, Hashable, CaseIterable {
        /// No `LibvirtQemud` magic.
        case notASaveImage = "not-a-save-image"
        /// `LibvirtQemudPart`: libvirt never finished writing it.
        case unfinishedSave = "unfinished-save"
        /// A header version libvirt does not write.
        case unsupportedVersion = "unsupported-version"
        /// A header field that cannot be true (a length, a format).
        case badHeader = "bad-header"
        /// The domain XML or cookie is not what libvirt writes.
        case badXML = "bad-xml"
        /// The file ends inside the header or the XML.
        case truncatedFile = "truncated-file"
        /// The QEMU stream is not stored as the header says.
        case formatMismatch = "format-mismatch"
        /// A format statetool does not read.
        case unsupportedFormat = "unsupported-format"
    }

    /// What kind of problem this is.
    public let kind: Kind
    /// Where it is, in bytes of the image file.
    public let offset: UInt64
    /// What is wrong, in one sentence without the offset.
    public let message: String
    /// Always `OffsetBase.input`: offsets are the image file's.
    public var offsetBase: OffsetBase { .input }
    /// Always `Severity.error`: reading the image stops at it.
    public var severity: Severity { .error }

    /// A problem of `kind` at file offset `offset`.
    public init(_ kind: Kind, at offset: UInt64, _ message: String) {
        self.kind = kind
        self.offset = offset
        self.message = message
    }
}
