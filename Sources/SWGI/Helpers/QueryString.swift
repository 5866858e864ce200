/// Parsed `name=value` pairs of a query string or an
/// `application/x-www-form-urlencoded` body, in their order, repeated names
/// kept.
///
/// ```swift
/// let query = environ.query              // from QUERY_STRING
/// let name = query["name"] ?? "Alex"     // the first value
/// let tags = query.all("tag")            // every value
/// ```
///
/// `+` is a space, `%XX` a byte; the bytes are decoded as UTF-8 (invalid
/// sequences become U+FFFD). Pairs are separated by `&`; a pair without `=`
/// has an empty value.
public struct QueryParameters: Sendable, Sequence {
    public let pairs: [(String, String)]

    public init(parsing query: some StringProtocol) {
        var text = String(query)
        pairs = text.withUTF8 { Self.parse($0) }
    }

    /// The pairs of `bytes`, split at `&` and at the first `=` of each part.
    static func parse(_ bytes: UnsafeBufferPointer<UInt8>) -> [(String, String)] {
        var pairs: [(String, String)] = []
        forEachPart(of: bytes, separatedBy: UInt8(ascii: "&")) { part, eq in
            if let eq {
                pairs.append((decode(UnsafeBufferPointer(rebasing: bytes[part.lowerBound..<eq]), plusAsSpace: true),
                              decode(UnsafeBufferPointer(rebasing: bytes[(eq + 1)..<part.upperBound]), plusAsSpace: true)))
            } else {
                pairs.append((decode(UnsafeBufferPointer(rebasing: bytes[part]), plusAsSpace: true), ""))
            }
        }
        return pairs
    }

    /// The first value for `name`.
    public subscript(name: String) -> String? {
        pairs.first(where: { $0.0 == name })?.1
    }

    /// Every value for `name`, in order.
    public func all(_ name: String) -> [String] {
        pairs.filter { $0.0 == name }.map(\.1)
    }

    public func makeIterator() -> IndexingIterator<[(String, String)]> {
        pairs.makeIterator()
    }

    /// Percent-decodes `bytes`, with `+` as a space unless `plusAsSpace` is false.
    public static func decode(_ bytes: some Collection<UInt8>, plusAsSpace: Bool = true) -> String {
        if let decoded = bytes.withContiguousStorageIfAvailable({ decode($0, plusAsSpace: plusAsSpace) }) {
            return decoded
        }
        return Array(bytes).withUnsafeBufferPointer { decode($0, plusAsSpace: plusAsSpace) }
    }

    static func decode(_ bytes: UnsafeBufferPointer<UInt8>, plusAsSpace: Bool) -> String {
        // Most names and values need no decoding: they become a string as they are.
        var plain = true
        for c in bytes where c == UInt8(ascii: "%") || (c == UInt8(ascii: "+") && plusAsSpace) {
            plain = false
            break
        }
        if plain { return String(decoding: bytes, as: UTF8.self) }
        return withUnsafeTemporaryAllocation(of: UInt8.self, capacity: bytes.count) { out in
            var n = 0
            var i = 0
            while i < bytes.count {
                let c = bytes[i]
                if c == UInt8(ascii: "+") && plusAsSpace {
                    out[n] = UInt8(ascii: " ")
                } else if c == UInt8(ascii: "%"), i + 2 < bytes.count,
                          let hi = hexValue(bytes[i + 1]), let lo = hexValue(bytes[i + 2]) {
                    out[n] = hi << 4 | lo
                    i += 2
                } else {
                    out[n] = c
                }
                n += 1
                i += 1
            }
            return String(decoding: UnsafeBufferPointer(rebasing: out[..<n]), as: UTF8.self)
        }
    }

    private static func hexValue(_ c: UInt8) -> UInt8? {
        switch c {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return c - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return c - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): return c - UInt8(ascii: "A") + 10
        default: return nil
        }
    }
}

extension Environ {
    /// The parsed `QUERY_STRING`.
    public var query: QueryParameters { QueryParameters(parsing: queryString) }
}

/// Calls `body` with each non-empty part of `bytes` between `separator`s and
/// the index of the part's first `=` (nil if it has none): the one split of
/// query strings, form bodies and `Cookie` headers.
@inline(__always)
func forEachPart(of bytes: UnsafeBufferPointer<UInt8>, separatedBy separator: UInt8,
                 _ body: (_ part: Range<Int>, _ eq: Int?) -> Void) {
    var start = 0
    while start < bytes.count {
        var end = start
        var eq: Int?
        while end < bytes.count && bytes[end] != separator {
            if eq == nil && bytes[end] == UInt8(ascii: "=") { eq = end }
            end += 1
        }
        if end > start { body(start..<end, eq) }
        start = end + 1
    }
}
