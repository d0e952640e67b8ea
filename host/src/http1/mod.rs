//! The phones' HTTP/1.1 server: one connection, its requests one after another.
//!
//! Why not hyper here: a phone's connection spends almost all its life in a parked Ping, and hyper
//! keeps a connection's read buffer (8-16 KiB) and header write buffer (8 KiB) allocated for as long
//! as the connection lives, three times the whole budget of a parked Ping (issue #5, 8 KB; the
//! measurements are in docs/benchmarks.md, "Push"). Here a connection holds only what it is using:
//! while its request waits, the socket, the request's future and an empty buffer. Parsing is
//! httparse's (as in hyper); what is left is framing, which EAS keeps simple.
//!
//! HTTP/2 stays with hyper: a connection that opens with the HTTP/2 preface is handed back to
//! the caller with the bytes read so far ([`Ended::Http2`]).

mod body;
mod decode;
mod head;
mod prefixed;
mod response;

pub use body::{BodyFailure, RequestBody};
pub use prefixed::Prefixed;

use body::Chunk;
use bytes::{Buf, Bytes, BytesMut};
use decode::BodyDecoder;
use head::{Head, Parsed};
use http::{Method, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use response::{Framed, allows_body, write_head};
use std::future::Future;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;
use tokio::time::{Instant, timeout, timeout_at};

/// How long a connection may sit between requests (and before its first).
const IDLE_TIMEOUT: Duration = Duration::from_secs(120);
/// From a head's first byte to its end: a client sending its head a byte at a time (slowloris)
/// is answered 408 and closed.
const HEAD_TIMEOUT: Duration = Duration::from_secs(30);
/// Bytes asked of the socket per read while reading a head.
const HEAD_READ_SIZE: usize = 2048;
/// Bytes asked of the socket per read while reading a body.
const BODY_READ_SIZE: usize = 64 * 1024;
/// A body the handler did not read (a refused login) is read and dropped, keeping the connection,
/// if this little is left of it; a longer one, or a chunked one, closes the connection instead.
const DRAIN_LIMIT: u64 = 64 * 1024;
const DRAIN_TIMEOUT: Duration = Duration::from_secs(5);
/// Responses up to this size go out in one write with their head (no Nagle wait between two).
const COALESCE_LIMIT: usize = 256 * 1024;

/// How a connection ended.
#[derive(Debug)]
pub enum Ended<S> {
    Closed,
    /// It opened with the HTTP/2 preface: serve it with an HTTP/2 server, from the first byte.
    Http2(Prefixed<S>),
}

/// Serves the requests of one connection until it closes, each answered by `handle`.
pub async fn serve<S, H, F>(mut stream: S, mut handle: H) -> Ended<S>
where
    S: AsyncRead + AsyncWrite + Unpin,
    H: FnMut(http::Request<RequestBody>) -> F,
    F: Future<Output = Response<Full<Bytes>>>,
{
    let mut buffer = BytesMut::new();
    let mut first = true;
    loop {
        // boxed like the other steps that never run while a request waits (`exchange`): the
        // connection's task then holds only the waiting step's state
        let head = match Box::pin(read_head(&mut stream, &mut buffer, first)).await {
            HeadRead::Head(head) => head,
            HeadRead::Http2 => return Ended::Http2(Prefixed::new(buffer, stream)),
            HeadRead::Closed => return Ended::Closed,
            HeadRead::Refused(status) => {
                tracing::debug!(%status, "refusing an HTTP/1 request head");
                let refusal = Response::builder().status(status).body(Full::new(Bytes::new()));
                if let Ok(refusal) = refusal {
                    Box::pin(write_response(&mut stream, refusal, false, false)).await;
                }
                return Ended::Closed;
            }
        };
        first = false;
        if !exchange(&mut stream, &mut buffer, head, &mut handle).await {
            let _ = stream.shutdown().await;
            return Ended::Closed;
        }
    }
}

enum HeadRead {
    Head(Box<Head>),
    Http2,
    Closed,
    Refused(StatusCode),
}

async fn read_head<S>(stream: &mut S, buffer: &mut BytesMut, first: bool) -> HeadRead
where
    S: AsyncRead + Unpin,
{
    // parse only when a line may have ended: a head trickled in a byte at a time is then parsed
    // once per line (at most ~100 lines, see `head`), not once per byte
    let mut worth_parsing = !buffer.is_empty();
    let mut deadline = None;
    loop {
        if worth_parsing {
            match head::parse(buffer, first) {
                Ok(Parsed::Complete { head, length }) => {
                    buffer.advance(length);
                    return HeadRead::Head(head);
                }
                Ok(Parsed::Http2) => return HeadRead::Http2,
                Ok(Parsed::Partial) => {}
                Err(status) => return HeadRead::Refused(status),
            }
        }
        if !buffer.is_empty() && deadline.is_none() {
            deadline = Some(Instant::now() + HEAD_TIMEOUT);
        }
        let limit = deadline.unwrap_or_else(|| Instant::now() + IDLE_TIMEOUT);
        let before = buffer.len();
        buffer.reserve(HEAD_READ_SIZE);
        match timeout_at(limit, stream.read_buf(buffer)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return HeadRead::Closed,
            Ok(Ok(_)) => {}
            Err(_) if buffer.is_empty() => return HeadRead::Closed,
            Err(_) => return HeadRead::Refused(StatusCode::REQUEST_TIMEOUT),
        }
        worth_parsing = memchr::memchr(b'\n', &buffer[before..]).is_some()
            || buffer.len() > head::MAX_HEAD_BYTES
            || (first && buffer.len() >= 24);
    }
}

/// One request and its response. False when the connection must close afterwards. (`head`
/// comes boxed: an async fn keeps its parameters for its whole life, and this one lasts as
/// long as the request is parked.)
async fn exchange<S, H, F>(
    stream: &mut S,
    buffer: &mut BytesMut,
    head: Box<Head>,
    handle: &mut H,
) -> bool
where
    S: AsyncRead + AsyncWrite + Unpin,
    H: FnMut(http::Request<RequestBody>) -> F,
    F: Future<Output = Response<Full<Bytes>>>,
{
    let Head { parts, framing, keep_alive, expects_continue } = *head;
    let head_request = parts.method == Method::HEAD;
    let mut decoder = BodyDecoder::new(framing);
    if expects_continue && !decoder.is_done() && buffer.is_empty() {
        // sent at once rather than when the body is first read: simpler, and a client that
        // gets a refusal instead of its body's turn just sees the connection close
        if stream.write_all(b"HTTP/1.1 100 Continue\r\n\r\n").await.is_err() {
            return false;
        }
    }
    let (chunks, receiver) = mpsc::channel(1);
    let request =
        http::Request::from_parts(parts, RequestBody::new(receiver, decoder.remaining_length()));
    // boxed: while the request is parked, this is all the connection holds besides its socket
    let mut answer = Box::pin(handle(request));
    let response = tokio::select! {
        response = &mut answer => Some(response),
        () = feed_then_watch(stream, buffer, &mut decoder, chunks) => None,
    };
    drop(answer);
    // the client went away while its request was answered (or parked): the answer is dropped
    // with it, which frees a parked request's record
    let Some(response) = response else { return false };
    let keep_alive =
        keep_alive && (decoder.is_done() || Box::pin(drain(stream, buffer, &mut decoder)).await);
    Box::pin(write_response(stream, response, head_request, keep_alive)).await
}

/// Hands the body to the handler chunk by chunk as it reads it, then waits for the client to
/// close the connection (its answer is then moot) while the handler works or waits.
async fn feed_then_watch<S>(
    stream: &mut S,
    buffer: &mut BytesMut,
    decoder: &mut BodyDecoder,
    chunks: mpsc::Sender<Chunk>,
) where
    S: AsyncRead + Unpin,
{
    while !decoder.is_done() {
        // fails when the handler dropped its body unread: leave the rest to `drain`
        let Ok(permit) = chunks.reserve().await else { break };
        match next_chunk(stream, buffer, decoder).await {
            Ok(Some(chunk)) => permit.send(Ok(chunk)),
            Ok(None) => {}
            Err(failure) => {
                permit.send(Err(failure));
                // the handler answers the failure; the connection closes after it
                return std::future::pending().await;
            }
        }
    }
    drop(chunks);
    if buffer.is_empty() {
        // nothing pipelined: do not keep the read buffer's capacity while the request waits
        *buffer = BytesMut::new();
    }
    let mut scratch = [0_u8; 64];
    loop {
        if buffer.len() >= head::MAX_HEAD_BYTES {
            // a client pipelining this much can wait for its answer: stop reading
            return std::future::pending().await;
        }
        match stream.read(&mut scratch).await {
            Ok(0) | Err(_) => return,
            Ok(read) => buffer.extend_from_slice(&scratch[..read]),
        }
    }
}

/// The next run of body bytes, or None at the end of the body.
async fn next_chunk<S>(
    stream: &mut S,
    buffer: &mut BytesMut,
    decoder: &mut BodyDecoder,
) -> Result<Option<Bytes>, BodyFailure>
where
    S: AsyncRead + Unpin,
{
    loop {
        if !buffer.is_empty() {
            let step =
                decoder.decode(buffer).map_err(|decode::Malformed| BodyFailure::Malformed)?;
            match step.data {
                Some(range) => {
                    buffer.advance(range.start);
                    return Ok(Some(buffer.split_to(range.len()).freeze()));
                }
                None => buffer.advance(step.consumed),
            }
        }
        if decoder.is_done() {
            return Ok(None);
        }
        let wanted = decoder.remaining_length().unwrap_or(BODY_READ_SIZE as u64);
        buffer.reserve(usize::try_from(wanted).unwrap_or(BODY_READ_SIZE).clamp(1, BODY_READ_SIZE));
        match stream.read_buf(buffer).await {
            Ok(0) => return Err(BodyFailure::Truncated),
            Ok(_) => {}
            Err(_) => return Err(BodyFailure::Io),
        }
    }
}

/// Reads and drops what the handler left of a short body, so the connection can carry the next
/// request. False when it could not (too long, chunked, slow, broken): close instead.
async fn drain<S>(stream: &mut S, buffer: &mut BytesMut, decoder: &mut BodyDecoder) -> bool
where
    S: AsyncRead + Unpin,
{
    if decoder.remaining_length().is_none_or(|left| left > DRAIN_LIMIT) {
        return false;
    }
    let skipped = timeout(DRAIN_TIMEOUT, async {
        while !decoder.is_done() {
            next_chunk(stream, buffer, decoder).await?;
        }
        Ok::<_, BodyFailure>(())
    });
    matches!(skipped.await, Ok(Ok(())))
}

/// Writes `response`; true when the connection stays open for another request.
async fn write_response<S>(
    stream: &mut S,
    response: Response<Full<Bytes>>,
    head_request: bool,
    keep_alive: bool,
) -> bool
where
    S: AsyncWrite + Unpin,
{
    let (parts, body) = response.into_parts();
    let body = match body.collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(never) => match never {},
    };
    let framed = Framed { body_length: body.len(), keep_alive };
    let send_body = !head_request && allows_body(parts.status) && !body.is_empty();
    let mut out = Vec::with_capacity(512);
    write_head(&parts, framed, &httpdate::fmt_http_date(std::time::SystemTime::now()), &mut out);
    // A client that stops reading must not hold its response in memory for ever: it gets the
    // time a request body of that size would get.
    let limit = crate::request_body::deadline(body.len() as u64);
    let written = timeout(limit, async {
        if send_body && body.len() <= COALESCE_LIMIT {
            out.extend_from_slice(&body);
            stream.write_all(&out).await?;
        } else {
            stream.write_all(&out).await?;
            if send_body {
                stream.write_all(&body).await?;
            }
        }
        stream.flush().await
    });
    matches!(written.await, Ok(Ok(()))) && keep_alive
}

#[cfg(test)]
mod tests;
