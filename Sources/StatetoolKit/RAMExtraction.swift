import MigrationFile
import StateStream
import SystemPackage

/// Writes each RAM block of a migration file (or save image) as a file of
/// the block's size in a folder: every page at its address, zero pages (and
/// pages the file never holds) as holes. What `statetool migration ram` does.
///
/// A regular file's pages are written as the walk reads them; a `mapped-ram`
/// file's pages, which sit at fixed file offsets, are copied inside the
/// kernel (`copy_file_range`) run by run of present pages. Block names are
/// made safe as file names (``fileName(for:)``): an output never lands
/// outside the folder. Each output is a temporary file until every block is
/// written and the file read without error.
public struct RAMExtraction {
    /// One block written.
    public struct Written: Sendable, Hashable {
        /// The block.
        public let block: RAMBlock
        /// The file it went to.
        public let path: String
        /// Pages written with data.
        public let dataPages: UInt64
        /// Zero pages (left as holes, or zeroed where data was written before).
        public let zeroPages: UInt64
    }

    /// Why an extraction failed.
    public enum Failure: Error, Sendable, CustomStringConvertible {
        /// The file has a problem (an error): nothing is committed.
        case invalidFile(MigrationProblem)
        /// `--block` names no block of the file.
        case noSuchBlock(String, known: [String])
        /// A page names a block the block list does not have, or lies past its end.
        case pageOutsideBlock(block: String, address: UInt64)
        /// A mapped-ram file that is not a regular, uncompressed file.
        case mappedRAMNeedsRegularFile
        /// An output could not be written.
        case output(OutputError)

        /// What went wrong, in one sentence.
        public var description: String {
            switch self {
            case .invalidFile(let problem): return "\(problem)"
            case .noSuchBlock(let name, let known): return "no RAM block \(name); the file has \(known.joined(separator: ", "))"
            case .pageOutsideBlock(let block, let address): return "a RAM page of block \(block) at address \(address) lies outside every listed block"
            case .mappedRAMNeedsRegularFile: return "a mapped-ram file's pages are read in place: give the regular, uncompressed file"
            case .output(let error): return "\(error)"
            }
        }
    }

    /// The file name a block is written to: its name with every byte but
    /// letters, digits, `.`, `_`, `-`, `+` and `@` written as `%XX`, and `.`
    /// and `..` as `%2E` and `%2E%2E`: never a path, never outside the folder,
    /// and two blocks never share one.
    public static func fileName(for block: String) -> String {
        let allowed = Set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-+@".utf8)
        var name = ""
        for byte in block.utf8 {
            if allowed.contains(byte) {
                name.unicodeScalars.append(Unicode.Scalar(byte))
            } else {
                name += "%" + [byte].hexString.uppercased()
            }
        }
        if name.isEmpty || name.allSatisfy({ $0 == "." }) {
            name = String(repeating: "%2E", count: name.count)
            if name.isEmpty { name = "%" }
        }
        return name
    }

    /// The migration file or save image.
    public let input: Input
    /// The folder the blocks go to.
    public let directory: String
    /// Only this block, when given.
    public let block: String?

    /// An extraction of `input`'s RAM blocks (or the one named `block`) into `directory`.
    public init(input: Input, directory: String, block: String? = nil) {
        self.input = input
        self.directory = directory
        self.block = block
    }

    /// Walks the file, writes the blocks, and commits them if the file reads
    /// without error; `observe` sees every walk event (progress).
    ///
    /// - Throws: ``Failure``, or `InputError` when the file cannot be read.
    public func run(observe: (MigrationEvent) throws -> Void = { _ in }) throws -> [Written] {
        let writer = PageWriter(directory: directory, selected: block, protecting: [input.path])
        var problem: MigrationProblem?
        do {
            try MigrationFileReader(input: input.stream, strategy: .fullWalk, ramPages: writer).walk { event in
                switch event {
                case .ramBlock(let block): try writer.open(block)
                case .problem(let found) where found.severity == .error: problem = problem ?? found
                default: break
                }
                try observe(event)
            }
        } catch let error as OutputError {
            throw Failure.output(error)
        }
        do {
            try writer.flush()
        } catch let error as OutputError {
            throw Failure.output(error)
        }
        if let problem { throw Failure.invalidFile(problem) }
        if let block, !writer.blocks.contains(where: { $0.block.name == block }) {
            throw Failure.noSuchBlock(block, known: writer.listed)
        }
        for output in writer.blocks {
            if let region = output.block.mappedRegion { try copyMappedPages(of: output, region: region) }
        }
        for output in writer.blocks {
            do {
                try output.file.commit()
            } catch {
                throw Failure.output(error)
            }
        }
        return writer.blocks.map { Written(block: $0.block, path: $0.path, dataPages: $0.dataPages, zeroPages: $0.zeroPages) }
    }

    /// Copies a mapped-ram block's present pages (its bitmap's set bits), run by run.
    private func copyMappedPages(of output: PageWriter.Output, region: RAMBlock.MappedRegion) throws {
        guard input.stream.compression == .none, let file = input.stream.regularFile else { throw Failure.mappedRAMNeedsRegularFile }
        let pageSize = output.block.pageSize
        let pages = (output.block.byteCount + pageSize - 1) / pageSize
        let base = input.stream.baseOffset
        var bitmap = [UInt8](repeating: 0, count: 1 << 16)
        var page: UInt64 = 0
        var runStart: UInt64?
        func flush(upTo end: UInt64) throws {
            guard let start = runStart else { return }
            runStart = nil
            do {
                try output.file.copy(
                    of: file, offset: base + region.pagesOffset + start * pageSize, count: min(end * pageSize, output.block.byteCount) - start * pageSize,
                    to: start * pageSize)
            } catch {
                throw Failure.output(error)
            }
            output.dataPages += end - start
        }
        while page < pages {
            let chunkPages = min(pages - page, UInt64(bitmap.count) * 8)
            let bytes = Int((chunkPages + 7) / 8)
            let read: Int
            do {
                read = try bitmap.withUnsafeMutableBytes {
                    try file.read(fromAbsoluteOffset: Int64(base + region.bitmapOffset + page / 8), into: UnsafeMutableRawBufferPointer(rebasing: $0[..<bytes]))
                }
            } catch {
                throw InputError.readFailed((error as? Errno) ?? .ioError)
            }
            guard read == bytes else { throw InputError.readFailed(.ioError) }
            for index in 0..<chunkPages {
                // QEMU's bitmap is an array of unsigned longs, little-endian on x86: bit i of byte i / 8.
                let present = bitmap[Int(index / 8)] & (1 << (index % 8)) != 0
                if present {
                    if runStart == nil { runStart = page + index }
                } else {
                    try flush(upTo: page + index)
                }
            }
            page += chunkPages
        }
        try flush(upTo: pages)
    }
}

/// Takes the walk's RAM pages and writes them into one output per block.
private final class PageWriter: RAMPageHandler {
    final class Output {
        let block: RAMBlock
        let path: String
        let file: OutputFile
        var dataPages: UInt64 = 0
        var zeroPages: UInt64 = 0
        /// The end of the highest data written: below it a zero page may have to be zeroed.
        var dataEnd: UInt64 = 0

        init(block: RAMBlock, path: String, file: OutputFile) {
            self.block = block
            self.path = path
            self.file = file
        }
    }

    let directory: String
    let selected: String?
    let protecting: [String]
    private(set) var blocks: [Output] = []
    private(set) var listed: [String] = []
    private var byName: [String: Output] = [:]
    private let zeros = UnsafeMutableRawBufferPointer.allocate(byteCount: 1 << 20, alignment: 4096)

    init(directory: String, selected: String?, protecting: [String]) {
        self.directory = directory
        self.selected = selected
        self.protecting = protecting
        zeros.initializeMemory(as: UInt8.self, repeating: 0)
    }

    deinit {
        zeros.deallocate()
        run.deallocate()
    }

    /// Opens the output of a listed block (if it is selected), a hole of its size.
    func open(_ block: RAMBlock) throws {
        listed.append(block.name)
        guard selected.map({ $0 == block.name }) ?? true, byName[block.name] == nil else { return }
        let path = FilePath(directory).appending(RAMExtraction.fileName(for: block.name)).string
        let file = try OutputFile(path: path, protecting: protecting)
        try file.truncate(to: block.byteCount)
        let output = Output(block: block, path: path, file: file)
        blocks.append(output)
        byName[block.name] = output
    }

    private func output(for block: String, address: UInt64, count: Int) throws -> Output? {
        guard listed.contains(block) else { throw RAMExtraction.Failure.pageOutsideBlock(block: block, address: address) }
        guard let output = byName[block] else { return nil }  // not selected
        guard address < output.block.byteCount else { throw RAMExtraction.Failure.pageOutsideBlock(block: block, address: address) }
        return output
    }

    /// Consecutive data pages of one block, written with one `pwrite`.
    private var pending: (output: Output, address: UInt64, count: Int)?
    private let run = UnsafeMutableRawBufferPointer.allocate(byteCount: 1 << 20, alignment: 4096)

    /// Writes the pages gathered so far.
    func flush() throws {
        guard let (output, address, count) = pending else { return }
        pending = nil
        try output.file.write(UnsafeRawBufferPointer(rebasing: run[..<count]), at: address)
        output.dataEnd = max(output.dataEnd, address + UInt64(count))
    }

    func page(block: String, address: UInt64, bytes: UnsafeRawBufferPointer) throws {
        guard let output = try output(for: block, address: address, count: bytes.count) else { return }
        let count = Int(min(UInt64(bytes.count), output.block.byteCount - address))
        output.dataPages += 1
        if let (current, start, length) = pending, current !== output || start + UInt64(length) != address || length + count > run.count {
            try flush()
        }
        if count > run.count {
            try output.file.write(UnsafeRawBufferPointer(rebasing: bytes[..<count]), at: address)
            output.dataEnd = max(output.dataEnd, address + UInt64(count))
            return
        }
        let length = pending?.count ?? 0
        UnsafeMutableRawBufferPointer(rebasing: run[length..<length + count]).copyMemory(from: UnsafeRawBufferPointer(rebasing: bytes[..<count]))
        pending = (output, pending?.address ?? address, length + count)
    }

    /// A run of whole pages inside the block is written straight from the
    /// walk's buffer with one `pwritev` (the record headers between the pages
    /// left out); a run that reaches the block's end goes page by page.
    func pages(_ run: RAMPageRun) throws {
        guard let output = try output(for: run.block, address: run.address, count: run.pageSize) else { return }
        let end = run.address(of: run.count - 1) + UInt64(run.pageSize)
        guard run.count > 1, end <= output.block.byteCount else {
            for index in 0..<run.count { try page(block: run.block, address: run.address(of: index), bytes: run.page(index)) }
            return
        }
        try flush()
        try output.file.write(pieces: (0..<run.count).map(run.page), at: run.address)
        output.dataPages += UInt64(run.count)
        output.dataEnd = max(output.dataEnd, end)
    }

    func zeroPage(block: String, address: UInt64, fill: UInt8) throws {
        guard let output = try output(for: block, address: address, count: Int(output(pageSizeOf: block))) else { return }
        let count = min(output.block.pageSize, output.block.byteCount - address)
        output.zeroPages += 1
        if fill == 0 {
            // A hole already, unless an earlier record of this page wrote data
            // there: only possible below the end of the data written so far.
            if let (current, start, length) = pending, current === output, address < start + UInt64(length) { try flush() }
            guard address < output.dataEnd, try output.file.holdsData(at: address, count: count) else { return }
            try output.file.write(UnsafeRawBufferPointer(rebasing: zeros[..<Int(min(count, UInt64(zeros.count)))]), at: address)
        } else {
            try flush()
            var filled = [UInt8](repeating: fill, count: Int(min(count, UInt64(zeros.count))))
            try filled.withUnsafeMutableBytes { try output.file.write(UnsafeRawBufferPointer($0), at: address) }
            output.dataEnd = max(output.dataEnd, address + count)
        }
    }

    private func output(pageSizeOf block: String) -> UInt64 {
        byName[block]?.block.pageSize ?? 0
    }
}
