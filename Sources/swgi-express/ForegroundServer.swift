import Dispatch
import Foundation

/// Apache in the foreground (-DFOREGROUND), a child of swgi-express: its
/// logs on the terminal; SIGINT/SIGTERM stop it and wait for it, so that no
/// process is left behind; with reload, a changed library is installed anew
/// and Apache restarted gracefully (SIGUSR1).
final class ForegroundServer: @unchecked Sendable {
    let root: ServerRoot
    let reload: Bool
    private let process = Process()
    private var signalSources: [any DispatchSourceSignal] = []
    private var watcher: (any DispatchSourceTimer)?
    private var stamps: [String: Stamp] = [:]

    struct Stamp: Equatable {
        let inode: UInt64
        let size: Int64
        let mtime: Int
    }

    init(root: ServerRoot, reload: Bool) {
        self.root = root
        self.reload = reload
    }

    func start() throws {
        let httpd = [root.environment.httpd, "-d", root.path, "-f", root.conf, "-DFOREGROUND"]
        if let setpriv = which(["setpriv"], extra: ["/usr/bin"]) {
            // Apache ends with swgi-express even if swgi-express is killed outright.
            process.executableURL = URL(fileURLWithPath: setpriv)
            process.arguments = ["--pdeathsig", "TERM", "--"] + httpd
        } else {
            process.executableURL = URL(fileURLWithPath: httpd[0])
            process.arguments = Array(httpd.dropFirst())
        }
        for sig in [SIGINT, SIGTERM, SIGHUP] {
            signal(sig, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: sig, queue: .global())
            source.setEventHandler { [weak self] in self?.stop() }
            source.resume()
            signalSources.append(source)
        }
        try process.run()
        if reload {
            for mount in root.mounts { stamps[mount.library] = Self.stamp(mount.library) }
            let timer = DispatchSource.makeTimerSource(queue: .global())
            timer.schedule(deadline: .now() + 1, repeating: 1)
            timer.setEventHandler { [weak self] in self?.checkForChanges() }
            timer.resume()
            watcher = timer
        }
    }

    /// Waits until Apache accepts connections on its port; fails with its
    /// own words if it ends first.
    func waitUntilListening(timeout: Double = 30) throws {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            guard process.isRunning else {
                throw Failure("Apache stopped at start (status \(process.terminationStatus)); its error log is above.")
            }
            if Self.accepts(host: root.settings.host, port: root.settings.port) { return }
            usleep(50_000)
        }
        stop()
        throw Failure("Apache did not start listening on \(root.settings.host):\(root.settings.port) within \(Int(timeout)) s.")
    }

    static func accepts(host: String, port: Int) -> Bool {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = in_port_t(UInt16(port).bigEndian)
        inet_pton(AF_INET, host, &addr.sin_addr)
        return withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        } == 0
    }

    func stop() {
        if process.isRunning {
            kill(process.processIdentifier, SIGTERM)
        }
    }

    /// Waits for Apache to end; its exit status (0 after a stop by signal).
    func wait() -> Int32 {
        process.waitUntilExit()
        watcher?.cancel()
        return process.terminationReason == .uncaughtSignal ? 0 : process.terminationStatus
    }

    private func checkForChanges() {
        var changed: [String] = []
        for (i, mount) in root.mounts.enumerated() {
            guard let stamp = Self.stamp(mount.library), stamp != stamps[mount.library] else { continue }
            // Wait until the file stops changing (a build may still be writing it).
            usleep(200_000)
            guard Self.stamp(mount.library) == stamp else { continue }
            do {
                try root.install(mount.library, at: root.copy(of: mount, index: i))
                stamps[mount.library] = stamp
                changed.append(mount.library)
            } catch {
                warn("swgi-express: cannot install the new \(mount.library): \(error)")
            }
        }
        if !changed.isEmpty, process.isRunning {
            warn("swgi-express: \(changed.joined(separator: ", ")) changed: graceful restart")
            kill(process.processIdentifier, SIGUSR1)
        }
    }

    static func stamp(_ path: String) -> Stamp? {
        var info = stat()
        guard stat(path, &info) == 0 else { return nil }
        return Stamp(inode: UInt64(info.st_ino), size: Int64(info.st_size), mtime: Int(info.st_mtim.tv_sec) * 1_000_000_000 + info.st_mtim.tv_nsec)
    }
}
