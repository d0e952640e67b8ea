//! Reading a phone's request body with a size limit *and* a deadline: without the deadline a
//! client that sends a few bytes a minute (slow-body slowloris), or declares more than it
//! sends and waits, holds a task, a socket and its buffer for ever.

use bytes::Bytes;
use http::StatusCode;
use http_body_util::{BodyExt, Limited};
use hyper::body::Body;
use std::time::Duration;

/// Every body gets this long, whatever its size.
const BASE: Duration = Duration::from_secs(30);
/// Plus one second per this many bytes: a floor of 64 kbit/s, slower than any phone link
/// that can still sync, far faster than a slowloris.
const BYTES_PER_SECOND: u64 = 8 * 1024;

/// Why a body was not read.
#[derive(Debug, PartialEq, Eq)]
pub enum BodyError {
    /// Larger than the tenant's `request_mib`.
    TooLarge,
    /// Not complete within its deadline.
    TooSlow,
    /// The connection broke or the framing was wrong (truncated, bad chunk).
    Broken,
}

impl BodyError {
    pub fn status(&self) -> StatusCode {
        match self {
            BodyError::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            BodyError::TooSlow => StatusCode::REQUEST_TIMEOUT,
            BodyError::Broken => StatusCode::BAD_REQUEST,
        }
    }
}

/// What a body's errors must convert into to be limited ([`Limited`]).
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The whole body, at most `limit` bytes, within [`deadline`] of its declared size.
pub async fn read<B>(body: B, limit: usize) -> Result<Bytes, BodyError>
where
    B: Body<Data = Bytes, Error: Into<BoxError>>,
{
    let declared = body.size_hint().upper().unwrap_or(limit as u64);
    if declared > limit as u64 {
        return Err(BodyError::TooLarge);
    }
    match tokio::time::timeout(deadline(declared), Limited::new(body, limit).collect()).await {
        Ok(Ok(collected)) => Ok(collected.to_bytes()),
        Ok(Err(error)) if error.is::<http_body_util::LengthLimitError>() => {
            Err(BodyError::TooLarge)
        }
        Ok(Err(_)) => Err(BodyError::Broken),
        Err(_) => Err(BodyError::TooSlow),
    }
}

/// How long a body of `length` bytes may take (for a body of unknown length: the limit); the
/// phones' HTTP/1.1 server gives a response the same time to be written.
pub fn deadline(length: u64) -> Duration {
    BASE + Duration::from_secs(length / BYTES_PER_SECOND)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_bodies_get_the_base_and_big_ones_a_minimum_rate() {
        assert_eq!(deadline(0), Duration::from_secs(30));
        assert_eq!(deadline(4096), Duration::from_secs(30));
        // a 20 MiB attachment at the 64 kbit/s floor
        assert_eq!(deadline(20 << 20), Duration::from_secs(30 + 2560));
    }

    #[test]
    fn each_error_has_its_status() {
        assert_eq!(BodyError::TooLarge.status(), StatusCode::PAYLOAD_TOO_LARGE);
        assert_eq!(BodyError::TooSlow.status(), StatusCode::REQUEST_TIMEOUT);
        assert_eq!(BodyError::Broken.status(), StatusCode::BAD_REQUEST);
    }
}
