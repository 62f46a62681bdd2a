import MigrationFile
import StatetoolKit

extension MigrationFileRewrite.Result {
    /// The lines that say what changed in the file.
    func describe(file: String) -> String {
        let checked = check != nil
        let location = summary.location
        var text = "replaced the back-end state of \(location.section.name) (section \(location.section.id), \(location.subsection.name)) "
        text += "at offset \(location.streamOffset): \(summary.oldLength) -> \(summary.newLength) bytes\n"
        for change in summary.descriptionChanges {
            text += "JSON description: \(change.path) \(change.old) -> \(change.new)\n"
        }
        if summary.descriptionChanges.isEmpty && summary.descriptionOffset != nil {
            text += "JSON description: unchanged (the same size)\n"
        }
        if summary.copiedInKernel > 0 {
            text += "copied \(summary.copiedInKernel) bytes of \(file) inside the kernel (copy_file_range)\n"
        }
        if checked { text += "checked: the written file reads back cleanly, every described size matches, the new state is in place\n" }
        return text
    }
}
