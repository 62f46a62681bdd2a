import Crypto
import FoundationEssentials
import MigrationFile
import StateStream
import SystemCalls
import SystemPackage
import VirtiofsdState

/// A forensic bundle of a diagnosis, to attach to a bug report: a zstd
/// stream of a ustar archive whose first member is `manifest.json`, then
/// `share-check.json` (what checking the share found), `diagnosis.json`, the
/// back-end state (`state/virtiofsd.state`) and the logs (`logs/N-NAME`).
///
/// Every file and directory name of the share, and the shared directory's
/// path, is replaced by a ``Pseudonyms`` pseudonym in every member: the
/// state is re-encoded with the names replaced (ids, refcounts, file
/// handles, handles and flags kept) and re-framed; the logs, the diagnosis
/// and the share check are rewritten text. No guest RAM is in it: of a
/// migration file or save image only the back-end state is kept.
///
/// Logs: the last attempt of each (from its start marker to the end, as
/// ``LogAttempt`` finds it), at most ``logLimit`` bytes (its last ones).
/// The manifest records the SHA-256 of every original input, whole.
public enum DiagnosisBundle {
    /// The first member, by which a bundle is recognised.
    public static let manifestName = "manifest.json"
    /// The recorded share check.
    public static let shareCheckName = "share-check.json"
    /// The diagnosis, as `diagnose --json` prints it, pseudonymised.
    public static let diagnosisName = "diagnosis.json"
    /// The back-end state, pseudonymised and re-framed.
    public static let stateName = "state/virtiofsd.state"
    /// The most of each log's last attempt kept (its last bytes).
    public static let logLimit: UInt64 = 4 << 20
    /// The most a JSON member is read.
    static let jsonLimit: UInt64 = 16 << 20
    /// What the manifest says about the logs.
    static let logPolicy = "the last attempt of each log (from its start marker to its end), at most its last 4 MiB"

    /// `manifest.json`.
    public struct Manifest: Codable, Hashable, Sendable {
        /// One original input.
        public struct Original: Codable, Hashable, Sendable {
            /// `file` or `log`.
            public var role: String
            /// Its path as given, pseudonymised.
            public var path: String
            /// Its size in bytes.
            public var size: UInt64
            /// The SHA-256 of its bytes, lowercase hex.
            public var sha256: String
            /// The bundle member made from it; `nil` when none (a file without a state).
            public var member: String?
        }

        /// One device section of a migration file or save image, kept as
        /// `sections/ID-NAME.bin`: its body between header and footer, any
        /// back-end state stream inside it left out (it is the state member).
        public struct Section: Codable, Hashable, Sendable {
            /// The member holding its body.
            public var member: String
            /// Its section id.
            public var id: UInt32
            /// Its name (idstr).
            public var name: String
            /// Its instance id.
            public var instanceID: UInt32
            /// Its version.
            public var version: UInt32
            /// The file offset of its header.
            public var sectionOffset: UInt64
            /// The file offset of its body's first byte.
            public var offset: UInt64
            /// The file ranges left out of the body (back-end state streams), `[start, end]` each.
            public var elided: [[UInt64]]
            /// Whether the body is whole.
            public var complete: Bool
        }

        /// The statetool version that made the bundle.
        public var statetoolVersion: String
        /// The device whose state is bundled; `nil` when nothing named it.
        public var device: String?
        /// The shared directory's pseudonym; `nil` when no share was checked.
        public var sharedDirectory: String?
        /// The diagnosis' verdict.
        public var verdict: String
        /// How many names were given pseudonyms.
        public var pseudonyms: Int
        /// What is kept of each log.
        public var logs: String
        /// The original inputs.
        public var originals: [Original]
        /// The device sections kept (no RAM: only the file's device sections are read).
        public var sections: [Section]
        /// The VM description member (`sections/vmdesc.json`); `nil` when the file has none.
        public var description: String?

        private enum CodingKeys: String, CodingKey {
            case statetoolVersion, device, sharedDirectory, verdict, pseudonyms, logs, originals, sections, description
        }

        /// Encodes every key, absent values as `null`.
        public func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(statetoolVersion, forKey: .statetoolVersion)
            try container.encode(device, forKey: .device)
            try container.encode(sharedDirectory, forKey: .sharedDirectory)
            try container.encode(verdict, forKey: .verdict)
            try container.encode(pseudonyms, forKey: .pseudonyms)
            try container.encode(logs, forKey: .logs)
            try container.encode(originals, forKey: .originals)
            try container.encode(sections, forKey: .sections)
            try container.encode(description, forKey: .description)
        }
    }

    /// Why a bundle cannot be written or read.
    public enum Failure: Error, Sendable, CustomStringConvertible {
        /// An input cannot be read.
        case input(path: String, String)
        /// The output cannot be written.
        case output(OutputError)
        /// The bundle is not one statetool reads.
        case malformed(path: String, TarArchiveError)

        /// `PATH: error: ...`.
        public var description: String {
            switch self {
            case .input(let path, let message): return "\(path): error: \(message)"
            case .output(let error): return "\(error)"
            case .malformed(let path, let error): return "\(path): error: not a statetool bundle: \(error)"
            }
        }
    }

    /// What writing a bundle did.
    public struct Written: Sendable {
        /// The manifest written.
        public let manifest: Manifest
        /// The members, in order.
        public let members: [String]
        /// The bundle's size in bytes.
        public let size: UInt64
    }

    /// Writes the bundle of `diagnosis`, made from `request`, to `path`
    /// (a temporary file committed only when everything is written).
    ///
    /// - Throws: ``Failure`` when an input cannot be read or the output written.
    public static func write(_ diagnosis: Diagnosis, request: DiagnosisRequest, to path: String, statetoolVersion: String) throws(Failure) -> Written {
        try checkInputs(of: request)
        // The state, as diagnose loaded it.
        var state: VirtiofsdState?
        if let file = request.file, let input = try? Input.open(file) {
            var ignored = CauseList()
            if case .loaded(_, let loaded) = Diagnosis.loadState(input, file: file, device: request.device, strategy: request.strategy, causes: &ignored) {
                state = loaded
            }
        }
        var pseudonyms = Pseudonyms(state: state, sharedDirectory: diagnosis.sharedDirectory)
        for rename in diagnosis.shareCheck?.renames ?? [] { pseudonyms.add(path: rename.new) }
        // Files that file handles open outside the share, and the folder they are under:
        // named by the kernel, not by the state, so every component gets a pseudonym.
        for outside in (diagnosis.shareCheck?.outsidePaths ?? []) + [diagnosis.shareCheck?.handlesToPaths].compactMap({ $0 }) {
            pseudonyms.add(path: outside)
        }
        let rename = { (text: String) in pseudonyms.apply(to: text) }

        var members: [(name: String, bytes: [UInt8])] = []
        var originals: [Manifest.Original] = []
        if let file = request.file {
            var member: String?
            if let state {
                let payload = pseudonyms.apply(to: state).encoded()
                members.append((stateName, framed(payload)))
                member = stateName
            }
            let (size, digest) = try hash(file)
            originals.append(Manifest.Original(role: "file", path: rename(file), size: size, sha256: digest, member: member))
        }
        for (index, log) in request.logs.enumerated() {
            let (size, digest) = try hash(log)
            let name = "logs/\(index + 1)-" + memberName(rename(String(log.split(separator: "/").last ?? "log")))
            members.append((name, Array(pseudonyms.apply(to: try lastAttempt(of: log), as: .log).utf8)))
            originals.append(Manifest.Original(role: "log", path: rename(log), size: size, sha256: digest, member: name))
        }
        var sections: [Manifest.Section] = []
        var descriptionMember: String?
        if let file = request.file, let devices = deviceStates(file, strategy: request.strategy) {
            for body in devices.bodies where body.section.name != "ram" {
                let name = "sections/\(body.section.id)-\(memberName(body.section.name)).bin"
                members.append((name, body.bytes))
                sections.append(
                    Manifest.Section(
                        member: name, id: body.section.id, name: body.section.name, instanceID: body.section.instanceID,
                        version: body.section.version, sectionOffset: body.sectionOffset, offset: body.offset,
                        elided: body.elided.map { [$0.lowerBound, $0.upperBound] }, complete: body.isComplete))
            }
            if let text = devices.descriptionText {
                descriptionMember = "sections/vmdesc.json"
                members.append((descriptionMember!, Array(rename(String(decoding: text, as: UTF8.self)).utf8)))
            }
        }
        if let record = diagnosis.shareCheck?.mapped(rename) {
            members.insert((shareCheckName, try json(record)), at: 0)
        }
        members.insert((diagnosisName, try json(SchemaDocument(diagnosis.mapped(rename), schema: "diagnose"))), at: 0)
        let manifest = Manifest(
            statetoolVersion: statetoolVersion, device: diagnosis.device, sharedDirectory: diagnosis.sharedDirectory.map(rename),
            verdict: diagnosis.verdict.rawValue, pseudonyms: pseudonyms.names.count, logs: logPolicy, originals: originals,
            sections: sections, description: descriptionMember)
        members.insert((manifestName, try json(SchemaDocument(manifest, schema: "bundle-manifest"))), at: 0)

        do throws(OutputError) {
            let output = try OutputFile(path: path, protecting: [request.file].compactMap { $0 } + request.logs)
            let compressor = try ZstdCompressingSink(output)
            var tar = TarWriter(into: compressor)
            for member in members { try tar.add(name: member.name, bytes: member.bytes) }
            try tar.finish()
            try compressor.finish()
            let size = output.bytesWritten
            try output.commit()
            return Written(manifest: manifest, members: members.map(\.name), size: size)
        } catch {
            throw .output(error)
        }
    }

    /// A bundle reads its inputs more than once (to diagnose, to hash, to
    /// copy): each must be a regular file, not standard input or a pipe.
    ///
    /// - Throws: ``Failure/input(path:_:)`` naming the first that is not.
    public static func checkInputs(of request: DiagnosisRequest) throws(Failure) {
        for path in [request.file].compactMap({ $0 }) + request.logs {
            guard path != "-", (try? Files.kind(atPath: path)) == .regular else {
                throw .input(path: path, "a bundle reads its inputs more than once: give a regular file, not standard input or a pipe")
            }
        }
    }

    /// `text` as part of a member's name: ASCII letters, digits, `.`, `-`
    /// and `_` (anything else `_`), at most 60 bytes.
    static func memberName(_ text: String) -> String {
        String(String.UnicodeScalarView(text.unicodeScalars.prefix(60).map { scalar in
            scalar.isASCII && (scalar.properties.isAlphabetic || ("0"..."9").contains(scalar) || ".-_".unicodeScalars.contains(scalar)) ? scalar : "_"
        }))
    }

    /// Whether `path` is a bundle: a zstd stream holding a ustar archive whose
    /// first member is `manifest.json`. Only a regular file is looked at: a
    /// pipe's first bytes would be gone for the diagnosis.
    public static func isBundle(_ path: String) -> Bool {
        guard path != "-", (try? Files.kind(atPath: path)) == .regular, let source = try? FileDescriptorSource(path: path),
            let prefix = try? source.readPrefix(Compression.magicLength),
            Compression.detect(leadingBytes: prefix) == .zstd,
            let decompressed = try? Compression.zstd.decompressor(reading: PrefixedSource(prefix: prefix, rest: source))
        else { return false }
        var reader = TarReader(decompressed)
        return (try? reader.next())??.name == manifestName
    }

    /// What reading a bundle gives: its manifest and the request that diagnoses what it holds.
    public struct Opened: Sendable {
        /// The manifest.
        public let manifest: Manifest
        /// The bundled state and logs (files in the directory given), the
        /// device, and the recorded share check.
        public let request: DiagnosisRequest
    }

    /// Reads the bundle at `path`, writing its state and logs into `directory`.
    ///
    /// - Throws: ``Failure`` when it cannot be read or is no bundle.
    public static func open(_ path: String, into directory: String) throws(Failure) -> Opened {
        let source: FileDescriptorSource
        do {
            source = try FileDescriptorSource(path: path)
        } catch {
            throw .input(path: path, "\(error)")
        }
        var manifest: Manifest?
        var request = DiagnosisRequest()
        do throws(any Error) {
            guard let decompressed = try Compression.zstd.decompressor(reading: source) else { throw Failure.input(path: path, "not zstd") }
            var reader = TarReader(decompressed)
            while let member = try reader.next() {
                if manifest == nil, member.name != manifestName {
                    throw Failure.malformed(path: path, TarArchiveError(offset: member.offset, message: "the first member is \(member.name), not \(manifestName)"))
                }
                switch member.name {
                case manifestName:
                    manifest = try decodeJSON(Manifest.self, of: member, reader: &reader)
                case shareCheckName:
                    request.recordedShareCheck = try decodeJSON(ShareCheckRecord.self, of: member, reader: &reader)
                case _ where member.name == stateName || member.name.hasPrefix("logs/"):
                    let base = member.name.split(separator: "/").last.map(String.init) ?? "member"
                    guard base != "..", base != "." else { continue }
                    let target = directory + "/" + (member.name == stateName ? "" : "log-") + base
                    // What a bundle holds: a state LoadedPayload reads (framed), a log's last 4 MiB.
                    let limit = member.name == stateName ? UInt64(LoadedPayload.maximumSize) * 2 : logLimit
                    guard member.size <= limit else {
                        throw Failure.malformed(path: path, TarArchiveError(offset: member.offset, message: "member \(member.name) is \(member.size) bytes, more than a bundle holds (\(limit))"))
                    }
                    let output = try OutputFile(path: target, protecting: [path])
                    try reader.copyBody(of: member, into: output)
                    try output.commit()
                    if member.name == stateName { request.file = target } else { request.logs.append(target) }
                default:
                    continue
                }
            }
        } catch let failure as Failure {
            throw failure
        } catch let error as TarArchiveError {
            throw .malformed(path: path, error)
        } catch let error as OutputError {
            throw .output(error)
        } catch {
            throw .input(path: path, "\(error)")
        }
        guard let manifest else { throw .malformed(path: path, TarArchiveError(offset: 0, message: "no \(manifestName)")) }
        if let state = request.file, isBundle(state) {
            throw .malformed(path: path, TarArchiveError(offset: 0, message: "its state is itself a bundle"))
        }
        request.device = manifest.device
        return Opened(manifest: manifest, request: request)
    }

    /// A JSON member decoded; one that does not decode is a malformed bundle at the member's offset.
    private static func decodeJSON<Value: Decodable>(_ type: Value.Type, of member: TarReader.Member, reader: inout TarReader) throws -> Value {
        let bytes = try reader.body(of: member, limit: jsonLimit)
        do {
            return try JSONDecoder().decode(type, from: Data(bytes))
        } catch {
            throw TarArchiveError(offset: member.offset, message: "\(member.name) does not decode: \(error)")
        }
    }

    /// `payload` framed as a state stream, in chunks of at most 1 MiB.
    static func framed(_ payload: [UInt8]) -> [UInt8] {
        let sink = ByteArraySink()
        var writer = StateStreamWriter(sink: sink)
        var start = 0
        repeat {
            let end = min(start + (1 << 20), payload.count)
            payload[start..<end].withUnsafeBytes { try! writer.writeChunk($0) }
            start = end
        } while start < payload.count
        try! writer.finish()
        return sink.bytes
    }

    /// The device sections of a migration file or save image (bodies kept,
    /// back-end state streams elided, RAM never read); `nil` for a state or
    /// a file that does not walk.
    static func deviceStates(_ file: String, strategy: ReadingStrategy) -> DeviceStates? {
        guard let input = try? Input.open(file), input.kind != .stream else { return nil }
        let reader = MigrationFileReader(input: input.stream, strategy: strategy, keepsSectionBodies: true)
        return try? DeviceStates.read(reader)
    }

    /// The size and SHA-256 of the file at `path`, read in blocks.
    static func hash(_ path: String) throws(Failure) -> (UInt64, String) {
        do {
            let source = try FileDescriptorSource(path: path)
            var hasher = SHA256()
            var size: UInt64 = 0
            var buffer = [UInt8](repeating: 0, count: 1 << 20)
            while true {
                let read = try buffer.withUnsafeMutableBytes { try source.read(into: $0) }
                if read == 0 { break }
                hasher.update(data: buffer[0..<read])
                size += UInt64(read)
            }
            return (size, Array(hasher.finalize()).hexString)
        } catch {
            throw .input(path: path, "cannot read: \(error)")
        }
    }

    /// The log's last attempt as text, at most ``logLimit`` bytes (its last ones, from a line start).
    static func lastAttempt(of log: String) throws(Failure) -> String {
        let start: UInt64
        do {
            start = try LogAttempt.read(log).startOffset
        } catch {
            throw .input(path: log, "\(error)")
        }
        do {
            let file = try FileDescriptor.open(FilePath(log), .readOnly, options: [.closeOnExec])
            defer { try? file.close() }
            let end = try file.seek(offset: 0, from: .end)
            // A log cut short since it was read (rotated) keeps what is left.
            let from = min(end, max(Int64(start), end - Int64(logLimit)))
            let source = try PositionalFileSource(file, from: UInt64(from))
            var bytes = [UInt8](repeating: 0, count: Int(end - from))
            var filled = 0
            while filled < bytes.count {
                let read = try bytes.withUnsafeMutableBytes { try source.read(into: UnsafeMutableRawBufferPointer(rebasing: $0[filled...])) }
                if read == 0 { break }
                filled += read
            }
            var text = bytes[0..<filled]
            if from > Int64(start), let newline = text.firstIndex(of: 0x0a) { text = text[(newline + 1)...] }
            return String(decoding: text, as: UTF8.self)
        } catch {
            throw .input(path: log, "cannot read: \(error)")
        }
    }

    /// `value` as JSON: sorted keys, unescaped slashes.
    static func json(_ value: some Encodable) throws(Failure) -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        do {
            return Array(try encoder.encode(value)) + [0x0a]
        } catch {
            throw .input(path: "diagnosis", "cannot encode: \(error)")
        }
    }
}

extension Diagnosis {
    /// The diagnosis with every string that can name the share passed through `rename`.
    public func mapped(_ rename: (String) -> String) -> Diagnosis {
        let mappedFix = Fix(
            kind: fix.kind, command: fix.command.map { $0.map(rename) }, destinationArgs: fix.destinationArgs.map { $0.map(rename) },
            explanation: rename(fix.explanation))
        var copy = Diagnosis(
            verdict: verdict, causes: causes.map { $0.mapped(rename) }, fix: mappedFix, file: file.map(rename), device: device,
            sharedDirectory: sharedDirectory.map(rename), checked: checked.map(rename), missing: missing.map(rename))
        copy.written = written.map(rename)
        copy.shareCheck = shareCheck?.mapped(rename)
        return copy
    }
}
