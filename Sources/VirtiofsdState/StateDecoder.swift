/// Decodes a virtiofsd payload as it arrives, one inode or handle at a time.
///
/// Memory is what the state holds (its inodes, handles and mount paths) and
/// at most one value's worth of bytes not yet decoded (a value is never longer
/// than a path): it never keeps the payload. At the first byte that cannot be
/// part of a state, decoding stops for good and everything decoded is dropped,
/// so a payload that is not a state costs nothing whatever its first bytes.
///
/// ```swift
/// var decoder = VirtiofsdStateDecoder()
/// for piece in pieces { decoder.feed(piece) }
/// let state = try decoder.finish()
/// ```
public struct VirtiofsdStateDecoder: Sendable {
    /// Where the decoder is in the payload.
    private enum Part: Sendable {
        /// The version tag and the inode count.
        case header
        /// Inodes, this many still to come.
        case inodes(left: Int)
        /// `next_inode` and the handle count.
        case afterInodes
        case handles(left: Int)
        /// `next_handle`, the negotiated options and, for V2, the mount-path count.
        case afterHandles
        case mountPaths(left: Int)
        /// The state is complete: any further byte is trailing.
        case done
    }

    private var part = Part.header
    /// Bytes received but not decoded yet: the start of the next value.
    private var pending: [UInt8] = []
    /// The payload offset of `pending[0]`.
    private var pendingOffset = 0
    private let totalLength: Int?
    private var failure: VirtiofsdDecodingError?
    private var trailingBytes = 0

    private var version = VirtiofsdState.Version.v1
    private var inodes: [VirtiofsdState.Inode] = []
    private var handles: [VirtiofsdState.Handle] = []
    private var mountPaths: [VirtiofsdState.MountPath] = []
    /// Where inodes and handles go instead of the arrays, for ``finishCompact()``.
    private var compact: CompactVirtiofsdState?
    private var decodedInodes = 0
    private var decodedHandles = 0
    private var nextInode: UInt64 = 0
    private var nextHandle: UInt64 = 0
    private var options = VirtiofsdState.NegotiatedOptions(writeback: false, announceSubmounts: false, posixACL: false, supplementaryGroupExtension: false)

    /// A decoder for a payload of `totalLength` bytes, or of a length not
    /// known yet. With the length known, a count that the bytes left cannot
    /// hold is an error at once, as in a whole payload.
    public init(totalLength: Int? = nil) {
        self.totalLength = totalLength
    }

    /// A decoder that keeps what it decodes compact (``CompactVirtiofsdState``,
    /// about a quarter of the memory), to be ended with ``finishCompact()``.
    public init(compactWithTotalLength totalLength: Int?) {
        self.totalLength = totalLength
        compact = CompactVirtiofsdState()
    }

    /// The error that ended decoding, if one did (trailing bytes are known
    /// only at ``finish()``).
    public var error: VirtiofsdDecodingError? { failure }

    /// Whether the payload begins like a state (see
    /// ``VirtiofsdState/looksLikeState(_:)``), even if it then fails: to tell
    /// a damaged state from something else.
    public var beginsLikeState: Bool { VirtiofsdState.looksLikeState(prefix) }

    /// The payload's first bytes, enough for ``beginsLikeState`` (five varints).
    private var prefix: [UInt8] = []
    private static let prefixLength = 64

    /// Decodes what `bytes` complete.
    public mutating func feed(_ bytes: some Collection<UInt8>) {
        if prefix.count < Self.prefixLength { prefix += bytes.prefix(Self.prefixLength - prefix.count) }
        if case .trailingBytes? = failure?.reason {
            trailingBytes += bytes.count
            return
        }
        guard failure == nil, !bytes.isEmpty else { return }
        if case .done = part {
            trailingBytes = bytes.count
            stop(VirtiofsdDecodingError(.trailingBytes(trailingBytes), field: "", offset: pendingOffset))
            return
        }
        pending += bytes
        var reader = PostcardReader(pending, from: 0, base: pendingOffset, total: totalLength)
        do throws(VirtiofsdDecodingError) {
            while try decodeNext(&reader) {}
        } catch {
            if error.reason != .truncated { stop(error) }
        }
        if failure == nil { consume(upTo: reader.index) }
    }

    /// The state, once the payload has ended.
    ///
    /// - Throws: ``VirtiofsdDecodingError`` at the first malformed value, at
    ///   a value the payload ends inside, or for bytes after the state.
    public mutating func finish() throws(VirtiofsdDecodingError) -> VirtiofsdState {
        try complete()
        if let compact { return compact.state }
        return VirtiofsdState(
            version: version, inodes: inodes, nextInode: nextInode, handles: handles, nextHandle: nextHandle,
            options: options, mountPaths: mountPaths)
    }

    /// The state kept compact, once the payload has ended (for a decoder made
    /// with ``init(compactWithTotalLength:)``; another converts what it holds).
    ///
    /// - Throws: as ``finish()``.
    public mutating func finishCompact() throws(VirtiofsdDecodingError) -> CompactVirtiofsdState {
        try complete()
        var state = compact ?? CompactVirtiofsdState(
            VirtiofsdState(version: version, inodes: inodes, nextInode: nextInode, handles: handles, nextHandle: nextHandle, options: options))
        state.version = version
        state.nextInode = nextInode
        state.nextHandle = nextHandle
        state.options = options
        state.mountPaths = mountPaths
        return state
    }

    private mutating func complete() throws(VirtiofsdDecodingError) {
        if let failure {
            if case .trailingBytes = failure.reason { throw VirtiofsdDecodingError(.trailingBytes(trailingBytes), field: "", offset: failure.payloadOffset) }
            throw failure
        }
        if case .done = part {} else {
            // Decode once more with the end known: a value cut short is truncated.
            var reader = PostcardReader(pending, from: 0, base: pendingOffset, total: pendingOffset + pending.count)
            do throws(VirtiofsdDecodingError) {
                while try decodeNext(&reader) {}
            } catch {
                stop(error)
                throw error
            }
            consume(upTo: reader.index)
            if let failure { throw failure }
        }
    }

    /// Ends decoding: what was decoded is dropped.
    private mutating func stop(_ error: VirtiofsdDecodingError) {
        failure = error
        inodes = []
        handles = []
        mountPaths = []
        pending = []
        if compact != nil { compact = CompactVirtiofsdState() }
    }

    private mutating func consume(upTo index: Int) {
        pending.removeFirst(index)
        pendingOffset += index
        if case .done = part, !pending.isEmpty {
            trailingBytes = pending.count
            stop(VirtiofsdDecodingError(.trailingBytes(trailingBytes), field: "", offset: pendingOffset))
        }
    }

    /// Decodes the next value of the current part; false when the state is complete.
    private mutating func decodeNext(_ reader: inout PostcardReader) throws(VirtiofsdDecodingError) -> Bool {
        let start = reader
        do throws(VirtiofsdDecodingError) {
            switch part {
            case .header:
                let tagOffset = reader.offset
                let tag = try reader.u32("the version tag")
                guard let decoded = VirtiofsdState.Version(rawValue: tag) else {
                    throw VirtiofsdDecodingError(.unknownTag(tag), field: "the version tag", offset: tagOffset)
                }
                // An inode takes at least 4 bytes (id, refcount, location tag, option tag); a handle 4.
                let count = try reader.length("inodes", minimumElementSize: 4)
                version = decoded
                part = count > 0 ? .inodes(left: count) : .afterInodes
            case .inodes(let left):
                let inode = try Self.decodeInode(&reader, index: decodedInodes)
                if compact != nil { compact!.append(inode) } else { inodes.append(inode) }
                decodedInodes += 1
                part = left > 1 ? .inodes(left: left - 1) : .afterInodes
            case .afterInodes:
                let next = try reader.u64("next_inode")
                let count = try reader.length("handles", minimumElementSize: 4)
                nextInode = next
                part = count > 0 ? .handles(left: count) : .afterHandles
            case .handles(let left):
                let handle = try Self.decodeHandle(&reader, index: decodedHandles)
                if compact != nil { compact!.append(handle) } else { handles.append(handle) }
                decodedHandles += 1
                part = left > 1 ? .handles(left: left - 1) : .afterHandles
            case .afterHandles:
                let next = try reader.u64("next_handle")
                let decoded = VirtiofsdState.NegotiatedOptions(
                    writeback: try reader.bool("negotiated_opts.writeback"),
                    announceSubmounts: try reader.bool("negotiated_opts.announce_submounts"),
                    posixACL: try reader.bool("negotiated_opts.posix_acl"),
                    supplementaryGroupExtension: try reader.bool("negotiated_opts.sup_group_extension"))
                let count = version == .v2 ? try reader.length("mount_paths", minimumElementSize: 2) : 0
                nextHandle = next
                options = decoded
                part = count > 0 ? .mountPaths(left: count) : .done
            case .mountPaths(let left):
                let index = mountPaths.count
                let mountID = try reader.u64("mount_paths[\(index)].key")
                mountPaths.append(VirtiofsdState.MountPath(mountID: mountID, path: try reader.string("mount_paths[\(index)].value")))
                part = left > 1 ? .mountPaths(left: left - 1) : .done
            case .done:
                return false
            }
        } catch {
            if error.reason == .truncated { reader = start }
            throw error
        }
        return true
    }

    private static func decodeInode(_ reader: inout PostcardReader, index: Int) throws(VirtiofsdDecodingError) -> VirtiofsdState.Inode {
        let offset = reader.offset
        // Field names are formed only for an error (the reader's autoclosures).
        let id = try reader.u64("inodes[\(index)].id")
        let refcount = try reader.u64("inodes[\(index)].refcount")
        let tagOffset = reader.offset
        let location: VirtiofsdState.Location
        switch try reader.u32("inodes[\(index)].location") {
        case 0: location = .root
        case 1: location = .path(parent: try reader.u64("inodes[\(index)].location.parent"), name: try reader.string("inodes[\(index)].location.filename"))
        case 2: location = .invalid
        case 3: location = .fullPath(try reader.string("inodes[\(index)].location.filename"))
        case 4: location = .fileHandle(try decodeFileHandle(&reader, field: "inodes[\(index)].location.handle"))
        case let tag: throw VirtiofsdDecodingError(.unknownTag(tag), field: "inodes[\(index)].location", offset: tagOffset)
        }
        let fileHandle = try reader.optionTag("inodes[\(index)].file_handle") ? try decodeFileHandle(&reader, field: "inodes[\(index)].file_handle") : nil
        return VirtiofsdState.Inode(id: id, refcount: refcount, location: location, fileHandle: fileHandle, payloadOffset: offset)
    }

    private static func decodeHandle(_ reader: inout PostcardReader, index: Int) throws(VirtiofsdDecodingError) -> VirtiofsdState.Handle {
        let offset = reader.offset
        let id = try reader.u64("handles[\(index)].id")
        let inode = try reader.u64("handles[\(index)].inode")
        let sourceOffset = reader.offset
        let source = try reader.u32("handles[\(index)].source")
        guard source == 0 else {
            throw VirtiofsdDecodingError(.unknownTag(source), field: "handles[\(index)].source", offset: sourceOffset)
        }
        let flags = try reader.i32("handles[\(index)].flags")
        return VirtiofsdState.Handle(id: id, inode: inode, flags: flags, payloadOffset: offset)
    }

    private static func decodeFileHandle(_ reader: inout PostcardReader, field: String) throws(VirtiofsdDecodingError) -> VirtiofsdState.FileHandle {
        VirtiofsdState.FileHandle(
            mountID: try reader.u64("\(field).mnt_id"), handleType: try reader.i32("\(field).handle_type"),
            bytes: try reader.byteString("\(field).handle"))
    }
}
