// Notes: a small JSON API on SQLite through sqlite-nio, as an async SWGI
// application. The database file is named by `SetEnv NOTES_DB /path/notes.db`
// and created on first use.
//
//   GET    /notes/       every note: {"notes": [{"id": 1, "text": "...", "created": "..."}]}
//   POST   /notes/       {"text": "..."} -> 201, Location: /notes/ID, the note
//   GET    /notes/ID     the note, or 404
//   DELETE /notes/ID     204, or 404
import SWGIBridge
import SQLiteNIO

struct Notes: AsyncApplication {
    /// The largest request body taken.
    static let maxBody = 64 * 1024

    func callAsFunction(_ environ: Environ, _ startResponse: StartResponse) async throws -> AsyncBody {
        guard let path = environ["NOTES_DB"], !path.isEmpty else {
            throw SWGIError(.badRequest, "Notes: no database configured (SetEnv NOTES_DB /path/notes.db)")
        }
        let db = try await Databases.shared.connection(path)
        let base = environ.scriptName
        var environ = environ
        let id = environ.shiftPathInfo() ?? ""
        let method = environ.requestMethod
        if id.isEmpty {
            switch method {
            case "GET", "HEAD":
                let rows = try await db.query("SELECT id, text, created FROM notes ORDER BY id")
                let notes = rows.map(Note.init(row:)).map(\.json).joined(separator: ", ")
                return try json(startResponse, 200, "{\"notes\": [\(notes)]}")
            case "POST":
                return try await create(environ, base, startResponse, db)
            default:
                return try json(startResponse, 405, #"{"error": "method not allowed"}"#, [("Allow", "GET, HEAD, POST")])
            }
        }
        guard let number = Int(id), number > 0, environ.pathInfo.isEmpty else {
            return try json(startResponse, 404, #"{"error": "no such note"}"#)
        }
        switch method {
        case "GET", "HEAD":
            let rows = try await db.query("SELECT id, text, created FROM notes WHERE id = ?", [.integer(number)])
            guard let row = rows.first else { return try json(startResponse, 404, #"{"error": "no such note"}"#) }
            return try json(startResponse, 200, Note(row: row).json)
        case "DELETE":
            let rows = try await db.query("DELETE FROM notes WHERE id = ? RETURNING id", [.integer(number)])
            if rows.isEmpty { return try json(startResponse, 404, #"{"error": "no such note"}"#) }
            try startResponse("204 No Content", [])
            return []
        default:
            return try json(startResponse, 405, #"{"error": "method not allowed"}"#, [("Allow", "GET, HEAD, DELETE")])
        }
    }

    private func create(_ environ: Environ, _ base: String, _ startResponse: StartResponse,
                        _ db: SQLiteConnection) async throws -> AsyncBody {
        let body = try await environ.input.read(Self.maxBody + 1)
        if body.count > Self.maxBody {
            return try json(startResponse, 413, #"{"error": "the note is too large"}"#)
        }
        guard case .object(let fields)? = try? JSON.parse(body), case .string(let text)? = fields["text"] else {
            return try json(startResponse, 400, #"{"error": "expected {\"text\": \"...\"}"}"#)
        }
        let rows = try await db.query(
            "INSERT INTO notes (text) VALUES (?) RETURNING id, text, created", [.text(text)])
        guard let row = rows.first else { throw SWGIError(.badRequest, "Notes: the insert returned no row") }
        let note = Note(row: row)
        return try json(startResponse, 201, note.json, [("Location", base + "/\(note.id)")])
    }

    private func json(_ startResponse: StartResponse, _ status: Int, _ text: String,
                      _ more: [(String, String)] = []) throws -> AsyncBody {
        let body = Chunk(text + "\n")
        try startResponse(HTTPStatus.line(status), [("Content-Type", "application/json")] + more)
        return [body]
    }
}

struct Note {
    let id: Int
    let text: String
    let created: String

    init(row: SQLiteRow) {
        id = row.column("id")?.integer ?? 0
        text = row.column("text")?.string ?? ""
        created = row.column("created")?.string ?? ""
    }

    var json: String {
        "{\"id\": \(id), \"text\": \(JSON.quote(text)), \"created\": \(JSON.quote(created))}"
    }
}

/// One connection per database file and process, opened on first use (in
/// the Apache child, never the parent): sqlite-nio runs its queries on its
/// thread pool, serialized by SQLite's own mutex; writers in other processes
/// wait on SQLite's lock (WAL mode).
actor Databases {
    static let shared = Databases()
    private var open: [String: Task<SQLiteConnection, any Error>] = [:]

    func connection(_ path: String) async throws -> SQLiteConnection {
        if let opening = open[path] { return try await opening.value }
        let opening = Task<SQLiteConnection, any Error> {
            let db = try await SQLiteConnection.open(storage: .file(path: path))
            do {
                try await Self.setUp(db)
            } catch {
                try? await db.close()
                throw error
            }
            return db
        }
        open[path] = opening
        do {
            return try await opening.value
        } catch {
            open[path] = nil  // the next request tries again
            throw error
        }
    }

    /// WAL mode and the table. Two processes turning on WAL for a new file at
    /// the same instant can deadlock on SQLite's lock upgrade, which SQLite
    /// resolves by answering one of them "busy" at once, without its busy
    /// handler: that one tries again shortly (the other has finished by then).
    private static func setUp(_ db: SQLiteConnection) async throws {
        var attempts = 0
        while true {
            do {
                _ = try await db.query("PRAGMA journal_mode = WAL")
                _ = try await db.query("""
                    CREATE TABLE IF NOT EXISTS notes (
                        id INTEGER PRIMARY KEY AUTOINCREMENT,
                        text TEXT NOT NULL,
                        created TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ', 'now')))
                    """)
                return
            } catch let error as SQLiteError where error.reason == .busy && attempts < 200 {
                attempts += 1
                try await Task.sleep(for: .milliseconds(10))
            }
        }
    }
}

@c(swgi_entry_application)
public func swgiEntry() -> UnsafeRawPointer { exportApplication(Notes()) }
