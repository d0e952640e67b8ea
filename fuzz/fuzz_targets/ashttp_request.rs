//! Any query string and header bytes: the MS-ASHTTP layer parses or refuses, never panics, and
//! every refusal maps to an HTTP answer.
#![no_main]

use eas_engine::ashttp::{parse_query, parse_request};
use eas_engine::http::Request;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // First byte splits the input between the query and a header value.
    let split = data.first().map_or(0, |&b| usize::from(b)).min(data.len());
    let (query, header) = data.split_at(split);
    let query = String::from_utf8_lossy(query);
    let _ = parse_query(&query);
    let request = Request {
        method: "POST".into(),
        path: "/Microsoft-Server-ActiveSync".into(),
        query: query.into_owned(),
        headers: vec![
            ("ms-asprotocolversion".into(), header.to_vec()),
            ("x-ms-policykey".into(), header.to_vec()),
            ("content-type".into(), header.to_vec()),
        ],
        body: Vec::new(),
    };
    if let Err(error) = parse_request(&request) {
        let status = error.response().status;
        assert!((400..600).contains(&status), "refusal mapped to {status}");
    }
});
