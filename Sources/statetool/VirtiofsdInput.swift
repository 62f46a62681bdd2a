import ArgumentParser
import MigrationFile
import StateStream
import StatetoolKit
import VirtiofsdState

/// A decoded virtiofsd state and where it came from, for the commands that
/// take a state in any form: `preflight`, `diff --semantic`, `retarget`.
struct VirtiofsdInput {
    let state: VirtiofsdState
    let origin: LoadedPayload.Origin
    /// Whether the migration file came inside a libvirt save image.
    var inSaveImage = false
    /// How a migration file was read; `nil` for other inputs.
    var reading: MigrationReading?

    var originDescription: String { (inSaveImage ? "libvirt save image, " : "") + origin.description }

    /// Loads and decodes `file` (a stream, a payload, a migration file or a
    /// libvirt save image), or prints why not and throws exit status 2.
    static func load(_ file: String, device: String?, strategy: ReadingStrategy) throws -> VirtiofsdInput {
        let input = try CommandSupport.open(file)
        let loaded = try payload(of: input, device: device, strategy: strategy)
        return VirtiofsdInput(
            state: try decode(loaded.bytes, file: file), origin: loaded.origin, inSaveImage: input.saveImage != nil, reading: loaded.reading)
    }

    /// The payload `input` holds, or prints why not and throws exit status 2.
    /// `subsection` and `strategy` are ``LoadedPayload/load(from:device:subsection:strategy:)``'s.
    static func payload(
        of input: Input, device: String?,
        subsection: BackEndStateSubsection? = .vhostUserFS, strategy: ReadingStrategy = .placeFromEnd
    ) throws -> LoadedPayload {
        do {
            return try LoadedPayload.load(from: input, device: device, subsection: subsection, strategy: strategy)
        } catch let failure as LoadedPayload.Failure {
            throw CommandFailure(.unreadable, "\(input.path): error: \(failure)")
        } catch {
            throw CommandSupport.fail(error, file: input.path)
        }
    }

    /// The state `payload` (from `file`) encodes, or prints why not and throws exit status 2.
    static func decode(_ payload: [UInt8], file: String) throws -> VirtiofsdState {
        do {
            return try VirtiofsdState(decoding: payload)
        } catch {
            throw CommandFailure(.unreadable, "\(file): error: not a virtiofsd state: \(error)")
        }
    }
}
