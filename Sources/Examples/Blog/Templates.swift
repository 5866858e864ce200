// The three renderings of the seed's blog: xhtml, xml and an Atom feed.
import SWGIBridge

enum Format: String {
    case xhtml, xml, atom

    var contentType: String {
        switch self {
        case .xhtml: return "application/xhtml+xml; charset=utf-8"
        case .xml: return "application/xml; charset=utf-8"
        case .atom: return "application/atom+xml; charset=utf-8"
        }
    }
}

func escape(_ s: String) -> String {
    var out = ""
    for ch in s.unicodeScalars {
        switch ch {
        case "&": out += "&amp;"
        case "<": out += "&lt;"
        case ">": out += "&gt;"
        case "\"": out += "&quot;"
        case "'": out += "&#39;"
        case _ where ch.value < 0x20 && ch != "\n" && ch != "\t" && ch != "\r": out += "\u{FFFD}"
        default: out.unicodeScalars.append(ch)
        }
    }
    return out
}

struct Templates {
    let base: String  // the blog's URL, ending in "/"

    func link(_ entry: Entry, _ format: Format) -> String {
        base + URLEncoding.escapeComponent(entry.name) + "?type=" + format.rawValue
    }

    func single(_ entry: Entry, _ format: Format) -> String {
        switch format {
        case .xhtml:
            return page(escape(entry.title), item(entry))
        case .xml:
            return "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n" + xmlEntry(entry) + "\n"
        case .atom:
            return feed([entry])
        }
    }

    func list(_ entries: [Entry], _ format: Format) -> String {
        switch format {
        case .xhtml:
            return page("Blog", entries.map(item).joined())
        case .xml:
            return "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<entries>\n"
                + entries.map(xmlEntry).joined(separator: "\n") + "\n</entries>\n"
        case .atom:
            return feed(entries)
        }
    }

    private func page(_ title: String, _ content: String) -> String {
        """
        <?xml version="1.0" encoding="utf-8"?>
        <!DOCTYPE html PUBLIC "-//W3C//DTD XHTML 1.0 Strict//EN" "http://www.w3.org/TR/xhtml1/DTD/xhtml1-strict.dtd">
        <html xmlns="http://www.w3.org/1999/xhtml"><head><title>\(title)</title></head>
        <body>
        \(content)</body></html>

        """
    }

    private func item(_ entry: Entry) -> String {
        "<div class=\"entry\"><h1 id=\"entry:title\"><a id=\"entry:link\" href=\"\(escape(link(entry, .xhtml)))\">\(escape(entry.title))</a></h1>\n"
            + "<pre id=\"entry:text\">\(escape(entry.text))</pre></div>\n"
    }

    private func xmlEntry(_ entry: Entry) -> String {
        "<entry><title>\(escape(entry.title))</title><link href=\"\(escape(link(entry, .xml)))\"/>"
            + "<text>\(escape(entry.text))</text></entry>"
    }

    private func feed(_ entries: [Entry]) -> String {
        let updated = HTTPDate.rfc3339(entries.map(\.modified).max() ?? 0)
        var out = """
            <?xml version="1.0" encoding="utf-8"?>
            <feed xmlns="http://www.w3.org/2005/Atom">
            <title>Blog</title>
            <id>\(escape(base))</id>
            <link rel="self" href="\(escape(base + "?type=atom"))"/>
            <updated>\(updated)</updated>
            <author><name>SWGI Blog</name></author>

            """
        for entry in entries {
            out += """
                <entry>
                <title>\(escape(entry.title))</title>
                <id>\(escape(link(entry, .atom)))</id>
                <link href="\(escape(link(entry, .xhtml)))"/>
                <updated>\(HTTPDate.rfc3339(entry.modified))</updated>
                <content type="text">\(escape(entry.text))</content>
                </entry>

                """
        }
        return out + "</feed>\n"
    }
}
