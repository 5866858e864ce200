import Dispatch
import Foundation

/// Apache in the foreground (-DFOREGROUND), a child of swgi-express: its
/// logs on the terminal; SIGINT/SIGTERM stop it and wait for it, so that no
/// process is left behind; with reload, a changed library is installed anew
/// and Apache restarted gracefully (SIGUSR1).
///
/// Apache is started with posix_spawn and waited for with waitpid, in a
/// process group of its own. (Foundation's `Process` learns that a child
/// ended when every holder of a socket it gives the child has closed it:
/// Apache's own children and daemon processes inherit that socket, so one
/// that outlived Apache kept swgi-express waiting for ever.) Once Apache has
/// ended, whatever is left of its group is stopped.
final class ForegroundServer: @unchecked Sendable {
    let root: ServerRoot
    let reload: Bool
    private var signalSources: [any DispatchSourceSignal] = []
    private var watcher: (any DispatchSourceTimer)?
    private var stamps: [String: Stamp] = [:]
    // Apache's pid, and its wait status once reaped; under `lock`, so that
    // no signal goes to a pid that was reaped (and may be reused).
    private let lock = NSLock()
    private var pid: pid_t = 0
    private var status: Int32?
    private var stopRequested = false

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
        var command = [root.environment.httpd, "-d", root.path, "-f", root.conf, "-DFOREGROUND"]
        if let setpriv = which(["setpriv"], extra: ["/usr/bin"]) {
            // Apache ends with swgi-express even if swgi-express is killed outright.
            command = [setpriv, "--pdeathsig", "TERM", "--"] + command
        }
        for sig in [SIGINT, SIGTERM, SIGHUP] {
            signal(sig, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: sig, queue: .global())
            source.setEventHandler { [weak self] in self?.stop() }
            source.resume()
            signalSources.append(source)
        }
        try spawn(command)
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
            if let status = reapIfEnded() {
                throw Failure("Apache stopped at start (\(WaitStatus(status))); its error log is above.")
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

    /// Asks Apache to stop (SIGTERM); asked before it was started, it is
    /// stopped as soon as it is.
    func stop() {
        lock.lock()
        defer { lock.unlock() }
        stopRequested = true
        if pid > 0 && status == nil {
            kill(pid, SIGTERM)
        }
    }

    /// Waits for Apache to end, then stops what is left of its process
    /// group; its exit status (0 after a stop asked for by a signal, 128 +
    /// the signal's number when a signal ended it otherwise).
    func wait() -> Int32 {
        // Blocks until Apache ends without reaping it (WNOWAIT): until it is
        // reaped under the lock, its pid stays Apache's for stop().
        var info = siginfo_t()
        while waitid(P_PID, id_t(pid), &info, WEXITED | WNOWAIT) < 0 && errno == EINTR {}
        let status = WaitStatus(reapIfEnded() ?? 0)
        watcher?.cancel()
        endGroup()
        lock.lock()
        let asked = stopRequested
        lock.unlock()
        guard let signal = status.signal else { return status.exitCode }
        if asked && (signal == SIGTERM || signal == SIGINT) { return 0 }
        warn("swgi-express: Apache ended by \(status)")
        return 128 + signal
    }

    private func spawn(_ command: [String]) throws {
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        // No signal blocked, every signal's default action (swgi-express
        // ignores SIGINT, SIGTERM and SIGHUP), and a process group of its own.
        var none = sigset_t()
        sigemptyset(&none)
        posix_spawnattr_setsigmask(&attributes, &none)
        var defaults = sigset_t()
        sigfillset(&defaults)
        sigdelset(&defaults, SIGKILL)
        sigdelset(&defaults, SIGSTOP)
        posix_spawnattr_setsigdefault(&attributes, &defaults)
        posix_spawnattr_setpgroup(&attributes, 0)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETPGROUP))
        let argv: [UnsafeMutablePointer<CChar>?] = command.map { strdup($0) } + [nil]
        defer { for arg in argv { free(arg) } }
        var child: pid_t = 0
        let rc = posix_spawn(&child, command[0], nil, &attributes, argv, environ)
        guard rc == 0 else {
            throw Failure("cannot start \(command[0]): \(String(cString: strerror(rc)))")
        }
        lock.lock()
        pid = child
        if stopRequested { kill(child, SIGTERM) }
        lock.unlock()
    }

    /// Apache's wait status if it has ended (reaped here, once).
    private func reapIfEnded() -> Int32? {
        lock.lock()
        defer { lock.unlock() }
        if status == nil {
            var raw: Int32 = 0
            if waitpid(pid, &raw, WNOHANG) == pid { status = raw }
        }
        return status
    }

    /// Stops what is left of Apache's process group (its children and
    /// daemon processes end with it; this is for any that did not): SIGTERM,
    /// and SIGKILL after 20 seconds (past a daemon's default graceful-timeout
    /// of 15 s for the requests it was serving).
    private func endGroup() {
        guard pid > 0, kill(-pid, SIGTERM) == 0 else { return }
        let deadline = Date().addingTimeInterval(20)
        while Date() < deadline {
            if kill(-pid, 0) != 0 { return }
            usleep(20_000)
        }
        warn("swgi-express: processes of Apache's group were still running 20 s after it ended: killed")
        kill(-pid, SIGKILL)
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
        if !changed.isEmpty {
            lock.lock()
            defer { lock.unlock() }
            guard pid > 0 && status == nil else { return }
            warn("swgi-express: \(changed.joined(separator: ", ")) changed: graceful restart")
            kill(pid, SIGUSR1)
        }
    }

    static func stamp(_ path: String) -> Stamp? {
        var info = stat()
        guard stat(path, &info) == 0 else { return nil }
        return Stamp(inode: UInt64(info.st_ino), size: Int64(info.st_size), mtime: Int(info.st_mtim.tv_sec) * 1_000_000_000 + info.st_mtim.tv_nsec)
    }
}

/// A wait status from waitpid (the C macros WIFSIGNALED and the others are
/// not visible from Swift).
struct WaitStatus: CustomStringConvertible {
    let raw: Int32

    init(_ raw: Int32) { self.raw = raw }

    /// The signal that ended the process, if one did.
    var signal: Int32? {
        let number = raw & 0x7f
        return number != 0 && number != 0x7f ? number : nil
    }

    var exitCode: Int32 { (raw >> 8) & 0xff }

    var description: String {
        signal.map { "signal \($0)" } ?? "status \(exitCode)"
    }
}
