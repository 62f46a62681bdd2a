import VirtiofsdState

/// Stable pseudonyms for the names of a share: every file and directory name
/// a state holds becomes `n1`, `n2`, ... in the order the state first names
/// it (deterministic for a state), and the shared directory's path becomes
/// ``sharedDirectoryPseudonym``. The same name always gets the same
/// pseudonym, so the state, the logs and the report of a bundle still agree.
///
/// Text is rewritten by whole names: a run of name characters (letters,
/// digits, `.`, `_`, `-`, and anything beyond ASCII) equal to a name of the
/// share is replaced, as is every occurrence of a name holding other
/// characters (a space, say) and of the shared directory's path. A name that
/// is also a word the diagnosis reads logs by (`state`, `Opening`, `Inode`:
/// ``LogMessage/vocabulary``) is replaced in a path, and kept where it stands
/// alone, so that `Failed to load state` still says so when the share holds a
/// file named `state`.
public struct Pseudonyms: Sendable {
    /// What the shared directory's path becomes.
    public static let sharedDirectoryPseudonym = "/shared-directory"

    /// Each name and its pseudonym.
    public private(set) var names: [String: String] = [:]
    /// The shared directory's path, replaced wherever it appears; `nil` when none.
    public let sharedDirectory: String?
    /// Names holding characters outside a name run, longest first (replaced literally).
    private var literalNames: [String] = []

    /// Pseudonyms for the names `state` holds, and for `sharedDirectory`.
    public init(state: VirtiofsdState?, sharedDirectory: String?) {
        self.sharedDirectory = sharedDirectory.map { $0.count > 1 && $0.hasSuffix("/") ? String($0.dropLast()) : $0 }
        for inode in state?.inodes ?? [] {
            switch inode.location {
            case .path(_, let name): add(name)
            case .fullPath(let path): add(path: path)
            default: break
            }
        }
        for mount in state?.mountPaths ?? [] { add(path: mount.path) }
    }

    /// Gives `name` a pseudonym if it has none; returns it.
    @discardableResult
    public mutating func add(_ name: String) -> String {
        if let known = names[name] { return known }
        let pseudonym = "n\(names.count + 1)"
        names[name] = pseudonym
        if !name.unicodeScalars.allSatisfy(Self.isNameCharacter) {
            literalNames.append(name)
            literalNames.sort { $0.count > $1.count }
        }
        return pseudonym
    }

    /// Gives each component of `path` (relative to the share) a pseudonym.
    public mutating func add(path: String) {
        for component in path.split(separator: "/") where component != "." && component != ".." { add(String(component)) }
    }

    /// `name`'s pseudonym, or `name` when it is no name of the share.
    public func pseudonym(for name: String) -> String { names[name] ?? name }

    /// The state with every name replaced by its pseudonym (ids, refcounts,
    /// file handles, handles and flags kept).
    public func apply(to state: VirtiofsdState) -> VirtiofsdState {
        var renamed = state
        renamed.inodes = state.inodes.map { inode in
            var inode = inode
            switch inode.location {
            case .path(let parent, let name): inode.location = .path(parent: parent, name: pseudonym(for: name))
            case .fullPath(let path):
                inode.location = .fullPath(pseudonymised(path: path))
            default: break
            }
            return inode
        }
        renamed.mountPaths = state.mountPaths.map { mount in
            var mount = mount
            mount.path = pseudonymised(path: mount.path)
            return mount
        }
        return renamed
    }

    /// `path` (relative to the share) with each component replaced by its pseudonym.
    func pseudonymised(path: String) -> String {
        path.split(separator: "/", omittingEmptySubsequences: false).map { pseudonym(for: String($0)) }.joined(separator: "/")
    }

    /// `text` with the shared directory's path and every name of the share replaced.
    public func apply(to text: String) -> String {
        var text = text
        if let sharedDirectory, sharedDirectory.count > 1 {
            text = text.replacing(sharedDirectory, with: Self.sharedDirectoryPseudonym)
        }
        for name in literalNames where name.count > 0 {
            text = text.replacing(name, with: names[name]!)
        }
        var result: [Unicode.Scalar] = []
        var run = String.UnicodeScalarView()
        var lastReplacementEnd = -2
        func flush(before next: Unicode.Scalar?) {
            guard !run.isEmpty else { return }
            let word = String(run)
            run.removeAll(keepingCapacity: true)
            let inPath = result.last == "/" || next == "/"
            guard let pseudonym = names[word], inPath || !LogMessage.vocabulary.contains(word) else {
                result.append(contentsOf: word.unicodeScalars)
                return
            }
            // The first name of the share in an absolute path: what comes
            // before it is a shared directory (the source's, as a log names it).
            if result.last == "/", result.count != lastReplacementEnd + 1 {
                var start = result.count - 1
                while start > 0, !Self.endsPath(result[start - 1]) { start -= 1 }
                if result[start] == "/" {
                    result.removeSubrange(start...)
                    result.append(contentsOf: (Self.sharedDirectoryPseudonym + "/").unicodeScalars)
                }
            }
            result.append(contentsOf: pseudonym.unicodeScalars)
            lastReplacementEnd = result.count
        }
        for scalar in text.unicodeScalars {
            if Self.isNameCharacter(scalar) {
                run.append(scalar)
            } else {
                flush(before: scalar)
                result.append(scalar)
            }
        }
        flush(before: nil)
        var view = String.UnicodeScalarView()
        view.append(contentsOf: result)
        return String(view)
    }

    /// Whether `scalar` ends a path in text (white space, quotes, brackets, `,`, `:`, `=`).
    static func endsPath(_ scalar: Unicode.Scalar) -> Bool {
        scalar.properties.isWhitespace || "\"'()[]{}<>,:;=`".unicodeScalars.contains(scalar)
    }

    /// Whether `scalar` continues a name run.
    static func isNameCharacter(_ scalar: Unicode.Scalar) -> Bool {
        switch scalar {
        case "a"..."z", "A"..."Z", "0"..."9", ".", "_", "-": return true
        default: return scalar.value > 0x7f
        }
    }
}
