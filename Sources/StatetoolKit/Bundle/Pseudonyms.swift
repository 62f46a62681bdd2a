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
/// characters (a space, say) and of the shared directory's path.
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
                inode.location = .fullPath(path.split(separator: "/", omittingEmptySubsequences: false).map { pseudonym(for: String($0)) }.joined(separator: "/"))
            default: break
            }
            return inode
        }
        return renamed
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
        var result = String.UnicodeScalarView()
        var run = String.UnicodeScalarView()
        func flush() {
            if !run.isEmpty {
                let word = String(run)
                result.append(contentsOf: (names[word] ?? word).unicodeScalars)
                run.removeAll(keepingCapacity: true)
            }
        }
        for scalar in text.unicodeScalars {
            if Self.isNameCharacter(scalar) {
                run.append(scalar)
            } else {
                flush()
                result.append(scalar)
            }
        }
        flush()
        return String(result)
    }

    /// Whether `scalar` continues a name run.
    static func isNameCharacter(_ scalar: Unicode.Scalar) -> Bool {
        switch scalar {
        case "a"..."z", "A"..."Z", "0"..."9", ".", "_", "-": return true
        default: return scalar.value > 0x7f
        }
    }
}
