//! Conversions between `wasi:http` resources and the engine's plain request/response values.

use crate::bindings::wasi::http::types::{
    Fields, IncomingRequest, Method, OutgoingBody, OutgoingResponse, ResponseOutparam,
};
use crate::bindings::wasi::io::streams::{OutputStream, StreamError};
use eas_engine::http::{Request, Response};

/// Largest body the plugin reads; the host enforces its own, usually smaller, limit first.
const MAX_BODY: usize = 64 * 1024 * 1024;

pub fn read_request(request: IncomingRequest) -> Result<Request, String> {
    let method = match request.method() {
        Method::Get => "GET".to_owned(),
        Method::Head => "HEAD".to_owned(),
        Method::Post => "POST".to_owned(),
        Method::Put => "PUT".to_owned(),
        Method::Delete => "DELETE".to_owned(),
        Method::Connect => "CONNECT".to_owned(),
        Method::Options => "OPTIONS".to_owned(),
        Method::Trace => "TRACE".to_owned(),
        Method::Patch => "PATCH".to_owned(),
        Method::Other(other) => other.to_ascii_uppercase(),
    };
    let path_with_query = request.path_with_query().unwrap_or_default();
    let (path, query) = match path_with_query.split_once('?') {
        Some((path, query)) => (path.to_owned(), query.to_owned()),
        None => (path_with_query, String::new()),
    };
    let mut headers: Vec<(String, Vec<u8>)> = request
        .headers()
        .entries()
        .into_iter()
        .map(|(name, value)| (name.to_ascii_lowercase(), value))
        .collect();
    // wasi:http carries the Host header as the request's authority (it is a forbidden field),
    // but the engine builds absolute URLs from it (Autodiscover).
    if !headers.iter().any(|(name, _)| name == "host")
        && let Some(authority) = request.authority()
    {
        headers.push(("host".to_owned(), authority.into_bytes()));
    }
    let body = read_body(&request)?;
    Ok(Request { method, path, query, headers, body })
}

fn read_body(request: &IncomingRequest) -> Result<Vec<u8>, String> {
    let body = request.consume().map_err(|()| "request body already consumed".to_owned())?;
    let mut bytes = Vec::new();
    {
        let stream = body.stream().map_err(|()| "request body stream unavailable".to_owned())?;
        loop {
            match stream.blocking_read(64 * 1024) {
                Ok(chunk) => {
                    if bytes.len() + chunk.len() > MAX_BODY {
                        return Err(format!("request body larger than {MAX_BODY} bytes"));
                    }
                    bytes.extend_from_slice(&chunk);
                }
                Err(StreamError::Closed) => break,
                Err(StreamError::LastOperationFailed(error)) => {
                    return Err(format!("reading request body: {}", error.to_debug_string()));
                }
            }
        }
    }
    Ok(bytes)
}

pub fn write_response(response: Response, out: ResponseOutparam) {
    // The transport owns framing: the engine's own Content-Length (if any) is replaced by the
    // real one, never sent twice (wasi:http refuses a duplicate and would drop every header).
    let entries: Vec<(String, Vec<u8>)> = response
        .headers
        .iter()
        .filter(|(name, _)| !name.eq_ignore_ascii_case("content-length"))
        .map(|(name, value)| (name.clone(), value.as_bytes().to_vec()))
        .chain(std::iter::once((
            "content-length".to_owned(),
            response.body.len().to_string().into_bytes(),
        )))
        .collect();
    let outgoing = match Fields::from_list(&entries) {
        Ok(headers) => OutgoingResponse::new(headers),
        Err(_) => OutgoingResponse::new(Fields::new()),
    };
    // The engine only produces valid status codes; a refusal here would be a host bug.
    let _ = outgoing.set_status_code(response.status);
    let Ok(body) = outgoing.body() else {
        ResponseOutparam::set(out, Ok(outgoing));
        return;
    };
    ResponseOutparam::set(out, Ok(outgoing));
    if let Ok(stream) = body.write() {
        // An error means the client went away; nothing more to do.
        let _ = write_all(&stream, &response.body);
    }
    let _ = OutgoingBody::finish(body, None);
}

/// Writes `bytes` in as few pieces as the host permits. `blocking-write-and-flush` takes at
/// most 4096 bytes a call, and each call waited for the host to hand its piece on: a 1 MB
/// Sync page was ~250 round trips between the guest and the serving threads, about a fifth
/// of the gateway's CPU in an initial sync (docs/benchmarks.md, "Read path").
fn write_all(stream: &OutputStream, mut bytes: &[u8]) -> Result<(), StreamError> {
    while !bytes.is_empty() {
        let permitted = stream.check_write()?;
        if permitted == 0 {
            stream.subscribe().block();
            continue;
        }
        let take = usize::try_from(permitted).unwrap_or(usize::MAX).min(bytes.len());
        let (piece, rest) = bytes.split_at(take);
        stream.write(piece)?;
        bytes = rest;
    }
    stream.blocking_flush()
}
