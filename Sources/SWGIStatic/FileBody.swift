#if canImport(Glibc)
import Glibc
#endif
public import SWGI

/// The `swgi.file_wrapper` servers built on POSIX files offer: the body is
/// the open file's region; iterating it reads blocks; `close()` closes it.
public let posixFileWrapper = FileWrapper { path, offset, length in
    try openFileBody(path: path, offset: offset, length: length)
}

/// A body of a file region (to the end when `length` is nil), the file
/// opened now. Throws when it cannot be opened, or the region is past its end.
public func openFileBody(path: String, offset: Int = 0, length: Int? = nil, blockSize: Int = 64 * 1024) throws -> Body {
    let fd = open(path, O_RDONLY | O_CLOEXEC)
    guard fd >= 0 else {
        throw SWGIError(.badRequest, "cannot open \(path): \(String(cString: strerror(errno)))")
    }
    var info = stat()
    guard fstat(fd, &info) == 0, (info.st_mode & S_IFMT) == S_IFREG else {
        close(fd)
        throw SWGIError(.badRequest, "\(path) is not a regular file")
    }
    let size = Int(info.st_size)
    let count = length ?? max(0, size - offset)
    guard offset >= 0, count >= 0, offset + count <= size else {
        close(fd)
        throw SWGIError(.badRequest, "region \(offset)+\(count) is outside \(path) (\(size) bytes)")
    }
    let reader = FileReader(fd: fd, offset: offset, remaining: count, blockSize: blockSize)
    return Body(file: FileRegion(path: path, offset: offset, length: count),
                next: { try reader.next() }, onClose: { reader.close() })
}

final class FileReader {
    private var fd: Int32
    private var offset: Int
    private var remaining: Int
    private let blockSize: Int

    init(fd: Int32, offset: Int, remaining: Int, blockSize: Int) {
        self.fd = fd
        self.offset = offset
        self.remaining = remaining
        self.blockSize = blockSize
    }

    func next() throws -> Chunk? {
        guard remaining > 0, fd >= 0 else { return nil }
        var block = [UInt8](repeating: 0, count: min(blockSize, remaining))
        let n = block.withUnsafeMutableBytes { pread(fd, $0.baseAddress, $0.count, off_t(offset)) }
        if n < 0 { throw SWGIError(.badRequest, "reading a file failed: \(String(cString: strerror(errno)))") }
        if n == 0 { throw SWGIError(.badRequest, "the file became shorter while it was sent") }
        block.removeLast(block.count - n)
        offset += n
        remaining -= n
        return Chunk(block)
    }

    func close() {
        if fd >= 0 {
            Glibc.close(fd)
            fd = -1
        }
    }

    deinit { close() }
}

/// What a file is, for responses: size, modification time, regular or not.
struct FileInfo {
    let size: Int
    let modified: Int
    let isRegular: Bool

    init?(path: String) {
        var info = stat()
        guard stat(path, &info) == 0 else { return nil }
        size = Int(info.st_size)
        modified = Int(info.st_mtim.tv_sec)
        isRegular = (info.st_mode & S_IFMT) == S_IFREG
    }
}

/// The path with every symlink resolved, or nil.
func resolvedPath(_ path: String) -> String? {
    guard let resolved = realpath(path, nil) else { return nil }
    defer { free(resolved) }
    return String(cString: resolved)
}
