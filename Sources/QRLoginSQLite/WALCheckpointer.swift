import Foundation
import Logging
import VaporCSQLite

/// Keeps WAL checkpoints off the threads that call the store.
///
/// SQLite's automatic checkpoint runs inside the commit that takes the log past 1,000 frames, on
/// the committing thread: it copies the log into the database file and `fsync`s both, which takes
/// milliseconds on a real disk, and the store's callers are the server's request threads. So the
/// store's connection gets a WAL hook instead, which only compares the log's length with what
/// was last checkpointed; once `threshold` frames are new it wakes this checkpointer's own thread,
/// which runs a passive checkpoint on its own connection (one that neither waits for nor blocks
/// readers and writers).
///
/// A passive checkpoint copies frames but cannot restart the log while writes keep coming: the
/// log restarts from its beginning only when a write finds every frame copied. Under a steady
/// stream of writes that never happens, so a commit that finds the log at `4 × threshold` frames
/// checkpoints on its own thread, as SQLite's automatic checkpoint would have, and the next write
/// restarts the log. By then the background passes have copied all but the newest frames, so the
/// inline checkpoint has little to copy; the log's size stays bounded either way.
final class WALCheckpointer: @unchecked Sendable {
    /// New frames that wake the background checkpoint.
    let threshold: Int32
    private let connection: SQLiteConnection
    private let logger: Logger
    private let condition = NSCondition()
    // Guarded by `condition`.
    private var wanted = false
    private var stopping = false
    private var checkpointedFrames: Int32 = 0
    private var backgroundPasses = 0
    private var inlinePasses = 0
    private let finished = DispatchSemaphore(value: 0)

    /// Opens the checkpointer's own connection to the database at `path` and starts its thread.
    init(path: String, threshold: Int32, logger: Logger) throws {
        self.threshold = max(1, threshold)
        self.logger = logger
        self.connection = try SQLiteConnection.open(path: path)
        // A connection learns that the file is in WAL mode on its first read; until then a
        // checkpoint does nothing (and says so with -1 frames).
        try connection.execute("PRAGMA journal_mode = WAL", cached: false)
        let thread = Thread { [self] in run() }
        thread.name = "qrlogin-sqlite-checkpoint"
        thread.start()
    }

    /// Installs the hook on the store's `connection`. The hook holds this checkpointer unretained:
    /// ``remove(from:)`` must run before the store lets go of it.
    func install(on connection: SQLiteConnection) {
        connection.setWALHook(walHook, context: Unmanaged.passUnretained(self).toOpaque())
    }

    /// Removes the hook from `connection`.
    func remove(from connection: SQLiteConnection) {
        connection.setWALHook(nil, context: nil)
    }

    /// Checkpoints done so far: by the background thread (those that copied frames), and inline
    /// by a commit that found the log at its bound.
    var passes: (background: Int, inline: Int) {
        condition.lock()
        defer { condition.unlock() }
        return (backgroundPasses, inlinePasses)
    }

    /// Stops the thread (after the pass it may be running) and closes its connection. Later calls
    /// do nothing.
    func stop() {
        condition.lock()
        let first = !stopping
        stopping = true
        condition.signal()
        condition.unlock()
        guard first else { return }
        finished.wait()
        do {
            try connection.close()
        } catch {
            logger.warning("SQLite checkpoint connection did not close", metadata: ["qrlogin.sqlite.error": "\(error)"])
        }
    }

    /// Called after every commit on the store's connection, on the committing thread and under
    /// the store's lock, with the number of frames in the log.
    fileprivate func walGrew(to frames: Int32, database: OpaquePointer?) {
        if frames >= threshold &* 4 {
            // The background passes cannot restart the log under steady writes: finish here.
            // SQLITE_BUSY while a background pass holds the checkpoint lock: the next commit tries again.
            let result = sqlite_nio_sqlite3_wal_checkpoint_v2(database, "main", SQLITE_CHECKPOINT_PASSIVE, nil, nil)
            if result == SQLITE_OK {
                condition.lock()
                inlinePasses += 1
                checkpointedFrames = 0
                condition.unlock()
            }
            return
        }
        condition.lock()
        defer { condition.unlock() }
        // Fewer frames than were checkpointed: the log has restarted from its beginning.
        if frames < checkpointedFrames { checkpointedFrames = 0 }
        if !wanted, frames - checkpointedFrames >= threshold {
            wanted = true
            condition.signal()
        }
    }

    private func run() {
        while true {
            condition.lock()
            while !wanted, !stopping { condition.wait() }
            if stopping {
                condition.unlock()
                break
            }
            condition.unlock()
            do {
                let copied = try connection.checkpointPassive()
                condition.lock()
                checkpointedFrames = Int32(clamping: copied)
                if copied > 0 { backgroundPasses += 1 }
                wanted = false
                condition.unlock()
            } catch {
                logger.warning("SQLite background checkpoint failed", metadata: ["qrlogin.sqlite.error": "\(error)"])
                condition.lock()
                wanted = false
                condition.unlock()
            }
        }
        finished.signal()
    }
}

/// The C hook: forwards to the checkpointer in `context`.
private let walHook: WALHook = { context, database, _, frames in
    guard let context else { return SQLITE_OK }
    Unmanaged<WALCheckpointer>.fromOpaque(context).takeUnretainedValue().walGrew(to: frames, database: database)
    return SQLITE_OK
}
