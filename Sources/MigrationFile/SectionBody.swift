import StateStream

/// The bytes of one device (FULL) section between its header and its footer,
/// as a walk that keeps them (``MigrationFileReader/init(input:maximumChunkLength:strategy:keepsSectionBodies:)``)
/// read them: what the field decoder reads a section's fields from.
///
/// A vhost-user back-end's state stream inside the section is not kept (the
/// walk parses it, and it may be large): ``elided`` says where it was. A body
/// longer than ``maximumKeptByteCount`` (or than what is left of
/// ``maximumKeptByteCountPerWalk``) keeps its first bytes only, and a
/// section the file ends inside keeps what there was: ``isComplete`` is then false.
public struct SectionBody: Hashable, Sendable {
    /// The most bytes kept of one section: QEMU's device sections take at
    /// most a few hundred KiB besides a back-end's state.
    public static let maximumKeptByteCount = 16 << 20
    /// The most bytes kept of all sections of one walk together; a section
    /// past it keeps what is left (nothing, once it is spent).
    public static let maximumKeptByteCountPerWalk = 64 << 20

    /// The section it is the body of.
    public let section: SectionIdentity
    /// The file offset of the section's FULL header.
    public let sectionOffset: UInt64
    /// The file offset of the body's first byte.
    public let offset: UInt64
    /// The body's bytes in file order, the elided ones left out.
    public let bytes: [UInt8]
    /// Where the bytes left out were, as file offsets: each embedded back-end state stream.
    public let elided: [Range<UInt64>]
    /// Whether the body is whole: false when the file ends inside the
    /// section, or the body is longer than ``maximumKeptByteCount``.
    public let isComplete: Bool

    /// A body from its parts.
    public init(section: SectionIdentity, sectionOffset: UInt64, offset: UInt64, bytes: [UInt8], elided: [Range<UInt64>] = [], isComplete: Bool = true) {
        self.section = section
        self.sectionOffset = sectionOffset
        self.offset = offset
        self.bytes = bytes
        self.elided = elided
        self.isComplete = isComplete
    }

    /// The file offset one past the body's last byte (elided bytes counted).
    public var endOffset: UInt64 {
        offset + UInt64(bytes.count) + elided.reduce(0) { $0 + UInt64($1.count) }
    }
}

/// Keeps the bytes a ``MigrationCursor`` consumes while a section is read.
final class SectionRecorder {
    private(set) var bytes: [UInt8] = []
    private(set) var elided: [Range<UInt64>] = []
    /// The file offset of the first byte kept.
    let startOffset: UInt64
    /// The file offset of the next byte to keep.
    private(set) var nextOffset: UInt64
    /// Whether bytes were dropped: past the cap, or passed over unread.
    private(set) var overflowed = false
    /// While paused (inside a back-end state stream), consumed bytes are not kept.
    var paused = false
    /// The most bytes kept: ``SectionBody/maximumKeptByteCount``, or less
    /// when the walk's budget for all sections runs low.
    let limit: Int

    init(startOffset: UInt64, limit: Int = SectionBody.maximumKeptByteCount) {
        self.startOffset = startOffset
        self.limit = min(limit, SectionBody.maximumKeptByteCount)
        nextOffset = startOffset
    }

    func keep(_ consumed: UnsafeRawBufferPointer) {
        guard !paused else { return }
        let room = max(0, limit - bytes.count)
        if consumed.count > room { overflowed = true }
        bytes += consumed.prefix(room)
        nextOffset += UInt64(consumed.count)
    }

    /// Bytes consumed and not kept: passed over by a skip.
    func missed(_ count: UInt64) {
        guard !paused, count > 0 else { return }
        overflowed = true
        nextOffset += count
    }

    /// Marks the bytes from where keeping paused up to `offset` as elided, and keeps again.
    func resume(at offset: UInt64) {
        if offset > nextOffset { elided.append(nextOffset..<offset) }
        nextOffset = max(nextOffset, offset)
        paused = false
    }

    /// Gives back the last `count` bytes kept (the cursor unread them).
    func forget(_ count: Int) {
        guard !paused else { return }
        let kept = min(count, bytes.count)
        bytes.removeLast(kept)
        nextOffset -= UInt64(count)
    }

    /// The body of `section` up to file offset `end` (its footer's offset).
    func body(of section: SectionIdentity, sectionOffset: UInt64, endingAt end: UInt64, complete: Bool) -> SectionBody {
        let elidedCount = elided.reduce(0) { $0 + $1.count }
        let keptEnd = Int(min(UInt64(bytes.count), end - startOffset - UInt64(elidedCount)))
        return SectionBody(
            section: section, sectionOffset: sectionOffset, offset: startOffset, bytes: Array(bytes.prefix(max(0, keptEnd))),
            elided: elided, isComplete: complete && !overflowed)
    }
}
