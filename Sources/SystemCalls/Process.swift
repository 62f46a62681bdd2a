import Dispatch
import Glibc

/// Process-wide limits.
public enum ResourceLimits {
    /// Raises the soft limit on open descriptors to the hard one, as virtiofsd
    /// does before it holds a descriptor per directory. Quietly keeps the
    /// limit where raising it is not allowed.
    public static func raiseOpenFileLimit() {
        var limit = rlimit()
        let resource = __rlimit_resource_t(RLIMIT_NOFILE.rawValue)
        guard getrlimit(resource, &limit) == 0, limit.rlim_cur < limit.rlim_max else { return }
        limit.rlim_cur = limit.rlim_max
        _ = setrlimit(resource, &limit)
    }
}

/// The signals statetool handles.
public enum Signal: Int32, Sendable {
    /// SIGINT: Ctrl-C.
    case interrupt = 2
    /// SIGPIPE: a write to a pipe nobody reads.
    case brokenPipe = 13
    /// SIGTERM: asked to stop.
    case terminate = 15
}

/// Process-wide signal dispositions.
public enum Signals {
    /// Ignores `signal` (SIGPIPE, so a closed pipe is an `EPIPE` error instead).
    public static func ignore(_ signal: Signal) {
        _ = Glibc.signal(signal.rawValue, SIG_IGN)
    }

    /// Runs `handler` on a global queue when one of `signals` arrives, in
    /// place of their default action, for as long as the returned sources
    /// are kept (cancel them to stop).
    public static func handle(_ signals: [Signal], _ handler: @escaping @Sendable () -> Void) -> [any DispatchSourceSignal] {
        signals.map { signal in
            ignore(signal)
            let source = DispatchSource.makeSignalSource(signal: signal.rawValue, queue: .global())
            source.setEventHandler(handler: handler)
            source.resume()
            return source
        }
    }

    /// Ends the process at once with `status`, running no more Swift code.
    public static func exit(_ status: Int32) -> Never {
        Glibc.exit(status)
    }
}
