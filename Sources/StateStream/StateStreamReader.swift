/// What the reader found next in a state stream.
public enum StreamEvent: Sendable {
    /// A chunk's length field was read. Its payload follows as zero or more
    /// ``payload(_:)`` events, then ``chunkEnd(_:)`` if the body is complete.
    case chunkStart(Chunk)
    /// The current chunk's payload: the whole body when it fits in the reader's
    /// buffer, else the next piece of it, in order. The slice shares the reader's
    /// buffer; keeping it past the next call to `next()` costs a copy.
    case payload(ArraySlice<UInt8>)
    /// The current chunk's payload is complete.
    case chunkEnd(Chunk)
    /// The zero-length end marker, at this offset.
    case terminator(offset: UInt64)
    /// A problem. After an error (``StreamProblem/severity``) there are no more
    /// events; after a warning reading goes on.
    case problem(StreamProblem)
}

/// Reads a chunk-framed state stream front to back and reports what it finds.
///
/// The reader is a pull parser: each call to ``next()`` returns one
/// ``StreamEvent`` until the stream is over, then `nil`. It keeps one fixed buffer
/// (1 MiB by default, QEMU's largest chunk) and never sizes anything by a length
/// read from the input: a chunk that declares 4 GiB and is cut off after ten bytes
/// is reported as soon as the input ends.
///
/// A chunk body that fits in the buffer comes as one `payload` event, and only
/// once it is complete, so the payload of a truncated chunk is never handed out.
/// A longer body comes in pieces as it is read. It reads its source only forward and stops reading after
/// the source first reports its end, so pipes and terminals work.
///
/// A valid stream yields, per chunk, `chunkStart`, `payload`…, `chunkEnd`, then
/// `terminator` and `nil`. A broken one ends with a `problem` of severity error:
///
/// ```swift
/// var reader = StateStreamReader(input: try StateStreamInput(path: "dump.state"))
/// while let event = try reader.next() {
///     if case .problem(let problem) = event { print(problem) }
/// }
/// ```
public struct StateStreamReader: ~Copyable {
    private enum State {
        case lengthDue
        case oversizedWarningDue(Chunk, remaining: UInt32)
        case body(Chunk, remaining: UInt32)
        case terminated(at: UInt64)
        case finished
    }

    private let source: any ByteSource
    /// Chunks longer than this draw an `oversized-chunk` warning.
    public let maximumChunkLength: UInt32
    private var buffer: [UInt8]
    /// The unread bytes are `buffer[start..<end]`.
    private var start = 0
    private var end = 0
    /// Offset in the framed stream of `buffer[start]`.
    private var offset: UInt64 = 0
    private var sourceExhausted = false
    private var state = State.lengthDue
    private var nextChunkIndex = 0

    /// The buffer's size: bodies up to this long come whole.
    public var bufferCapacity: Int { buffer.count }

    /// Bytes read from the source but not handed out in events. After a
    /// `truncated-chunk` problem for a body that fits the buffer, these are the
    /// bytes of that body that were present (what `repair --keep-partial` keeps).
    public var unconsumedBytes: ArraySlice<UInt8> { buffer[start..<end] }

    /// Bytes of the framed (decompressed) stream read so far.
    public var framedBytesRead: UInt64 { offset + UInt64(end - start) }

    /// Reads the framed stream `source` produces.
    ///
    /// - Parameters:
    ///   - source: Bytes of the framed stream (already decompressed).
    ///   - maximumChunkLength: Longer chunks draw an `oversized-chunk` warning.
    ///   - bufferSize: The one buffer's size, at least 4 bytes.
    public init(
        source: any ByteSource,
        maximumChunkLength: UInt32 = StateStreamFormat.qemuMaximumChunkLength,
        bufferSize: Int = 1 << 20
    ) {
        precondition(bufferSize >= StateStreamFormat.lengthFieldSize, "the buffer must hold a length field")
        self.source = source
        self.maximumChunkLength = maximumChunkLength
        self.buffer = [UInt8](repeating: 0, count: bufferSize)
    }

    /// Reads the framed stream of `input`, decompressing it if needed.
    public init(
        input: StateStreamInput,
        maximumChunkLength: UInt32 = StateStreamFormat.qemuMaximumChunkLength,
        bufferSize: Int = 1 << 20
    ) {
        self.init(source: input.framedSource, maximumChunkLength: maximumChunkLength, bufferSize: bufferSize)
    }

    /// Returns the next event, or `nil` once the stream is over.
    ///
    /// - Throws: ``InputError`` when the input cannot be read. A broken zstd
    ///   layer is not thrown: it ends the stream with a `compression-error`
    ///   problem.
    public mutating func next() throws(InputError) -> StreamEvent? {
        do {
            return try step()
        } catch {
            guard case .compression(let failure) = error else { throw error }
            state = .finished
            return .problem(.compressionError(failure))
        }
    }

    private mutating func step() throws(InputError) -> StreamEvent? {
        switch state {
        case .lengthDue:
            return try readLength()

        case .oversizedWarningDue(let chunk, let remaining):
            state = .body(chunk, remaining: remaining)
            return .problem(.oversizedChunk(chunk, limit: maximumChunkLength))

        case .body(let chunk, let remaining):
            if remaining == 0 {
                state = .lengthDue
                nextChunkIndex += 1
                return .chunkEnd(chunk)
            }
            if remaining == chunk.length && Int(chunk.length) <= buffer.count {
                return try readWholeBody(of: chunk)
            }
            if start == end {
                try refill()
            }
            guard start < end else {
                state = .finished
                return .problem(.truncatedChunk(chunk, presentBytes: UInt64(chunk.length - remaining)))
            }
            let count = min(end - start, Int(remaining))
            let piece = buffer[start..<start + count]
            consume(count)
            state = .body(chunk, remaining: remaining - UInt32(count))
            return .payload(piece)

        case .terminated(let terminatorOffset):
            state = .finished
            let trailing = try drain()
            guard trailing == 0 else {
                return .problem(.trailingData(at: terminatorOffset + UInt64(StateStreamFormat.lengthFieldSize), byteCount: trailing))
            }
            return nil

        case .finished:
            return nil
        }
    }

    private mutating func readLength() throws(InputError) -> StreamEvent {
        let fieldSize = StateStreamFormat.lengthFieldSize
        try fill(atLeast: fieldSize)
        let available = end - start
        guard available >= fieldSize else {
            state = .finished
            return .problem(available == 0 ? .missingTerminator(at: offset) : .truncatedLength(at: offset, presentBytes: available))
        }
        let length = buffer[start..<start + fieldSize].readInteger(endianness: .big, as: UInt32.self)!
        let fieldOffset = offset
        consume(fieldSize)
        if length == 0 {
            state = .terminated(at: fieldOffset)
            return .terminator(offset: fieldOffset)
        }
        let chunk = Chunk(index: nextChunkIndex, offset: fieldOffset, length: length)
        state = length > maximumChunkLength ? .oversizedWarningDue(chunk, remaining: length) : .body(chunk, remaining: length)
        return .chunkStart(chunk)
    }

    /// Passes over the rest of the current chunk's body without handing it out:
    /// after ``StreamEvent/chunkStart(_:)``, for a caller that only wants where
    /// chunks are (to `splice` their bodies, say). A source that can skip (a
    /// file read at offsets) does not read the body at all.
    ///
    /// The events go on as if the body had been read: an `oversized-chunk`
    /// warning if one is due, then ``StreamEvent/chunkEnd(_:)``, or the
    /// `truncated-chunk` problem if the input ends inside the body. Outside a
    /// chunk's body this does nothing.
    public mutating func skipPayload() throws(InputError) {
        let chunk: Chunk
        let remaining: UInt32
        switch state {
        case .body(let current, let left), .oversizedWarningDue(let current, let left):
            (chunk, remaining) = (current, left)
        default:
            return
        }
        let buffered = min(end - start, Int(remaining))
        consume(buffered)
        var left = UInt64(remaining) - UInt64(buffered)
        if left > 0 {
            let skipped = try source.skip(left)
            offset += skipped
            left -= skipped
            if left > 0 { sourceExhausted = true }
        }
        let rest = UInt32(left)
        if case .oversizedWarningDue = state {
            state = .oversizedWarningDue(chunk, remaining: rest)
        } else {
            state = .body(chunk, remaining: rest)
        }
    }

    /// A body that fits in the buffer comes whole, and only once it is
    /// complete: a truncated one yields no payload at all.
    private mutating func readWholeBody(of chunk: Chunk) throws(InputError) -> StreamEvent {
        let length = Int(chunk.length)
        try fill(atLeast: length)
        guard end - start >= length else {
            state = .finished
            return .problem(.truncatedChunk(chunk, presentBytes: UInt64(end - start)))
        }
        let body = buffer[start..<start + length]
        consume(length)
        state = .body(chunk, remaining: 0)
        return .payload(body)
    }

    private mutating func consume(_ count: Int) {
        start += count
        offset += UInt64(count)
    }

    /// Reads into the buffer until at least `count` bytes (at most the buffer's
    /// size) are unread or the source ends, moving the unread bytes to the front
    /// first if they would not fit.
    private mutating func fill(atLeast count: Int) throws(InputError) {
        guard end - start < count else { return }
        if start + count > buffer.count {
            buffer.withUnsafeMutableBytes { bytes in
                bytes.baseAddress!.copyMemory(from: bytes.baseAddress! + start, byteCount: end - start)
            }
            end -= start
            start = 0
        }
        while end - start < count && !sourceExhausted {
            try readSource()
        }
    }

    /// Replaces the (fully consumed) buffer with the next bytes of the source.
    private mutating func refill() throws(InputError) {
        start = 0
        end = 0
        if !sourceExhausted { try readSource() }
    }

    private mutating func readSource() throws(InputError) {
        let source = self.source
        let end = self.end
        let count = try buffer.withUnsafeMutableBytes { bytes in
            Result { () throws(InputError) in try source.read(into: UnsafeMutableRawBufferPointer(rebasing: bytes[end...])) }
        }.get()
        if count == 0 { sourceExhausted = true }
        self.end += count
    }

    /// Reads the rest of the input and returns how many bytes it held.
    private mutating func drain() throws(InputError) -> UInt64 {
        var count = UInt64(end - start)
        consume(end - start)
        while !sourceExhausted {
            try refill()
            count += UInt64(end)
            consume(end)
        }
        return count
    }
}
