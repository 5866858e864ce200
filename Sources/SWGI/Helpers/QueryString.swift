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
        var pairs: [(String, String)] = []
        for part in query.utf8.split(separator: UInt8(ascii: "&"), omittingEmptySubsequences: true) {
            if let eq = part.firstIndex(of: UInt8(ascii: "=")) {
                pairs.append((Self.decode(part[..<eq]), Self.decode(part[part.index(after: eq)...])))
            } else {
                pairs.append((Self.decode(part), ""))
            }
        }
        self.pairs = pairs
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
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count)
        var i = bytes.startIndex
        while i != bytes.endIndex {
            let c = bytes[i]
            if c == UInt8(ascii: "+") && plusAsSpace {
                out.append(UInt8(ascii: " "))
            } else if c == UInt8(ascii: "%"),
                      let h = bytes.index(i, offsetBy: 1, limitedBy: bytes.endIndex), h != bytes.endIndex,
                      let l = bytes.index(h, offsetBy: 1, limitedBy: bytes.endIndex), l != bytes.endIndex,
                      let hi = hexValue(bytes[h]), let lo = hexValue(bytes[l]) {
                out.append(hi << 4 | lo)
                i = l
            } else {
                out.append(c)
            }
            i = bytes.index(after: i)
        }
        return String(decoding: out, as: UTF8.self)
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
