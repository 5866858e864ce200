import ArgumentParser
import Foundation

struct SWGIExpress: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "swgi-express",
        abstract: "Run SWGI applications in a private Apache, or install mod_swgi into a system one.",
        discussion: "The mod_wsgi-express of SWGI: no httpd.conf to write by hand.",
        subcommands: [Serve.self, Setup.self, ModuleConfig.self, InstallModule.self]
    )
}

/// The options serve and setup share.
struct ServerOptions: ParsableArguments {
    @Option(help: "Port to listen on.") var port = 8000
    @Option(help: "Address to listen on.") var host = "127.0.0.1"
    @Option(help: "Apache MPM: event, worker or prefork.") var mpm = "event"
    @Option(help: "Daemon processes (and Apache child processes).") var processes = 2
    @Option(help: "Threads per daemon process (and per Apache child: event, worker).") var threads = 25
    @Flag(help: "Run the applications in Apache's own processes, not in daemon processes.") var embeddedMode = false
    @Option(help: "Daemon mode: replace a daemon process after this many requests (0: never).") var maximumRequests = 0
    @Option(help: "Daemon mode: seconds a request may run; then 504, and its process is replaced (0: no limit).")
    var requestTimeout: Double = 0
    @Option(help: "Daemon mode: the user the daemon processes run as (swgi-express run as root).") var user: String?
    @Option(help: "Daemon mode: their group (default: the user's).") var group: String?
    @Option(help: "Requests served at once (default: processes x threads; prefork: processes).") var maxClients: Int?
    @Option(help: "Server root to write (default: a folder under /tmp for this port).") var serverRoot: String?
    @Option(help: "Apache LogLevel, e.g. info or 'warn swgi:debug'.") var logLevel = "warn swgi:info"
    @Flag(help: "Send the access log to the terminal (serve) too.") var accessLog = false
    @Flag(help: "Restart gracefully when an application library changes.") var reloadOnChanges = false
    @Flag(help: "Serve mod_status at /server-status (local clients only).") var serverStatus = false
    @Option(help: "Extra Apache configuration to include (repeatable).") var includeFile: [String] = []
    @Option(help: ArgumentHelp("Variable for every environ, as NAME VALUE or NAME=VALUE (repeatable).", valueName: "NAME VALUE"))
    var setenv: [String] = []
    @Option(help: "Folder of static files served beside the applications.") var documentRoot: String?
    @Option(help: "Entry point the libraries export (swgi_entry_NAME).") var entry = "application"
    @Option(help: "mod_swgi.so to load (default: the build tree's, then the installed one).") var module: String?
    @Option(help: "The Apache httpd to run (default: apache2 or httpd on PATH or in /usr/sbin).") var httpdExecutable: String?
    @Argument(help: "Applications: lib.so, a SwiftPM package folder, or URL=APP to choose the mount point.")
    var applications: [String] = []

    func validate() throws {
        guard ["event", "worker", "prefork"].contains(mpm) else {
            throw ValidationError("--mpm must be event, worker or prefork")
        }
        guard (1...65535).contains(port) else { throw ValidationError("--port must be from 1 to 65535") }
        guard processes > 0, threads > 0, (maxClients ?? 1) > 0 else {
            throw ValidationError("--processes, --threads and --max-clients must be positive")
        }
        guard !applications.isEmpty else { throw ValidationError("give at least one application (lib.so or a package folder)") }
        for item in setenv where !item.contains("=") {
            throw ValidationError("--setenv takes NAME VALUE (or NAME=VALUE)")
        }
        let daemonOptions = maximumRequests != 0 || requestTimeout != 0 || user != nil || group != nil
        if embeddedMode && daemonOptions {
            throw ValidationError("--maximum-requests, --request-timeout, --user and --group are for daemon mode: drop --embedded-mode")
        }
        guard maximumRequests >= 0, requestTimeout >= 0, requestTimeout <= 86400 else {
            throw ValidationError("--maximum-requests must be 0 or more, --request-timeout from 0 to 86400 seconds")
        }
        if (user != nil || group != nil) && geteuid() != 0 {
            throw ValidationError("--user and --group need swgi-express to run as root")
        }
    }

    func settings(logToTerminal: Bool) -> ServerSettings {
        var s = ServerSettings()
        s.host = host
        s.port = port
        s.mpm = mpm
        s.processes = processes
        s.threads = threads
        s.maxClients = maxClients
        s.logLevel = logLevel
        s.accessLog = accessLog
        s.serverStatus = serverStatus
        s.includeFiles = includeFile
        s.documentRoot = documentRoot.map { URL(fileURLWithPath: $0).standardized.path }
        s.setenv = setenv.map { item in
            let eq = item.firstIndex(of: "=") ?? item.endIndex
            return (String(item[..<eq]), String(item[item.index(after: eq)...]))
        }
        s.logToTerminal = logToTerminal
        if !embeddedMode {
            s.daemon = DaemonSettings(processes: processes, threads: threads, maximumRequests: maximumRequests,
                                      requestTimeout: requestTimeout, user: user, group: group)
        }
        return s
    }

    func serverRoot(_ environment: Environment, logToTerminal: Bool) throws -> ServerRoot {
        let mounts = try resolveApplications(applications, entry: entry)
        let path = URL(fileURLWithPath: serverRoot ?? "/tmp/swgi-express-\(host)-\(port)-\(getuid())").standardized.path
        let root = ServerRoot(path: path, settings: settings(logToTerminal: logToTerminal),
                              environment: environment, mounts: mounts)
        try root.write()
        return root
    }
}

struct Serve: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Serve applications through a private Apache in the foreground (Ctrl-C stops it).")

    @OptionGroup var options: ServerOptions

    func run() throws {
        try expressMain {
            let environment = try Environment.find(module: options.module, httpd: options.httpdExecutable)
            try checkPortFree(host: options.host, port: options.port)
            let root = try options.serverRoot(environment, logToTerminal: true)
            try configtest(root)
            let server = ForegroundServer(root: root, reload: options.reloadOnChanges)
            try server.start()
            try server.waitUntilListening()
            let mode = root.settings.daemon.map { "daemon mode, \($0.processes) processes of \($0.threads) threads" }
                ?? "embedded mode"
            print("swgi-express: Apache (\(options.mpm) MPM) with mod_swgi (\(mode)), server root \(root.path)")
            for mount in root.mounts {
                print("  http://\(options.host):\(options.port)\(mount.url)  ->  \(mount.library)")
            }
            print("Ctrl-C stops it.")
            fflush(nil)
            throw ExitCode(server.wait())
        }
    }
}

struct Setup: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Write a server root and an apachectl script, for running it as a service.")

    @OptionGroup var options: ServerOptions

    func run() throws {
        try expressMain {
            let environment = try Environment.find(module: options.module, httpd: options.httpdExecutable)
            let root = try options.serverRoot(environment, logToTerminal: false)
            let script = root.path + "/apachectl"
            try root.apachectl().write(toFile: script, atomically: true, encoding: .utf8)
            chmod(script, 0o755)
            try configtest(root)
            print("""
                swgi-express: server root written to \(root.path)
                  \(script) start        start it (logs in \(root.path)/logs)
                  \(script) graceful     reload after a new build
                  \(script) stop         stop it
                  \(script) configtest   check the configuration
                """)
        }
    }
}

struct ModuleConfig: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print the LoadModule line that adds mod_swgi to a system Apache.")

    @Option(help: "mod_swgi.so to point at.") var module: String?

    func run() throws {
        try expressMain {
            let path = try Environment.findModule(module, (try? Environment.modulesDirectory()) ?? "/usr/lib/apache2/modules")
            print("LoadModule swgi_module \(path)")
        }
    }
}

struct InstallModule: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Install mod_swgi.so into Apache's module folder, with swgi.load and swgi.conf for a2enmod.",
        discussion: "With --root (or SWGI_INSTALL_ROOT), everything goes under that folder instead of /, as with DESTDIR.")

    @Option(help: "mod_swgi.so to install.") var module: String?
    @Option(help: "Install under this folder instead of / (also SWGI_INSTALL_ROOT).") var root: String?
    @Option(help: "Apache's mods-available folder.") var modsAvailable = "/etc/apache2/mods-available"

    func run() throws {
        try expressMain {
            let moduleDirectory = try Environment.modulesDirectory()
            let source = try Environment.findModule(module, moduleDirectory)
            let prefix = root ?? ProcessInfo.processInfo.environment["SWGI_INSTALL_ROOT"] ?? ""
            let fm = FileManager.default
            let installed = moduleDirectory + "/mod_swgi.so"
            do {
                for dir in [prefix + moduleDirectory, prefix + modsAvailable] {
                    try fm.createDirectory(atPath: dir, withIntermediateDirectories: true)
                }
                let target = prefix + installed
                let temp = target + ".new"
                try? fm.removeItem(atPath: temp)
                try fm.copyItem(atPath: source, toPath: temp)
                chmod(temp, 0o644)
                guard rename(temp, target) == 0 else { throw Failure("cannot rename into \(target)") }
                try "LoadModule swgi_module \(installed)\n"
                    .write(toFile: prefix + modsAvailable + "/swgi.load", atomically: true, encoding: .utf8)
                try """
                    # mod_swgi: serve SWGI (Swift) applications. Map them with, for example:
                    #
                    #   SWGIAppAlias /hello /srv/apps/libHello.so
                    #   <Directory /srv/apps>
                    #       Require all granted
                    #   </Directory>
                    #
                    # Libraries must be readable by Apache's user; install new builds
                    # by renaming a new file into place, then apachectl graceful.

                    """.write(toFile: prefix + modsAvailable + "/swgi.conf", atomically: true, encoding: .utf8)
            } catch let error as Failure {
                throw error
            } catch {
                throw Failure("cannot install mod_swgi: \(error.localizedDescription). "
                              + "Run as root, or install under another folder with --root.")
            }
            print("""
                installed \(prefix + installed)
                wrote \(prefix + modsAvailable)/swgi.load and swgi.conf
                enable it with: a2enmod swgi && apachectl graceful
                """)
        }
    }
}

/// Runs a command body, turning a Failure into one paragraph and exit 1.
func expressMain(_ body: () throws -> Void) throws {
    do {
        try body()
    } catch let failure as Failure {
        warn("swgi-express: " + failure.description)
        throw ExitCode(1)
    }
}

/// `httpd -t` on the written configuration.
func configtest(_ root: ServerRoot) throws {
    do {
        try run(root.environment.httpd, ["-d", root.path, "-f", root.conf, "-t"])
    } catch {
        throw Failure("Apache rejects the configuration in \(root.conf):\n\(error)")
    }
}
