/// Dates for HTTP headers and feeds, from Unix time (seconds), with no
/// Foundation: IMF-fixdate (RFC 9110 §5.6.7) for `Last-Modified`, `Expires`
/// and `If-Modified-Since`, and RFC 3339 for Atom.
///
/// ```swift
/// HTTPDate.format(784111777)    // "Sun, 06 Nov 1994 08:49:37 GMT"
/// HTTPDate.parse("Sun, 06 Nov 1994 08:49:37 GMT")   // 784111777
/// HTTPDate.rfc3339(784111777)   // "1994-11-06T08:49:37Z"
/// ```
public enum HTTPDate {
    static let days = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"]  // 1970-01-01 was a Thursday
    static let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]

    /// IMF-fixdate.
    public static func format(_ time: Int) -> String {
        let day = floorDiv(time, 86400)
        let secs = time - day * 86400
        let (y, m, d) = civil(day)
        let weekday = days[((day % 7) + 7) % 7]
        return "\(weekday), \(two(d)) \(months[m - 1]) \(y) \(two(secs / 3600)):\(two(secs / 60 % 60)):\(two(secs % 60)) GMT"
    }

    /// Parses an IMF-fixdate; nil for anything else (obsolete formats included,
    /// which then simply do not match).
    public static func parse(_ text: String) -> Int? {
        let parts = text.split(separator: " ")
        guard parts.count == 6, parts[0].hasSuffix(","), parts[5] == "GMT",
              let d = Int(parts[1]), let m = months.firstIndex(of: String(parts[2])), let y = Int(parts[3]) else {
            return nil
        }
        let hms = parts[4].split(separator: ":").compactMap { Int($0) }
        guard hms.count == 3, (1...31).contains(d), (0..<24).contains(hms[0]), (0..<60).contains(hms[1]),
              (0..<61).contains(hms[2]) else { return nil }
        return days(y, m + 1, d) * 86400 + hms[0] * 3600 + hms[1] * 60 + hms[2]
    }

    /// RFC 3339 in UTC, like "1994-11-06T08:49:37Z".
    public static func rfc3339(_ time: Int) -> String {
        let day = floorDiv(time, 86400)
        let secs = time - day * 86400
        let (y, m, d) = civil(day)
        return "\(y)-\(two(m))-\(two(d))T\(two(secs / 3600)):\(two(secs / 60 % 60)):\(two(secs % 60))Z"
    }

    static func two(_ n: Int) -> String { n < 10 ? "0\(n)" : "\(n)" }

    static func floorDiv(_ a: Int, _ b: Int) -> Int { a >= 0 ? a / b : (a - b + 1) / b }

    /// Days since 1970-01-01 to (year, month, day) (Howard Hinnant's algorithm).
    static func civil(_ days: Int) -> (Int, Int, Int) {
        let z = days + 719468
        let era = floorDiv(z, 146097)
        let doe = z - era * 146097
        let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let d = doy - (153 * mp + 2) / 5 + 1
        let m = mp < 10 ? mp + 3 : mp - 9
        return (yoe + era * 400 + (m <= 2 ? 1 : 0), m, d)
    }

    static func days(_ year: Int, _ month: Int, _ day: Int) -> Int {
        let y = month <= 2 ? year - 1 : year
        let era = floorDiv(y, 400)
        let yoe = y - era * 400
        let mp = month > 2 ? month - 3 : month + 9
        let doy = (153 * mp + 2) / 5 + day - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        return era * 146097 + doe - 719468
    }
}
