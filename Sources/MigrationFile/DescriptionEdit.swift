/// Changes one number in the JSON text of a description, leaving every other
/// byte as QEMU wrote it: a size that a replaced back-end state changes.
///
/// The JSON is only scanned for the value's place (strings, numbers, literals,
/// objects and arrays are skipped by their syntax); what it means comes from
/// the decoded ``VMDescription``.
struct DescriptionEdit {
    /// One step of a path into the JSON: a member of an object or an element of an array.
    enum Step: Hashable {
        case key(String)
        case index(Int)
    }

    /// Why the edit cannot be made.
    struct Failure: Error, CustomStringConvertible {
        let message: String
        var description: String { message }
    }

    /// The byte range of the value at `path` in `json`.
    static func valueRange(at path: [Step], in json: [UInt8]) throws(Failure) -> Range<Int> {
        var scanner = JSONScanner(bytes: json)
        return try scanner.find(path[...])
    }

    /// `json` with the unsigned integer at `path` changed by `delta`.
    ///
    /// - Parameter expected: What the value must be now (from the decoded description).
    static func adding(_ delta: Int64, toNumberAt path: [Step], in json: [UInt8], expected: UInt64) throws(Failure) -> [UInt8] {
        let range = try valueRange(at: path, in: json)
        // The number as QEMU writes it, so that changing it back restores the same bytes.
        guard String(decoding: json[range], as: UTF8.self) == String(expected) else {
            throw Failure(message: "the JSON description's \(describe(path)) is not \(expected)")
        }
        let old = expected
        let new = Int64(old) + delta
        guard new >= 0 else { throw Failure(message: "the JSON description's \(describe(path)) would be negative") }
        return Array(json[..<range.lowerBound]) + Array(String(new).utf8) + Array(json[range.upperBound...])
    }

    static func describe(_ path: [Step]) -> String {
        path.map { step in
            switch step {
            case .key(let key): return "." + key
            case .index(let index): return "[\(index)]"
            }
        }.joined()
    }
}

/// A forward scanner over JSON text that finds where a value lies.
private struct JSONScanner {
    let bytes: [UInt8]
    var position = 0

    typealias Failure = DescriptionEdit.Failure

    mutating func find(_ path: ArraySlice<DescriptionEdit.Step>) throws(Failure) -> Range<Int> {
        skipSpace()
        guard let step = path.first else {
            let start = position
            try skipValue()
            return start..<position
        }
        switch step {
        case .key(let wanted):
            try expect(UInt8(ascii: "{"))
            skipSpace()
            if peek == UInt8(ascii: "}") { break }
            while true {
                skipSpace()
                let key = try string()
                skipSpace()
                try expect(UInt8(ascii: ":"))
                if bytes[key] == Array(wanted.utf8)[...] { return try find(path.dropFirst()) }
                skipSpace()
                try skipValue()
                skipSpace()
                guard peek == UInt8(ascii: ",") else { break }
                position += 1
            }
        case .index(let wanted):
            try expect(UInt8(ascii: "["))
            skipSpace()
            if peek == UInt8(ascii: "]") { break }
            var index = 0
            while true {
                if index == wanted { return try find(path.dropFirst()) }
                skipSpace()
                try skipValue()
                skipSpace()
                guard peek == UInt8(ascii: ",") else { break }
                position += 1
                index += 1
            }
        }
        throw Failure(message: "the JSON description has no \(DescriptionEdit.describe(Array(path)))")
    }

    var peek: UInt8? { position < bytes.count ? bytes[position] : nil }

    mutating func skipSpace() {
        while let byte = peek, byte == 0x20 || byte == 0x0a || byte == 0x0d || byte == 0x09 { position += 1 }
    }

    mutating func expect(_ byte: UInt8) throws(Failure) {
        guard peek == byte else { throw Failure(message: "the JSON description is malformed at byte \(position)") }
        position += 1
    }

    /// Skips a string; returns the range of its content, escapes as written.
    mutating func string() throws(Failure) -> Range<Int> {
        try expect(UInt8(ascii: "\""))
        let start = position
        while let byte = peek, byte != UInt8(ascii: "\"") {
            position += byte == UInt8(ascii: "\\") ? 2 : 1
        }
        let end = position
        try expect(UInt8(ascii: "\""))
        return start..<end
    }

    mutating func skipValue() throws(Failure) {
        skipSpace()
        switch peek {
        case UInt8(ascii: "\""):
            _ = try string()
        case UInt8(ascii: "{"), UInt8(ascii: "["):
            let close = peek == UInt8(ascii: "{") ? UInt8(ascii: "}") : UInt8(ascii: "]")
            position += 1
            skipSpace()
            if peek == close {
                position += 1
                return
            }
            while true {
                if close == UInt8(ascii: "}") {
                    skipSpace()
                    _ = try string()
                    skipSpace()
                    try expect(UInt8(ascii: ":"))
                }
                try skipValue()
                skipSpace()
                guard peek == UInt8(ascii: ",") else { break }
                position += 1
            }
            try expect(close)
        case .some:
            // A number or a literal: up to the next delimiter.
            let start = position
            while let byte = peek, !",]} \n\r\t".utf8.contains(byte) { position += 1 }
            guard position > start else { throw Failure(message: "the JSON description is malformed at byte \(position)") }
        case nil:
            throw Failure(message: "the JSON description ends early")
        }
    }
}
