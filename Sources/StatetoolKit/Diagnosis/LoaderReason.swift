/// Why virtiofsd's loader refused an inode, a handle or the whole state, read
/// from its words (`device_state/deserialization.rs`, virtiofsd 1.13).
public indirect enum LoaderReason: Hashable, Sendable {
    /// `Inode N: Opening PATH: ERROR`, or in a guest-error line `Opening PATH:
    /// ERROR`: the inode's path could not be opened on the destination.
    case openFailed(inode: UInt64?, path: String, error: String)
    /// `Inode N is not the same inode as in the migration source: File handle
    /// differs` (`--migration-verify-handles`).
    case fileHandleDiffers(inode: UInt64)
    /// `Inode N: Opening file handle: ERROR`: a file-handle inode could not be
    /// opened (without `CAP_DAC_READ_SEARCH`: `Operation not permitted`).
    case fileHandleOpenFailed(inode: UInt64, error: String)
    /// `Opening inode N (PATH) as handle M: ERROR`: an open file could not be reopened.
    case handleReopenFailed(handle: UInt64, inode: UInt64, path: String, error: String)
    /// `Inode N: ERROR` without a path: seen as `Too many open files in
    /// system (os error 23)` when the guest's descriptors run out.
    case inodeFailed(inode: UInt64, error: String)
    /// `Unresolved references between serialized inodes`.
    case unresolvedReferences
    /// `Migration source wants OPTION enabled, but it is disabled on the destination`.
    case optionDisabled(String)
    /// `Inode is invalid because of an error during the preceding migration,
    /// which was: REASON`: invalid because its parent is.
    case parentInvalid(LoaderReason)
    /// `Migration source has lost inode N`.
    case lostOnSource(inode: UInt64)
    /// Words no rule reads.
    case other(String)

    /// The reason `text` gives.
    public init(_ text: String) {
        var rest = Substring(text)
        if rest.hasPrefix("Failed to load state: ") { rest = rest.dropFirst("Failed to load state: ".count) }
        let nested = "Inode is invalid because of an error during the preceding migration, which was: "
        if rest.hasPrefix(nested) {
            self = .parentInvalid(LoaderReason(String(rest.dropFirst(nested.count))))
            return
        }
        if let wanted = rest.text(after: "Migration source wants "), let end = wanted.firstRange(of: " enabled"),
            rest.contains("but it is disabled on the destination")
        {
            let option = String(wanted[..<end.lowerBound])
            self = .optionDisabled(option == "posix ACLs" ? "posix-acl" : option)
            return
        }
        if rest.hasPrefix("Unresolved references between serialized inodes") {
            self = .unresolvedReferences
            return
        }
        if let lost = rest.text(after: "Migration source has lost inode ")?.leadingNumber {
            self = .lostOnSource(inode: lost)
            return
        }
        if rest.hasPrefix("Opening inode "), let asHandle = rest.firstRange(of: " as handle ") {
            // `Opening inode N (PATH) as handle M: ERROR`; in a guest-error
            // line `Opening inode N as handle M: REASON` for an invalid inode.
            let head = rest[rest.index(rest.startIndex, offsetBy: "Opening inode ".count)..<asHandle.lowerBound]
            var path = ""
            if let open = head.firstIndex(of: "("), head.hasSuffix(")") {
                path = String(head[head.index(after: open)..<head.index(before: head.endIndex)])
            }
            let tail = rest[asHandle.upperBound...]
            if let handle = tail.leadingNumber, let colon = tail.firstRange(of: ": ") {
                let error = String(tail[colon.upperBound...])
                let nested = LoaderReason(error)
                if case .other = nested {
                    self = .handleReopenFailed(handle: handle, inode: head.leadingNumber ?? 0, path: path, error: error)
                } else {
                    self = .parentInvalid(nested)
                }
                return
            }
        }
        var inode: UInt64?
        if rest.hasPrefix("Inode "), let id = rest.dropFirst("Inode ".count).leadingNumber {
            inode = id
            let afterID = rest.dropFirst("Inode ".count + String(id).count)
            if afterID.contains("is not the same inode as in the migration source") {
                self = .fileHandleDiffers(inode: id)
                return
            }
            if afterID.hasPrefix(": ") { rest = afterID.dropFirst(2) }
        }
        if let inode, let error = rest.text(after: "Opening file handle: ") {
            self = .fileHandleOpenFailed(inode: inode, error: error)
            return
        }
        if rest.hasPrefix("Opening "), let colon = rest.firstRange(of: ": ") {
            self = .openFailed(inode: inode, path: String(rest[rest.index(rest.startIndex, offsetBy: 8)..<colon.lowerBound]), error: String(rest[colon.upperBound...]))
            return
        }
        if let inode, rest.contains("(os error ") {
            self = .inodeFailed(inode: inode, error: String(rest))
            return
        }
        self = .other(text)
    }

    /// The reason at the end of a chain of invalid parents.
    public var root: LoaderReason {
        if case .parentInvalid(let reason) = self { return reason.root }
        return self
    }

    /// The `errno` virtiofsd printed (`... (os error N)`), if any.
    public var errorNumber: Int32? {
        let error: String
        switch root {
        case .openFailed(_, _, let text), .fileHandleOpenFailed(_, let text), .handleReopenFailed(_, _, _, let text), .inodeFailed(_, let text):
            error = text
        default: return nil
        }
        guard let number = error.text(after: "(os error ")?.leadingNumber else { return nil }
        return Int32(truncatingIfNeeded: number)
    }
}
