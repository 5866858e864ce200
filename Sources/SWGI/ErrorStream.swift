/// `swgi.errors`: text written here goes to the server's error log, one log
/// entry per line, attributed to the request.
///
/// ```swift
/// environ.errors.write("cache miss for \(key)\n")
/// var log = environ.errors
/// print("slow query:", ms, "ms", to: &log)
/// ```
public final class ErrorStream: TextOutputStream {
    private let sink: (String) -> Void
    /// (Used by one thread at a time, as the stream is: no runtime
    /// exclusivity checks.)
    @exclusivity(unchecked) private var pending = ""

    /// A stream that hands each complete line (without its newline) to `sink`.
    public init(sink: @escaping (String) -> Void = { _ in }) {
        self.sink = sink
    }

    public func write(_ string: String) {
        pending += string
        while let nl = pending.firstIndex(of: "\n") {
            sink(String(pending[..<nl]))
            pending.removeSubrange(...nl)
        }
    }

    /// Writes `line` and a newline.
    public func writeLine(_ line: String) {
        write(line)
        write("\n")
    }

    /// Sends a last, unterminated line, if any. The server calls this when the
    /// request ends.
    public func flush() {
        if !pending.isEmpty {
            sink(pending)
            pending = ""
        }
    }
}
