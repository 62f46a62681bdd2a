import ArgumentParser
import StateStream
import VirtiofsdState

/// A decoded virtiofsd state and where it came from, for the commands that
/// take a state in any form: `preflight`, `diff --semantic`.
struct VirtiofsdInput {
    let state: VirtiofsdState
    let origin: LoadedPayload.Origin

    var originDescription: String {
        switch origin {
        case .stateStream: return "state stream"
        case .payload: return "payload"
        case .migrationFile(let device): return "migration file, device \(device)"
        }
    }

    /// Loads and decodes `file`, or prints why not and throws exit status 2.
    static func load(_ file: String, device: String?) throws -> VirtiofsdInput {
        let input = try CommandSupport.openInput(file)
        let loaded: LoadedPayload
        do {
            loaded = try LoadedPayload.load(from: input, device: device)
        } catch let failure as LoadedPayload.Failure {
            StandardError.write("\(file): error: \(failure)")
            throw ExitStatus.unreadable
        } catch {
            throw CommandSupport.fail(error, file: file)
        }
        do {
            return VirtiofsdInput(state: try VirtiofsdState(decoding: loaded.bytes), origin: loaded.origin)
        } catch {
            StandardError.write("\(file): error: not a virtiofsd state: \(error)")
            throw ExitStatus.unreadable
        }
    }
}
