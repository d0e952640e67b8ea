//! The connection loop over an in-memory duplex stream, with handlers that record what they got.

use super::*;
use std::sync::{Arc, Mutex};
use tokio::io::DuplexStream;

/// Answers with the method, path and body it read, as "METHOD PATH BODY".
async fn echo(request: http::Request<RequestBody>) -> Response<Full<Bytes>> {
    let (parts, body) = request.into_parts();
    let text = match body.collect().await {
        Ok(body) => format!(
            "{} {} {}",
            parts.method,
            parts.uri.path(),
            String::from_utf8_lossy(&body.to_bytes())
        ),
        Err(failure) => format!("failed: {failure}"),
    };
    Response::new(Full::new(Bytes::from(text)))
}

/// Runs `serve` with `handle` on one end of a duplex stream; returns the client's end.
fn start<H, F>(handle: H) -> (DuplexStream, tokio::task::JoinHandle<Ended<DuplexStream>>)
where
    H: FnMut(http::Request<RequestBody>) -> F + Send + 'static,
    F: Future<Output = Response<Full<Bytes>>> + Send + 'static,
{
    let (client, server) = tokio::io::duplex(1 << 20);
    (client, tokio::spawn(serve(server, handle)))
}

/// Everything the server writes until it closes the connection.
async fn read_to_close(client: &mut DuplexStream) -> String {
    let mut all = Vec::new();
    let _ = timeout(Duration::from_secs(5), client.read_to_end(&mut all)).await;
    String::from_utf8_lossy(&all).into_owned()
}

/// Reads one response head, a byte at a time (nothing after it is consumed).
async fn read_head(client: &mut DuplexStream) -> String {
    let mut seen = Vec::new();
    let mut byte = [0_u8; 1];
    while !seen.ends_with(b"\r\n\r\n") {
        assert_eq!(client.read(&mut byte).await.expect("read"), 1, "closed mid-head: {seen:?}");
        seen.push(byte[0]);
    }
    String::from_utf8_lossy(&seen).into_owned()
}

/// Reads one response with a content-length body.
async fn read_response(client: &mut DuplexStream) -> String {
    let head = read_head(client).await;
    let length = head
        .lines()
        .find_map(|line| line.strip_prefix("content-length: "))
        .map_or(0, |length| length.trim().parse().expect("length"));
    let mut body = vec![0_u8; length];
    client.read_exact(&mut body).await.expect("body");
    head + &String::from_utf8_lossy(&body)
}

#[tokio::test]
async fn pipelined_requests_are_answered_in_order_on_one_connection() {
    let (mut client, _server) = start(echo);
    client
        .write_all(b"POST /a HTTP/1.1\r\nContent-Length: 3\r\n\r\nonePOST /b HTTP/1.1\r\nContent-Length: 3\r\n\r\ntwo")
        .await
        .expect("write");
    let first = read_response(&mut client).await;
    assert!(first.starts_with("HTTP/1.1 200 OK\r\n"), "{first}");
    assert!(first.contains("\r\ndate: "), "{first}");
    assert!(first.ends_with("\r\n\r\nPOST /a one"), "{first}");
    assert!(read_response(&mut client).await.ends_with("POST /b two"));
}

#[tokio::test]
async fn a_chunked_body_reaches_the_handler_decoded() {
    let (mut client, _server) = start(echo);
    client
        .write_all(b"POST /c HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nWiki\r\n5\r\npedia\r\n0\r\n\r\n")
        .await
        .expect("write");
    assert!(read_response(&mut client).await.ends_with("POST /c Wikipedia"));
}

#[tokio::test]
async fn a_body_cut_short_is_a_failure_for_the_handler() {
    let (mut client, server) = start(echo);
    client.write_all(b"POST /t HTTP/1.1\r\nContent-Length: 10\r\n\r\nabc").await.expect("write");
    client.shutdown().await.expect("half-close");
    let answer = read_to_close(&mut client).await;
    assert!(answer.contains("failed: the client closed"), "{answer}");
    assert!(answer.contains("connection: close"), "{answer}");
    assert!(matches!(server.await.expect("task"), Ended::Closed));
}

/// Drop guard: records that the handler's future was dropped before it finished.
struct Dropped(Arc<Mutex<bool>>);

impl Drop for Dropped {
    fn drop(&mut self) {
        *self.0.lock().expect("lock") = true;
    }
}

#[tokio::test]
async fn a_client_that_leaves_drops_its_waiting_request() {
    let dropped = Arc::new(Mutex::new(false));
    let flag = dropped.clone();
    let (mut client, server) = start(move |request: http::Request<RequestBody>| {
        let guard = Dropped(flag.clone());
        async move {
            // reads its body, then waits like a parked Ping
            let _ = request.into_body().collect().await;
            std::future::pending::<()>().await;
            drop(guard);
            Response::new(Full::new(Bytes::new()))
        }
    });
    client.write_all(b"POST /p HTTP/1.1\r\nContent-Length: 4\r\n\r\nping").await.expect("write");
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(!*dropped.lock().expect("lock"));
    drop(client);
    assert!(matches!(server.await.expect("task"), Ended::Closed));
    assert!(*dropped.lock().expect("lock"), "the waiting request outlived its client");
}

/// Answers 401 without reading the body, as a refused login does.
async fn refuse(_request: http::Request<RequestBody>) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::new()));
    *response.status_mut() = StatusCode::UNAUTHORIZED;
    response
}

#[tokio::test]
async fn an_unread_short_body_is_skipped_and_the_connection_kept() {
    let (mut client, _server) = start(refuse);
    client
        .write_all(b"POST /x HTTP/1.1\r\nContent-Length: 5\r\n\r\nhelloGET /y HTTP/1.1\r\n\r\n")
        .await
        .expect("write");
    let first = read_response(&mut client).await;
    assert!(first.starts_with("HTTP/1.1 401 Unauthorized\r\n"), "{first}");
    assert!(!first.contains("connection: close"), "{first}");
    assert!(read_response(&mut client).await.starts_with("HTTP/1.1 401"));
}

#[tokio::test]
async fn an_unread_long_body_closes_the_connection() {
    let (mut client, server) = start(refuse);
    let head = format!("POST /x HTTP/1.1\r\nContent-Length: {}\r\n\r\n", DRAIN_LIMIT + 1);
    client.write_all(head.as_bytes()).await.expect("write");
    let answer = read_to_close(&mut client).await;
    assert!(answer.starts_with("HTTP/1.1 401"), "{answer}");
    assert!(answer.contains("connection: close"), "{answer}");
    assert!(matches!(server.await.expect("task"), Ended::Closed));
}

#[tokio::test]
async fn head_requests_get_a_length_and_no_body() {
    let (mut client, _server) = start(echo);
    client.write_all(b"HEAD /h HTTP/1.1\r\n\r\nGET /g HTTP/1.1\r\n\r\n").await.expect("write");
    let head = read_head(&mut client).await;
    assert!(head.contains("content-length: 8\r\n"), "{head}");
    // the next bytes are the GET's response, not a HEAD body
    assert!(read_response(&mut client).await.starts_with("HTTP/1.1 200 OK"));
}

#[tokio::test]
async fn expect_continue_gets_a_100_before_the_body() {
    let (mut client, _server) = start(echo);
    client
        .write_all(b"POST /e HTTP/1.1\r\nContent-Length: 2\r\nExpect: 100-continue\r\n\r\n")
        .await
        .expect("write");
    let mut interim = [0_u8; 25];
    client.read_exact(&mut interim).await.expect("100");
    assert_eq!(&interim, b"HTTP/1.1 100 Continue\r\n\r\n");
    client.write_all(b"ok").await.expect("body");
    assert!(read_response(&mut client).await.ends_with("POST /e ok"));
}

#[tokio::test]
async fn malformed_and_http2_openings() {
    let (mut client, server) = start(echo);
    client.write_all(b"GET / HTTP/1.1\r\nBad Header\r\n\r\n").await.expect("write");
    let answer = read_to_close(&mut client).await;
    assert!(answer.starts_with("HTTP/1.1 400 Bad Request\r\n"), "{answer}");
    assert!(matches!(server.await.expect("task"), Ended::Closed));

    let (mut client, server) = start(echo);
    client.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00").await.expect("write");
    let Ended::Http2(mut handed) = server.await.expect("task") else { panic!("not handed over") };
    let mut replay = [0_u8; 26];
    handed.read_exact(&mut replay).await.expect("replayed");
    assert_eq!(&replay, b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00");
}
