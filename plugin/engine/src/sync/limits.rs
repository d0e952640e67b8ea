//! Bounds on what one Sync or GetItemEstimate request may cost. Everything a client or the
//! host controls (collection counts, window sizes, folder sizes, message sizes) is capped here.

/// WindowSize when the client sends none (MS-ASCMD §2.2.3.199).
pub const DEFAULT_WINDOW_SIZE: usize = 100;

/// The largest WindowSize; 0 and anything larger mean this (MS-ASCMD §2.2.3.199).
pub const MAX_WINDOW_SIZE: usize = 512;

/// Collections in one Sync request; more is answered with Status 15 and this as Limit.
pub const MAX_SYNC_COLLECTIONS: usize = 100;

/// Add/Change/Delete/Fetch commands from the client in one Sync (MS-ASCMD §3.1.5.10).
pub const MAX_CLIENT_COMMANDS: usize = 200;

/// Messages one collection tracks (held by the device plus still to send). A first listing of
/// a larger folder keeps the newest ones.
pub const MAX_TRACKED: usize = 100_000;

/// Encoded bytes of one collection's server changes before the rest waits for MoreAvailable.
/// The encoded collection is also kept for a retry, and stored values are limited (4 MiB by
/// default on the host), so this stays well below that. Big enough for a window of 100
/// typical messages with whole bodies (~10 KB each): every page has a fixed cost (a state
/// commit, IMAP round trips), so fewer, fuller pages make an initial sync faster.
pub const COLLECTION_BYTES: usize = 1536 * 1024;

/// Encoded bytes of server changes in one response, all collections together.
pub const RESPONSE_BYTES: usize = 2 * 1024 * 1024;

/// Body bytes of one item in a Sync response. A body over this (with no smaller
/// TruncationSize asked for) is sent truncated; the client fetches the rest with
/// ItemOperations.
pub const MAX_SYNC_BODY_BYTES: u32 = 256 * 1024;

/// Bytes of each message's body fetched with its summary, at most. The header block comes
/// whole besides (`fetch-summaries` in `wit/gateway.wit`).
pub const MAX_PREFIX_BYTES: u32 = 64 * 1024;

/// Bytes of each message's body fetched with its summary, at least: the MIME framing and
/// the first part's headers come before its text. (When the prefix was the message's first
/// 16 KiB, long header blocks had to fit in it too; an initial sync of 255-byte text bodies
/// fetched almost every message whole.)
pub const MIN_PREFIX_BYTES: u32 = 4 * 1024;

/// A message is fetched whole (when its prefix did not hold enough body) only up to this size.
pub const MAX_FULL_FETCH_BYTES: u32 = 1024 * 1024;

/// Bytes fetched whole for one batch, all messages together.
pub const BATCH_FULL_FETCH_BYTES: u64 = 4 * 1024 * 1024;

/// A message fetched for a Fetch command inside Sync, at most (larger: truncated body).
pub const MAX_FETCH_COMMAND_BYTES: u32 = 8 * 1024 * 1024;

/// Longest SyncKey or CollectionId accepted (MS-ASCMD: SyncKey ≤ 64 characters).
pub const MAX_ID_LEN: usize = 64;

/// Wait range in minutes (MS-ASCMD §2.2.3.198); HeartbeatInterval's comes from the tenant
/// settings, as for Ping.
pub const WAIT_MINUTES: std::ops::RangeInclusive<u32> = 1..=59;
