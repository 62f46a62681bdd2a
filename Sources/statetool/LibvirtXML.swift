import ArgumentParser
import StatetoolKit

struct LibvirtXML: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "xml",
        abstract: "Print the domain XML a libvirt save image holds.",
        discussion: """
            Prints the domain XML libvirt stored in the image (what virsh save-image-dumpxml \
            prints, without a running libvirt), or with --cookie the migration cookie. Only the \
            header and the XML are read, never the QEMU stream.

            Exit status: 0 printed, 1 the image's header or XML is not what libvirt writes (or it \
            has no cookie), 2 unreadable, 64 usage error.
            """
    )

    @Flag(help: "Print the migration cookie (<qemu-migration>) instead of the domain XML.")
    var cookie = false

    @Argument(help: ArgumentHelp("The save image: a file, or - for standard input.", valueName: "image"))
    var image: String

    func run() throws {
        guard let saveImage = try CommandSupport.open(image, savedStream: false).saveImage else {
            throw CommandFailure(.invalid, "\(image): error: not-a-save-image at offset 0: no LibvirtQemudSave magic")
        }
        let text: String
        if cookie {
            guard let cookieXML = saveImage.cookieXML else {
                throw CommandFailure(.invalid, "\(image): error: the image has no migration cookie (header version \(saveImage.header.version), cookieOffset 0)")
            }
            text = cookieXML
        } else {
            text = saveImage.domainXML
        }
        let output = StandardOutput()
        try output.write(text.hasSuffix("\n") ? text : text + "\n")
        try output.flush()
    }
}
