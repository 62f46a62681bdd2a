import SystemCalls
import VirtiofsdState

/// Stable pseudonyms for the names of a share: every file and directory name
/// a state holds becomes `n1`, `n2`, ... in the order the state first names
/// it (deterministic for a state), and the shared directory's path becomes
/// ``sharedDirectoryPseudonym``. The same name always gets the same
/// pseudonym, so the state, the logs and the report of a bundle still agree.
///
/// Text is rewritten by whole names: a run of name characters (letters,
/// digits, `.`, `_`, `-`, and anything beyond ASCII) equal to a name of the
/// share is replaced, as is a name holding other characters (a space, say)
/// wherever it stands whole, and the shared directory's path (as given and
/// resolved) wherever it stands as a path. In a log (``Text/log``), a name
/// that is also a word the diagnosis reads logs by (`state`, `Opening`:
/// ``LogMessage/vocabulary``) or a number is replaced in a path and kept
/// where it stands alone as a word of a sentence, so that `Failed to load
/// state: Inode 12` still says so when the share holds files named `state`
/// and `12`; in every other text it is replaced wherever it stands.
///
/// The cost is linear in the text: names with other characters are found
/// through their first run of name characters.
public struct Pseudonyms: Sendable {
    /// What the shared directory's path becomes.
    public static let sharedDirectoryPseudonym = "/shared-directory"

    /// What a text is, for the words a log keeps.
    public enum Text: Sendable {
        /// A report: every name replaced wherever it stands.
        case report
        /// A log: words the diagnosis reads logs by, and numbers, kept where they stand alone.
        case log
    }

    /// Each name and its pseudonym.
    public private(set) var names: [String: String] = [:]
    /// The shared directory's path, replaced wherever it appears; `nil` when none.
    public let sharedDirectory: String?
    /// The shared directory's path as given and as resolved (absolute ones only).
    private let sharedDirectoryForms: [[Unicode.Scalar]]
    /// Names holding characters outside a name run, by their first run of
    /// name characters: the name's scalars and where that run starts in it.
    private var literalNames: [String: [(name: [Unicode.Scalar], runStart: Int)]] = [:]
    /// Names without any name character (`()`), replaced literally.
    private var unrunnableNames: [String] = []

    /// Pseudonyms for the names `state` holds, and for `sharedDirectory`
    /// (also matched as resolved: `realpath`).
    public init(state: VirtiofsdState?, sharedDirectory: String?) {
        let given = sharedDirectory.map { $0.count > 1 && $0.hasSuffix("/") ? String($0.dropLast()) : $0 }
        self.sharedDirectory = given
        var forms: [String] = []
        if let given, given.hasPrefix("/"), given.count > 1 { forms.append(given) }
        if let given, let directory = try? Files.openPathDirectory(given), let resolved = try? Files.location(of: directory.descriptor),
            resolved.count > 1, !forms.contains(resolved)
        {
            forms.append(resolved)
        }
        sharedDirectoryForms = forms.sorted { $0.count > $1.count }.map { Array($0.unicodeScalars) }
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
        let scalars = Array(name.unicodeScalars)
        if !scalars.allSatisfy(Self.isNameCharacter) {
            if let runStart = scalars.firstIndex(where: Self.isNameCharacter) {
                var runEnd = runStart
                while runEnd < scalars.count, Self.isNameCharacter(scalars[runEnd]) { runEnd += 1 }
                literalNames[Self.string(scalars[runStart..<runEnd]), default: []].append((scalars, runStart))
            } else if !name.isEmpty {
                unrunnableNames.append(name)
            }
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
    public func apply(to text: String, as kind: Text = .report) -> String {
        var input = text
        for name in unrunnableNames where input.contains(name) { input = input.replacing(name, with: names[name]!) }
        let scalars = Array(input.unicodeScalars)
        var result: [Unicode.Scalar] = []
        result.reserveCapacity(scalars.count)
        /// Where in `result` the last replacement ended, and in `scalars` where the text after it starts.
        var lastReplacementEnd = -2
        var verbatimFrom = 0
        var index = 0
        while index < scalars.count {
            // The shared directory's path, as a whole path.
            if scalars[index] == "/", index == 0 || !Self.isNameCharacter(scalars[index - 1]),
                let form = sharedDirectoryForms.first(where: { Self.matches($0, in: scalars, at: index) })
            {
                result.append(contentsOf: Self.sharedDirectoryPseudonym.unicodeScalars)
                index += form.count
                lastReplacementEnd = result.count
                verbatimFrom = index
                continue
            }
            guard Self.isNameCharacter(scalars[index]) else {
                result.append(scalars[index])
                index += 1
                continue
            }
            var end = index
            while end < scalars.count, Self.isNameCharacter(scalars[end]) { end += 1 }
            let word = Self.string(scalars[index..<end])
            // A name with other characters, whose first run this word is.
            if let literal = literalMatch(word, runAt: index, in: scalars, notBefore: verbatimFrom) {
                result.removeLast(index - literal.start)
                Self.replacePathPrefix(in: &result, lastReplacementEnd: lastReplacementEnd)
                result.append(contentsOf: names[literal.name]!.unicodeScalars)
                index = literal.end
                lastReplacementEnd = result.count
                verbatimFrom = index
                continue
            }
            let before: Unicode.Scalar? = index > 0 ? scalars[index - 1] : nil
            let after: Unicode.Scalar? = end < scalars.count ? scalars[end] : nil
            let inPath = before == "/" || after == "/"
            let keptAsWord = kind == .log && !inPath && Self.standsAsWord(before: before, after: after)
                && (LogMessage.vocabulary.contains(word) || word.unicodeScalars.allSatisfy { ("0"..."9").contains($0) })
            guard let pseudonym = names[word], !keptAsWord else {
                result.append(contentsOf: scalars[index..<end])
                index = end
                continue
            }
            Self.replacePathPrefix(in: &result, lastReplacementEnd: lastReplacementEnd)
            result.append(contentsOf: pseudonym.unicodeScalars)
            lastReplacementEnd = result.count
            verbatimFrom = end
            index = end
        }
        var view = String.UnicodeScalarView()
        view.append(contentsOf: result)
        return String(view)
    }

    /// Before the first name of the share in an absolute path (`result` ends
    /// with its `/`, no replacement just before): what comes before it is a
    /// shared directory (the source's, as a log names it), replaced.
    private static func replacePathPrefix(in result: inout [Unicode.Scalar], lastReplacementEnd: Int) {
        guard result.last == "/", result.count != lastReplacementEnd + 1 else { return }
        var start = result.count - 1
        while start > 0, !endsPath(result[start - 1]) { start -= 1 }
        if result[start] == "/" {
            result.removeSubrange(start...)
            result.append(contentsOf: (sharedDirectoryPseudonym + "/").unicodeScalars)
        }
    }

    /// The longest name with other characters whose first run is `word` at
    /// `runAt` and that stands whole in `scalars` (no name character
    /// touching it), starting at or after `notBefore`.
    private func literalMatch(
        _ word: String, runAt: Int, in scalars: [Unicode.Scalar], notBefore: Int
    ) -> (name: String, start: Int, end: Int)? {
        guard let candidates = literalNames[word] else { return nil }
        var best: (name: String, start: Int, end: Int)?
        for (name, runStart) in candidates {
            let start = runAt - runStart
            let end = start + name.count
            guard start >= notBefore, end <= scalars.count, end - start > (best.map { $0.end - $0.start } ?? 0),
                start == 0 || !Self.isNameCharacter(scalars[start - 1]) || !Self.isNameCharacter(name[0]),
                end == scalars.count || !Self.isNameCharacter(scalars[end]) || !Self.isNameCharacter(name[name.count - 1]),
                scalars[start..<end].elementsEqual(name)
            else { continue }
            best = (Self.string(name[...]), start, end)
        }
        return best
    }

    /// Whether `form` is at `index` in `scalars`, ending a path there (at its end, a `/` or no name character).
    private static func matches(_ form: [Unicode.Scalar], in scalars: [Unicode.Scalar], at index: Int) -> Bool {
        let end = index + form.count
        guard end <= scalars.count, scalars[index..<end].elementsEqual(form) else { return false }
        return end == scalars.count || scalars[end] == "/" || !isNameCharacter(scalars[end])
    }

    /// Whether a word between `before` and `after` stands as a word of a
    /// sentence: white space or the line's start before it, white space,
    /// `:`, `,`, `.` or the end after it.
    private static func standsAsWord(before: Unicode.Scalar?, after: Unicode.Scalar?) -> Bool {
        let opens = before.map { $0.properties.isWhitespace || $0 == "[" } ?? true
        let closes = after.map { $0.properties.isWhitespace || ":,.".unicodeScalars.contains($0) } ?? true
        return opens && closes
    }

    private static func string(_ scalars: ArraySlice<Unicode.Scalar>) -> String {
        var view = String.UnicodeScalarView()
        view.append(contentsOf: scalars)
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
