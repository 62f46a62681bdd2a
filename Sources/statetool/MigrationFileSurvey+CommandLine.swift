import MigrationFile
import StateStream

extension MigrationFileSurvey {
    /// Walks the migration file `input` with `strategy`, showing progress on a
    /// terminal unless `quiet`; `observe` sees every event (with
    /// `keepsSectionBodies`, the device sections' bodies too).
    static func survey(
        _ input: StateStreamInput, strategy: ReadingStrategy, quiet: Bool, keepsSectionBodies: Bool = false,
        observe: (MigrationEvent) throws -> Void = { _ in }
    ) throws -> MigrationFileSurvey {
        var progress = ProgressLine(for: input, quiet: quiet)
        defer { progress.clear() }
        return try survey(MigrationFileReader(input: input, strategy: strategy, keepsSectionBodies: keepsSectionBodies)) { event in
            if case .progress(let bytes) = event { progress.update(bytes: input.compressedBytesRead ?? bytes) }
            try observe(event)
        }
    }
}
