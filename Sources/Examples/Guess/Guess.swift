// "Getting Started with WSGI": the number guessing form. GET shows the form;
// POST myparam says higher, lower or correct. The number to guess lives in
// the visitor's session (SetEnv SWGI_SESSION_KEY), so the game works across
// Apache's processes. Other methods get 405.
import SWGIBridge
import SWGISessions

func page(_ message: String, _ startResponse: StartResponse) throws -> Body {
    try startResponse("200 OK", [("Content-type", "text/html; charset=utf-8")])
    return ["""
        <html><body>
        <p>\(message)</p>
        <form method="POST">
        <p><input type="text" name="myparam" value="" />
        <p><input type="submit" /></p>
        </form>
        </body></html>

        """]
}

func number(in session: Session) -> Int {
    if let n = Int(session["number"] ?? ""), (1...100).contains(n) { return n }
    let n = Int.random(in: 1...100)
    session["number"] = String(n)
    return n
}

struct ShowForm: Application {
    func callAsFunction(_ environ: Environ, _ startResponse: StartResponse) throws -> Body {
        if let session = environ.session { _ = number(in: session) }
        return try page("", startResponse)
    }
}

struct TakeGuess: Application {
    func callAsFunction(_ environ: Environ, _ startResponse: StartResponse) throws -> Body {
        guard let session = environ.session else {
            throw SWGIError(.badRequest, "Guess runs inside Sessions")
        }
        let fields = try environ.form(limit: 4096)
        guard let text = fields["myparam"], !text.isEmpty else {
            return try page("You didn't guess", startResponse)
        }
        guard let guess = Int(text.filter { $0 != " " }) else {
            return try page("That is not a number: guess a number from 1 to 100", startResponse)
        }
        let target = number(in: session)
        let message: String
        if guess == target {
            message = "You guessed correctly"
            session["number"] = String(Int.random(in: 1...100))
        } else if guess < target {
            message = "Try again, the number is higher than your guess"
        } else {
            message = "Try again, the number is lower than your guess"
        }
        return try page(message, startResponse)
    }
}

@c(swgi_entry_application)
public func swgiEntry() -> UnsafeRawPointer {
    exportApplication(Sessions(MethodDispatcher(["GET": ShowForm(), "POST": TakeGuess()]),
                               key: .environ("SWGI_SESSION_KEY")))
}
