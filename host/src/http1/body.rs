//! The body a request handler reads: chunks that the connection task takes off the socket one at
//! a time, when the handler asks for them. A handler that never reads its body (a refused login)
//! never makes the connection read it either.

use bytes::Bytes;
use hyper::body::{Body, Frame, SizeHint};
use std::pin::Pin;
use std::task::{Context, Poll};
use tokio::sync::mpsc;

/// Why a body ended before its framing said it would.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum BodyFailure {
    #[error("the client closed the connection in the middle of the body")]
    Truncated,
    #[error("malformed chunked transfer coding")]
    Malformed,
    #[error("reading the body failed")]
    Io,
}

pub type Chunk = Result<Bytes, BodyFailure>;

#[derive(Debug)]
pub struct RequestBody {
    chunks: mpsc::Receiver<Chunk>,
    size: SizeHint,
}

impl RequestBody {
    /// A body fed through `chunks`; it ends when the sender is dropped after the last chunk.
    pub fn new(chunks: mpsc::Receiver<Chunk>, declared_length: Option<u64>) -> RequestBody {
        let size = match declared_length {
            Some(length) => SizeHint::with_exact(length),
            None => SizeHint::default(),
        };
        RequestBody { chunks, size }
    }
}

impl Body for RequestBody {
    type Data = Bytes;
    type Error = BodyFailure;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        context: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BodyFailure>>> {
        self.chunks.poll_recv(context).map(|chunk| chunk.map(|chunk| chunk.map(Frame::data)))
    }

    fn size_hint(&self) -> SizeHint {
        self.size
    }
}
