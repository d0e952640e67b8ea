//! One IMAP connection: the byte stream (plain or TLS), the receive buffer, and reading whole
//! responses out of it under time limits.

use std::time::Duration;

use bytes::{Buf, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;
use tokio_rustls::client::TlsStream;

use super::error::ImapError;
use super::response::framing::{Frame, FrameLimits, find_frame};
use super::response::{Response, parse_response};
use super::tls::TlsClient;

/// Reads ask for at least this much room: large enough that a 10,000-message FETCH is a few
/// thousand reads, not hundreds of thousands.
const READ_CHUNK: usize = 64 * 1024;

enum Transport {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
}

impl Transport {
    async fn read_into(&mut self, buffer: &mut BytesMut) -> std::io::Result<usize> {
        match self {
            Transport::Plain(stream) => stream.read_buf(buffer).await,
            Transport::Tls(stream) => stream.read_buf(buffer).await,
        }
    }

    async fn write_all(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        match self {
            Transport::Plain(stream) => stream.write_all(bytes).await,
            Transport::Tls(stream) => {
                stream.write_all(bytes).await?;
                stream.flush().await
            }
        }
    }
}

pub struct Connection {
    transport: Transport,
    buffer: BytesMut,
    /// Where [`find_frame`] resumes in `buffer` (start of the last incomplete line).
    resume_at: usize,
    /// Buffer length that could complete the current response; reads reserve up to it.
    wanted: usize,
    limits: FrameLimits,
    io_timeout: Duration,
    /// The end of the current operation: no read or write waits past it.
    deadline: Instant,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("tls", &matches!(self.transport, Transport::Tls(_)))
            .field("buffered", &self.buffer.len())
            .finish_non_exhaustive()
    }
}

impl Connection {
    pub async fn connect(
        host: &str,
        port: u16,
        connect_timeout: Duration,
        io_timeout: Duration,
        limits: FrameLimits,
    ) -> Result<Self, ImapError> {
        let stream = tokio::time::timeout(connect_timeout, TcpStream::connect((host, port)))
            .await
            .map_err(|_| {
                ImapError::Unavailable(format!(
                    "connecting to {host}:{port}: no answer within {connect_timeout:?}"
                ))
            })?
            .map_err(|error| ImapError::io(&format!("connecting to {host}:{port}"), &error))?;
        // commands are written whole (pipelined batches), so Nagle would only add latency
        stream.set_nodelay(true).map_err(|error| ImapError::io("setting TCP_NODELAY", &error))?;
        Ok(Self {
            transport: Transport::Plain(stream),
            buffer: BytesMut::with_capacity(READ_CHUNK),
            resume_at: 0,
            wanted: 0,
            limits,
            io_timeout,
            deadline: Instant::now() + connect_timeout,
        })
    }

    /// Switches to TLS (at once for implicit TLS, after the STARTTLS OK otherwise).
    pub async fn start_tls(self, tls: &TlsClient) -> Result<Self, ImapError> {
        // Bytes received before the handshake were sent in plain text and could be injected by
        // anyone on the path (the STARTTLS command injection class of bugs): refuse them.
        if !self.buffer.is_empty() {
            return Err(ImapError::Protocol("data after the STARTTLS answer".to_string()));
        }
        let Connection { transport, buffer, limits, io_timeout, deadline, .. } = self;
        let Transport::Plain(stream) = transport else {
            return Err(ImapError::Protocol("TLS started twice".to_string()));
        };
        let stream = tokio::time::timeout_at(deadline, tls.handshake(stream))
            .await
            .map_err(|_| ImapError::Unavailable("TLS handshake timed out".to_string()))??;
        Ok(Connection {
            transport: Transport::Tls(Box::new(stream)),
            buffer,
            resume_at: 0,
            wanted: 0,
            limits,
            io_timeout,
            deadline,
        })
    }

    /// Sets the end of the current operation.
    pub fn set_deadline(&mut self, deadline: Instant) {
        self.deadline = deadline;
    }

    /// Gives back the read buffer's room (64 KiB reserved per read) while nothing is buffered:
    /// for a session that waits in the pool, unused, next to thousands of others.
    pub fn release_buffer(&mut self) {
        if self.buffer.is_empty() {
            self.buffer = BytesMut::new();
            self.resume_at = 0;
            self.wanted = 0;
        }
    }

    pub fn limits(&self) -> FrameLimits {
        self.limits
    }

    /// Changes the size limits (e.g. for one large fetch); framing restarts from the current
    /// response's beginning, so this is safe between responses.
    pub fn set_limits(&mut self, limits: FrameLimits) {
        self.limits = limits;
        self.resume_at = 0;
    }

    pub async fn write_all(&mut self, bytes: &[u8]) -> Result<(), ImapError> {
        let limit = self.next_io_deadline();
        tokio::time::timeout_at(limit, self.transport.write_all(bytes))
            .await
            .map_err(|_| {
                ImapError::Unavailable("IMAP server stopped reading commands".to_string())
            })?
            .map_err(|error| ImapError::io("writing to the IMAP server", &error))
    }

    /// The next response; fails with `Unavailable` when the connection ends or the server is
    /// silent past the I/O timeout or the operation's deadline.
    pub async fn read_response(&mut self) -> Result<Response, ImapError> {
        loop {
            if let Some(response) = self.take_buffered()? {
                return Ok(response);
            }
            let limit = self.next_io_deadline();
            let read = tokio::time::timeout_at(limit, self.fill()).await.map_err(|_| {
                ImapError::Unavailable("IMAP server did not answer in time".to_string())
            })?;
            read?;
        }
    }

    /// Waits up to `wait` for the start of a response (nothing arriving is not an error:
    /// this is how pushed data is awaited), then reads it whole under the usual limits.
    pub async fn wait_for_response(
        &mut self,
        wait: Duration,
    ) -> Result<Option<Response>, ImapError> {
        if let Some(response) = self.take_buffered()? {
            return Ok(Some(response));
        }
        if self.buffer.is_empty() {
            // cancel-safe: read_buf either read bytes into the buffer or did nothing
            match tokio::time::timeout(wait, self.fill()).await {
                Err(_) => return Ok(None),
                Ok(read) => read?,
            }
        }
        self.read_response().await.map(Some)
    }

    /// A response that is already complete in the buffer, without reading.
    pub fn take_buffered(&mut self) -> Result<Option<Response>, ImapError> {
        match find_frame(&self.buffer, self.resume_at, &self.limits) {
            Ok(Frame::Complete(length)) => {
                let parsed = parse_response(&self.buffer[..length]);
                let is_untagged = self.buffer.starts_with(b"* ");
                let response = match parsed {
                    Ok(response) => response,
                    Err(error) if is_untagged => {
                        // unreadable untagged data: not worth the session, but worth a note
                        tracing::debug!(
                            %error,
                            start = %String::from_utf8_lossy(&self.buffer[..length.min(120)]),
                            "unparseable IMAP response skipped"
                        );
                        Response::Untagged(super::response::Untagged::Other(
                            "(unparseable)".to_string(),
                        ))
                    }
                    Err(error) => {
                        return Err(ImapError::Protocol(format!(
                            "unreadable response ({error}): {}",
                            String::from_utf8_lossy(&self.buffer[..length.min(200)])
                        )));
                    }
                };
                self.buffer.advance(length);
                self.resume_at = 0;
                self.wanted = 0;
                Ok(Some(response))
            }
            Ok(Frame::Incomplete { resume_at, wanted }) => {
                self.resume_at = resume_at;
                self.wanted = wanted;
                Ok(None)
            }
            Err(error) => Err(ImapError::Protocol(error.to_string())),
        }
    }

    async fn fill(&mut self) -> Result<(), ImapError> {
        // room for the rest of a pending literal in one go, else a normal chunk
        let missing = self.wanted.saturating_sub(self.buffer.len());
        self.buffer.reserve(missing.clamp(READ_CHUNK, 16 * READ_CHUNK));
        let read = self
            .transport
            .read_into(&mut self.buffer)
            .await
            .map_err(|error| ImapError::io("reading from the IMAP server", &error))?;
        if read == 0 {
            return Err(ImapError::Unavailable("the IMAP server closed the connection".into()));
        }
        Ok(())
    }

    fn next_io_deadline(&self) -> Instant {
        (Instant::now() + self.io_timeout).min(self.deadline)
    }
}
