/// The state virtiofsd (1.11 and later) migrates: one postcard-encoded
/// `PassthroughFs` value, V1 or V2, holding the inodes the guest has looked up
/// and the files it holds open.
///
/// Decode a payload with ``init(decoding:)``; ``encoded()`` writes it back
/// byte for byte.
public struct VirtiofsdState: Hashable, Sendable {
    /// The serialization format: the enum tag in byte 0.
    public enum Version: UInt32, Sendable, Codable {
        /// Written by virtiofsd 1.11.
        case v1 = 0
        /// Written since 1.12: V1 and a map of mount ids to paths.
        case v2 = 1

        /// The number in the format's name: 1 for V1, 2 for V2 (the tag is one less).
        public var number: UInt32 { rawValue + 1 }
    }

    /// A file handle as `name_to_handle_at` gives it.
    public struct FileHandle: Hashable, Sendable {
        /// The mount id of the file system holding the file, on the source.
        public var mountID: UInt64
        /// The handle's type (`handle_type`).
        public var handleType: Int32
        /// The handle's opaque bytes (`f_handle`).
        public var bytes: [UInt8]

        /// A file handle from its fields.
        public init(mountID: UInt64, handleType: Int32, bytes: [UInt8]) {
            self.mountID = mountID
            self.handleType = handleType
            self.bytes = bytes
        }
    }

    /// How the destination finds an inode.
    public enum Location: Hashable, Sendable {
        /// The shared directory itself (tag 0).
        case root
        /// A name in a parent directory inode (tag 1).
        case path(parent: UInt64, name: String)
        /// The source had lost the inode (tag 2).
        case invalid
        /// A path relative to the shared directory (tag 3; virtiofsd 1.11 only).
        case fullPath(String)
        /// A file handle (tag 4, `--migration-mode=file-handles`).
        case fileHandle(FileHandle)

        /// The kinds of location, in tag order, with their names in reports.
        public enum Kind: String, CaseIterable, Sendable {
            /// ``VirtiofsdState/Location/root``.
            case root
            /// ``VirtiofsdState/Location/path(parent:name:)``.
            case path
            /// ``VirtiofsdState/Location/invalid``.
            case invalid
            /// ``VirtiofsdState/Location/fullPath(_:)``.
            case fullPath = "full-path"
            /// ``VirtiofsdState/Location/fileHandle(_:)``.
            case fileHandle = "file-handle"
        }

        /// Which kind of location this is.
        public var kind: Kind {
            switch self {
            case .root: return .root
            case .path: return .path
            case .invalid: return .invalid
            case .fullPath: return .fullPath
            case .fileHandle: return .fileHandle
            }
        }
    }

    /// An inode the guest has looked up and not yet forgotten.
    public struct Inode: Hashable, Sendable {
        /// The inode's id, as the guest knows it (FUSE's node id).
        public var id: UInt64
        /// How many lookups of it the guest has not forgotten yet.
        public var refcount: UInt64
        /// How the destination finds it.
        public var location: Location
        /// The file handle to verify against (`--migration-verify-handles`).
        public var fileHandle: FileHandle?
        /// Where the inode starts in the payload.
        public var payloadOffset: Int

        /// An inode from its fields.
        public init(id: UInt64, refcount: UInt64, location: Location, fileHandle: FileHandle? = nil, payloadOffset: Int = 0) {
            self.id = id
            self.refcount = refcount
            self.location = location
            self.fileHandle = fileHandle
            self.payloadOffset = payloadOffset
        }
    }

    /// A file the guest holds open.
    public struct Handle: Hashable, Sendable {
        /// The handle's id, as the guest knows it (FUSE's `fh`).
        public var id: UInt64
        /// The id of the inode it is open on.
        public var inode: UInt64
        /// The open(2) flags (source `OpenInode`, the only kind).
        public var flags: Int32
        /// Where the handle starts in the payload.
        public var payloadOffset: Int

        /// A handle from its fields.
        public init(id: UInt64, inode: UInt64, flags: Int32, payloadOffset: Int = 0) {
            self.id = id
            self.inode = inode
            self.flags = flags
            self.payloadOffset = payloadOffset
        }
    }

    /// What the source negotiated with the guest.
    public struct NegotiatedOptions: Hashable, Sendable, Codable {
        /// Writeback caching (`FUSE_WRITEBACK_CACHE`).
        public var writeback: Bool
        /// Submounts announced to the guest (`FUSE_SUBMOUNTS`).
        public var announceSubmounts: Bool
        /// POSIX ACLs (`FUSE_POSIX_ACL`).
        public var posixACL: Bool
        /// The supplementary group extension (`FUSE_CREATE_SUPP_GROUP`).
        public var supplementaryGroupExtension: Bool

        /// Options from their four flags.
        public init(writeback: Bool, announceSubmounts: Bool, posixACL: Bool, supplementaryGroupExtension: Bool) {
            self.writeback = writeback
            self.announceSubmounts = announceSubmounts
            self.posixACL = posixACL
            self.supplementaryGroupExtension = supplementaryGroupExtension
        }
    }

    /// One entry of V2's mount-path map: a source mount id and a path relative
    /// to the shared directory.
    public struct MountPath: Hashable, Sendable {
        /// The mount id, on the source.
        public var mountID: UInt64
        /// The mount's path, relative to the shared directory.
        public var path: String

        /// An entry from its mount id and path.
        public init(mountID: UInt64, path: String) {
            self.mountID = mountID
            self.path = path
        }
    }

    /// Which serialization the source wrote.
    public var version: Version
    /// In payload order (ascending ids).
    public var inodes: [Inode]
    /// The id the source would give its next inode.
    public var nextInode: UInt64
    /// In payload order (ascending ids).
    public var handles: [Handle]
    /// The id the source would give its next handle.
    public var nextHandle: UInt64
    /// What the source negotiated with the guest.
    public var options: NegotiatedOptions
    /// V2's map in payload order (random: compare it as a set); empty for V1.
    public var mountPaths: [MountPath]

    /// A state from its parts; `mountPaths` is V2's only.
    public init(
        version: Version, inodes: [Inode], nextInode: UInt64, handles: [Handle], nextHandle: UInt64,
        options: NegotiatedOptions, mountPaths: [MountPath] = []
    ) {
        self.version = version
        self.inodes = inodes
        self.nextInode = nextInode
        self.handles = handles
        self.nextHandle = nextHandle
        self.options = options
        self.mountPaths = mountPaths
    }

    /// The id of the root inode (`fuse::ROOT_ID`).
    public static let rootID: UInt64 = 1
}

// MARK: - Decoding

extension VirtiofsdState {
    /// Decodes a whole payload (``VirtiofsdStateDecoder`` decodes one as it arrives).
    ///
    /// - Throws: ``VirtiofsdDecodingError`` at the first malformed value, or
    ///   for bytes after the state.
    public init(decoding payload: [UInt8]) throws(VirtiofsdDecodingError) {
        var decoder = VirtiofsdStateDecoder(totalLength: payload.count)
        decoder.feed(payload)
        self = try decoder.finish()
    }

    /// Whether `payload` looks like a virtiofsd state (without decoding it):
    /// byte 0 is a version tag, and the first inode, if any, is the root.
    public static func looksLikeState(_ payload: [UInt8]) -> Bool {
        var reader = PostcardReader(payload)
        guard let tag = try? reader.u32(""), Version(rawValue: tag) != nil,
            let count = try? reader.u64(""), count > 0,
            let id = try? reader.u64(""), id == rootID,
            (try? reader.u64("")) != nil,
            let location = try? reader.u32("")
        else { return false }
        return location == 0
    }
}

// MARK: - Encoding

extension VirtiofsdState {
    /// The postcard encoding, as virtiofsd writes it (minimal varints).
    public func encoded() -> [UInt8] {
        var writer = PostcardWriter()
        writer.u64(UInt64(version.rawValue))
        writer.u64(UInt64(inodes.count))
        for inode in inodes { Self.encode(inode, into: &writer) }
        writer.u64(nextInode)
        writer.u64(UInt64(handles.count))
        for handle in handles { Self.encode(handle, into: &writer) }
        writer.u64(nextHandle)
        writer.bool(options.writeback)
        writer.bool(options.announceSubmounts)
        writer.bool(options.posixACL)
        writer.bool(options.supplementaryGroupExtension)
        if version == .v2 {
            writer.u64(UInt64(mountPaths.count))
            for entry in mountPaths {
                writer.u64(entry.mountID)
                writer.string(entry.path)
            }
        }
        return writer.bytes
    }

    /// The bytes one inode takes in ``encoded()``.
    public static func encoded(_ inode: Inode) -> [UInt8] {
        var writer = PostcardWriter()
        encode(inode, into: &writer)
        return writer.bytes
    }

    /// The bytes one handle takes in ``encoded()``.
    public static func encoded(_ handle: Handle) -> [UInt8] {
        var writer = PostcardWriter()
        encode(handle, into: &writer)
        return writer.bytes
    }

    static func encode(_ inode: Inode, into writer: inout PostcardWriter) {
        writer.u64(inode.id)
        writer.u64(inode.refcount)
        switch inode.location {
        case .root: writer.u64(0)
        case .path(let parent, let name):
            writer.u64(1)
            writer.u64(parent)
            writer.string(name)
        case .invalid: writer.u64(2)
        case .fullPath(let path):
            writer.u64(3)
            writer.string(path)
        case .fileHandle(let handle):
            writer.u64(4)
            encode(handle, into: &writer)
        }
        writer.bool(inode.fileHandle != nil)
        if let handle = inode.fileHandle { encode(handle, into: &writer) }
    }

    static func encode(_ handle: Handle, into writer: inout PostcardWriter) {
        writer.u64(handle.id)
        writer.u64(handle.inode)
        writer.u64(0)  // source: OpenInode
        writer.i32(handle.flags)
    }

    /// The state with every payload offset zeroed: what it says, not where it was read.
    public var content: VirtiofsdState {
        var copy = self
        for index in copy.inodes.indices { copy.inodes[index].payloadOffset = 0 }
        for index in copy.handles.indices { copy.handles[index].payloadOffset = 0 }
        return copy
    }

    private static func encode(_ handle: FileHandle, into writer: inout PostcardWriter) {
        writer.u64(handle.mountID)
        writer.i32(handle.handleType)
        writer.byteString(handle.bytes)
    }
}
