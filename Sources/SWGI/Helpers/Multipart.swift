/// Reads a `multipart/form-data` body part by part, streaming: a part's
/// bytes come from ``RequestInput`` as they are read, so a file part is never
/// held whole in memory.
///
/// ```swift
/// let form = try environ.multipart()
/// while let part = try form.nextPart() {
///     if part.filename != nil {
///         while case let block = try part.read(), !block.isEmpty { try file.write(block) }
///     } else {
///         fields[part.name ?? ""] = try part.text()
///     }
/// }
/// ```
///
/// Malformed bodies and bodies over the limits throw an ``SWGIError``
/// (`.badRequest`, `.tooLarge`): answer 400 or 413.
public final class MultipartReader {
    public struct Limits: Sendable {
        /// At most this many parts.
        public var maxParts: Int
        /// At most this many bytes of headers per part.
        public var maxHeaderBytes: Int

        public init(maxParts: Int = 128, maxHeaderBytes: Int = 8 * 1024) {
            self.maxParts = maxParts
            self.maxHeaderBytes = maxHeaderBytes
        }
    }

    private let input: RequestInput
    private let delimiter: [UInt8]
    private let limits: Limits
    // The body as read so far, from `start`; begins with a virtual CRLF so that
    // the first delimiter looks like every other one.
    private var buffer: [UInt8] = [13, 10]
    private var start = 0
    private var atEnd = false
    private var done = false
    private var parts = 0
    private var current: MultipartPart?

    public init(input: RequestInput, boundary: String, limits: Limits = .init()) {
        self.input = input
        self.delimiter = Array("\r\n--\(boundary)".utf8)
        self.limits = limits
    }

    /// The next part, with its headers read; `nil` after the last one. The
    /// rest of the previous part, if unread, is skipped.
    public func nextPart() throws -> MultipartPart? {
        if done { return nil }
        if let current {
            while !(try readData(into: current, max: 64 * 1024).isEmpty) {}
        } else {
            // The preamble: everything before the first delimiter.
            while true {
                if let i = find(delimiter) {
                    start = i + delimiter.count
                    break
                }
                discard(keeping: delimiter.count - 1)
                guard try fill() else { throw malformed("no boundary found") }
            }
        }
        current = nil
        // After a delimiter: "--" ends the body; else optional blanks and CRLF.
        try need(2)
        if buffer[start] == UInt8(ascii: "-") && buffer[start + 1] == UInt8(ascii: "-") {
            done = true
            return nil
        }
        guard let lineEnd = try findWithin([13, 10], limit: 128) else {
            throw malformed("bad delimiter line")
        }
        start = lineEnd + 2
        parts += 1
        if parts > limits.maxParts {
            throw SWGIError(.tooLarge, "multipart body has more than \(limits.maxParts) parts")
        }
        let headers: [(String, String)]
        if try startsWith([13, 10]) {
            start += 2
            headers = []
        } else {
            guard let end = try findWithin([13, 10, 13, 10], limit: limits.maxHeaderBytes) else {
                throw SWGIError(.tooLarge, "multipart part headers over \(limits.maxHeaderBytes) bytes")
            }
            headers = Self.parseHeaders(Array(buffer[start..<end]))
            start = end + 4
        }
        let part = MultipartPart(reader: self, headers: headers)
        current = part
        return part
    }

    /// Up to `max` bytes of `part`'s content; empty at its end.
    func readData(into part: MultipartPart, max: Int) throws -> [UInt8] {
        guard part === current, !part.finished else { return [] }
        while true {
            if let i = find(delimiter) {
                let n = Swift.min(i - start, max)
                if n == 0 {
                    // The part ends here: step over its delimiter; nextPart reads what follows.
                    start = i + delimiter.count
                    part.finished = true
                    return []
                }
                return take(n)
            }
            let safe = buffer.count - start - (delimiter.count - 1)
            if safe > 0 { return take(Swift.min(safe, max)) }
            guard try fill() else { throw malformed("body ended inside a part") }
        }
    }

    private func malformed(_ why: String) -> SWGIError {
        SWGIError(.badRequest, "malformed multipart body: \(why)")
    }

    private func take(_ n: Int) -> [UInt8] {
        let out = Array(buffer[start..<(start + n)])
        start += n
        return out
    }

    private func discard(keeping: Int) {
        let drop = Swift.max(0, buffer.count - keeping) - start
        if drop > 0 { start += drop }
    }

    /// Reads more of the body. False at its end.
    private func fill() throws -> Bool {
        if atEnd { return false }
        if start > 0 {
            buffer.removeSubrange(0..<start)
            start = 0
        }
        let more = try input.read(32 * 1024)
        if more.isEmpty {
            atEnd = true
            return false
        }
        buffer += more
        return true
    }

    private func need(_ n: Int) throws {
        while buffer.count - start < n {
            guard try fill() else { throw malformed("body ended early") }
        }
    }

    private func startsWith(_ bytes: [UInt8]) throws -> Bool {
        try need(bytes.count)
        return buffer[start..<(start + bytes.count)].elementsEqual(bytes)
    }

    private func find(_ needle: [UInt8]) -> Int? {
        Self.search(buffer, needle, from: start)
    }

    /// Finds `needle` within `limit` bytes from `start`, reading as needed.
    private func findWithin(_ needle: [UInt8], limit: Int) throws -> Int? {
        while true {
            if let i = find(needle), i - start <= limit { return i }
            if buffer.count - start > limit + needle.count { return nil }
            guard try fill() else { return nil }
        }
    }

    static func search(_ haystack: [UInt8], _ needle: [UInt8], from: Int) -> Int? {
        guard let first = needle.first, haystack.count - from >= needle.count else { return nil }
        var i = from
        let last = haystack.count - needle.count
        while i <= last {
            if haystack[i] == first && haystack[i..<(i + needle.count)].elementsEqual(needle) { return i }
            i += 1
        }
        return nil
    }

    static func parseHeaders(_ bytes: [UInt8]) -> [(String, String)] {
        var headers: [(String, String)] = []
        for line in bytes.split(separator: 10) {
            let text = String(decoding: line.last == 13 ? line.dropLast() : line, as: UTF8.self)
            guard let colon = text.firstIndex(of: ":") else { continue }
            headers.append((Substring(text[..<colon]).trimmingSpaces(), text[text.index(after: colon)...].trimmingSpaces()))
        }
        return headers
    }
}

/// One part of a multipart body. Read its content before asking for the next part.
public final class MultipartPart {
    public let headers: [(String, String)]
    /// The form field's name (`Content-Disposition: form-data; name="..."`).
    public let name: String?
    /// The uploaded file's name, for a file part.
    public let filename: String?
    /// The part's `Content-Type`, if given.
    public let contentType: String?
    private unowned let reader: MultipartReader
    var finished = false

    init(reader: MultipartReader, headers: [(String, String)]) {
        self.reader = reader
        self.headers = headers
        let disposition = headers.first(where: { $0.0.lowercased() == "content-disposition" })
            .map { HeaderParameters($0.1) }
        name = disposition?.parameters["name"]
        filename = disposition?.parameters["filename"]
        contentType = headers.first(where: { $0.0.lowercased() == "content-type" })?.1
    }

    /// Up to `max` bytes of the content; empty at its end.
    public func read(_ max: Int = 64 * 1024) throws -> [UInt8] {
        try reader.readData(into: self, max: max)
    }

    /// All of the content, which must not be over `limit` bytes.
    public func bytes(limit: Int = 1 << 20) throws -> [UInt8] {
        var out: [UInt8] = []
        while case let block = try read(), !block.isEmpty {
            out += block
            if out.count > limit {
                throw SWGIError(.tooLarge, "multipart part \(name ?? "") is over \(limit) bytes")
            }
        }
        return out
    }

    /// The content as UTF-8 text.
    public func text(limit: Int = 1 << 20) throws -> String {
        String(decoding: try bytes(limit: limit), as: UTF8.self)
    }
}
