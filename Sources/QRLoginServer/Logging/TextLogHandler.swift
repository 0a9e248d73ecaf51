import Logging

/// The text log (`--log-format text`, the default): swift-log's `StreamLogHandler` writes every
/// line, in its format; this handler keeps the logger's own metadata and hands it over with each
/// line instead of setting it on the stream handler.
///
/// `StreamLogHandler` formats its metadata into text each time a key is set, and Hummingbird sets
/// `hb.request.id` on every request's logger whether or not anything is logged: 3.7% of an
/// introspection's server CPU in a profile (BENCHMARKS.md). Here a key set is only stored; the
/// text is made when a line is written.
public struct TextLogHandler: LogHandler {
    private var stream: StreamLogHandler
    public var metadata: Logger.Metadata = [:]
    public var metadataProvider: Logger.MetadataProvider?

    public var logLevel: Logger.Level {
        get { stream.logLevel }
        set { stream.logLevel = newValue }
    }

    /// A handler for `label` writing to standard error, as swift-log's default handler does.
    public init(label: String, metadataProvider: Logger.MetadataProvider? = LoggingSystem.metadataProvider) {
        self.init(wrapping: StreamLogHandler.standardError(label: label, metadataProvider: nil), metadataProvider: metadataProvider)
    }

    /// A handler whose lines `stream` writes (its own metadata and provider are not used).
    public init(wrapping stream: StreamLogHandler, metadataProvider: Logger.MetadataProvider? = nil) {
        self.stream = stream
        self.stream.metadata = [:]
        self.stream.metadataProvider = nil
        self.metadataProvider = metadataProvider
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        // Merged as StreamLogHandler merges them: the logger's, the provider's, the line's own.
        var merged = metadata
        if let provided = metadataProvider?.get(), !provided.isEmpty { merged.merge(provided) { $1 } }
        if let explicit = event.metadata { merged.merge(explicit) { $1 } }
        var event = event
        event.metadata = merged
        stream.log(event: event)
    }
}
