import StateStream

/// A forward-only, buffered view of a migration file that tracks the file
/// offset of every byte.
///
/// It keeps one fixed buffer and never sizes anything by a length read from the
/// file. It is itself a ``ByteSource``, so the state-stream reader can read an
/// embedded stream straight from it and hand back what it read too far with
/// ``unread(_:)``.
final class MigrationCursor: ByteSource {
    private let source: any ByteSource
    private var storage: UnsafeMutableRawBufferPointer
    /// The unread bytes are `storage[start..<end]`.
    private var start = 0
    private var end = 0
    private var sourceExhausted = false
    /// The file offset of the next unread byte.
    private(set) var offset: UInt64 = 0
    /// When set, a fill reads about this many bytes rather than a whole
    /// buffer: for reading a file's head before passing over most of it.
    var readSize: Int?
    /// When set, every byte consumed is handed to it (a device section being kept).
    var recorder: SectionRecorder?

    /// Reads go to page-aligned addresses in page-sized multiples, which keeps
    /// the kernel's copy out of the page cache as fast as `cat`'s: unread bytes
    /// move to just before the first page, not to the start of the buffer.
    private static let pageSize = 4096

    /// Reads `source`, whose first byte is at file offset `offset`.
    init(source: any ByteSource, startingAt offset: UInt64 = 0, capacity: Int = 1 << 20) {
        self.source = source
        self.offset = offset
        storage = .allocate(byteCount: Self.pageSize + capacity, alignment: Self.pageSize)
        start = Self.pageSize
        end = Self.pageSize
    }

    deinit { storage.deallocate() }

    /// Bytes buffered and not yet consumed.
    var available: Int { end - start }

    /// Whether the file has no more bytes at all.
    func atEnd() throws(InputError) -> Bool {
        try fill(atLeast: 1)
        return available == 0
    }

    /// Makes at least `count` bytes (at most the buffer's size) available, or as
    /// many as the file still holds.
    ///
    /// - Returns: Whether `count` bytes are available.
    @discardableResult
    func fill(atLeast count: Int) throws(InputError) -> Bool {
        precondition(count <= storage.count - Self.pageSize, "a lookahead must fit the buffer")
        if available >= count { return true }
        while available < count && !sourceExhausted {
            let readStart = (available + Self.pageSize - 1) / Self.pageSize * Self.pageSize
            if end != readStart || readStart == storage.count {
                (storage.baseAddress! + readStart - available).copyMemory(from: storage.baseAddress! + start, byteCount: available)
                start = readStart - available
                end = readStart
            }
            let readEnd = readSize.map { min(storage.count, end + max($0, count - available)) } ?? storage.count
            let read = try source.read(into: UnsafeMutableRawBufferPointer(rebasing: storage[end..<readEnd]))
            if read == 0 { sourceExhausted = true }
            end += read
        }
        return available >= count
    }

    /// The byte `index` bytes ahead; it must be available.
    func byte(at index: Int) -> UInt8 {
        storage[start + index]
    }

    /// A big-endian integer of `width` bytes, `index` bytes ahead; it must be available.
    func bigEndian<T: FixedWidthInteger & UnsignedInteger>(_: T.Type, at index: Int) -> T {
        storage[(start + index)...].readInteger(endianness: .big, as: T.self)!
    }

    /// `count` available bytes, `index` bytes ahead.
    func bytes(at index: Int, count: Int) -> [UInt8] {
        Array(storage[start + index..<start + index + count])
    }

    /// The available bytes, for searching.
    var availableBytes: UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(rebasing: storage[start..<end])
    }

    /// Consumes `count` available bytes.
    func advance(_ count: Int) {
        precondition(count <= available)
        recorder?.keep(UnsafeRawBufferPointer(rebasing: storage[start..<start + count]))
        start += count
        offset += UInt64(count)
    }

    /// Whether skipping reads what it passes over: as its source does (the
    /// buffered bytes were read already).
    var skipReads: Bool { source.skipReads }

    /// Consumes up to `count` bytes without keeping them: the buffered ones,
    /// then the source's own ``ByteSource/skip(_:)`` (which a regular file
    /// does without reading).
    ///
    /// - Returns: How many were skipped: fewer than `count` only at the end of the file.
    func skip(_ count: UInt64) throws(InputError) -> UInt64 {
        let buffered = Int(min(UInt64(available), count))
        advance(buffered)
        var remaining = count - UInt64(buffered)
        if remaining > 0 && !sourceExhausted {
            let skipped = try source.skip(remaining)
            recorder?.missed(skipped)
            offset += skipped
            remaining -= skipped
            if remaining > 0 { sourceExhausted = true }
        }
        return count - remaining
    }

    /// Serves the buffered bytes first, then reads the file directly.
    func read(into buffer: UnsafeMutableRawBufferPointer) throws(InputError) -> Int {
        let count: Int
        if available > 0 {
            count = min(available, buffer.count)
            buffer.baseAddress!.copyMemory(from: storage.baseAddress! + start, byteCount: count)
            start += count
        } else if sourceExhausted {
            return 0
        } else {
            count = try source.read(into: buffer)
            if count == 0 { sourceExhausted = true }
        }
        recorder?.keep(UnsafeRawBufferPointer(rebasing: buffer[0..<count]))  // both branches
        offset += UInt64(count)
        return count
    }

    /// Puts back `bytes`, the last ones handed out by ``read(into:)``, so they
    /// are read again next.
    func unread(_ bytes: ArraySlice<UInt8>) {
        let count = bytes.count
        guard count > 0 else { return }
        recorder?.forget(count)
        if count > start {
            let needed = count + available
            if needed > storage.count {
                let larger = UnsafeMutableRawBufferPointer.allocate(byteCount: needed, alignment: 8)
                larger.baseAddress!.advanced(by: count).copyMemory(from: storage.baseAddress! + start, byteCount: available)
                storage.deallocate()
                storage = larger
            } else {
                (storage.baseAddress! + count).copyMemory(from: storage.baseAddress! + start, byteCount: available)
            }
            end = needed
            start = count
        }
        start -= count
        bytes.withUnsafeBytes { storage.baseAddress!.advanced(by: start).copyMemory(from: $0.baseAddress!, byteCount: count) }
        offset -= UInt64(count)
    }
}
