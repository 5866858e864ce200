// Entries as text files in one directory, written atomically.
#if canImport(Glibc)
import Glibc
#endif
import SWGIBridge

struct Entry {
    let name: String
    var title: String { name.replacingAll("-", with: " ") }
    var text: String
    var modified: Int
}

struct StorageError: Error, CustomStringConvertible {
    let description: String
}

struct Storage {
    let directory: String

    /// Entry names: letters, digits, `-`, `_`, `+`, `.`; not starting with a
    /// dot; so a name is one file inside the directory and nothing else.
    static func isValid(_ name: String) -> Bool {
        guard !name.isEmpty, name.utf8.count <= 200, !name.hasPrefix(".") else { return false }
        return name.utf8.allSatisfy { c in
            (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5A) || (c >= 0x61 && c <= 0x7A)
                || c == UInt8(ascii: "-") || c == UInt8(ascii: "_") || c == UInt8(ascii: "+") || c == UInt8(ascii: ".")
        }
    }

    func path(_ name: String) -> String {
        directory + "/" + name.replacingAll("+", with: "-") + ".txt"
    }

    func load(_ name: String) throws -> Entry? {
        let file = path(name)
        var info = stat()
        guard stat(file, &info) == 0 else { return nil }
        let fd = open(file, O_RDONLY)
        guard fd >= 0 else { throw StorageError(description: "cannot open \(file): \(errnoText())") }
        defer { close(fd) }
        var bytes: [UInt8] = []
        var block = [UInt8](repeating: 0, count: 64 * 1024)
        while true {
            let n = block.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n < 0 { throw StorageError(description: "cannot read \(file): \(errnoText())") }
            if n == 0 { break }
            bytes += block[0..<n]
        }
        return Entry(name: name, text: String(decoding: bytes, as: UTF8.self), modified: Int(info.st_mtim.tv_sec))
    }

    /// Writes the entry to a temporary file and renames it into place, so a
    /// reader (or a concurrent writer) never sees a torn file.
    func save(_ name: String, _ text: [UInt8]) throws {
        mkdir(directory, 0o755)
        let temp = directory + "/.tmp-\(getpid())-\(UInt64.random(in: 0...UInt64.max))"
        let fd = open(temp, O_WRONLY | O_CREAT | O_EXCL, 0o644)
        guard fd >= 0 else { throw StorageError(description: "cannot create \(temp): \(errnoText())") }
        var written = 0
        while written < text.count {
            let n = text.withUnsafeBytes { write(fd, $0.baseAddress! + written, $0.count - written) }
            if n <= 0 {
                close(fd)
                unlink(temp)
                throw StorageError(description: "cannot write \(temp): \(errnoText())")
            }
            written += n
        }
        fsync(fd)
        close(fd)
        guard rename(temp, path(name)) == 0 else {
            unlink(temp)
            throw StorageError(description: "cannot rename into \(path(name)): \(errnoText())")
        }
    }

    func delete(_ name: String) -> Bool {
        unlink(path(name)) == 0
    }

    func all() throws -> [Entry] {
        guard let dir = opendir(directory) else { return [] }
        defer { closedir(dir) }
        var names: [String] = []
        while let item = readdir(dir) {
            // The name up to its NUL, read in place: the record readdir
            // returns can be shorter than d_name's 256 bytes.
            let name = UnsafeRawPointer(item) + MemoryLayout<dirent>.offset(of: \dirent.d_name)!
            let file = String(cString: name.assumingMemoryBound(to: CChar.self))
            if file.hasSuffix(".txt"), !file.hasPrefix(".") {
                names.append(String(file.dropLast(4)))
            }
        }
        return try names.sorted().compactMap { try load($0) }
    }

    private func errnoText() -> String {
        String(cString: strerror(errno))
    }
}

extension String {
    func replacingAll(_ target: Character, with replacement: String) -> String {
        var out = ""
        for ch in self { if ch == target { out += replacement } else { out.append(ch) } }
        return out
    }
}
