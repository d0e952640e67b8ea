//! Throughput of the codec on a realistic 100-email Sync response, and of libwbxml 0.11.8 on the
//! same bytes in the same run.
//!
//!   cargo bench -p eas-wbxml --bench codec
//!
//! Criterion measures our four paths. Then `benches/libwbxml_harness.c` is compiled with the
//! system `cc` against Debian's libwbxml2-dev and times libwbxml's in-process converters on the
//! same WBXML file, and our code is timed the same way (calibrated ~0.5 s rounds, fastest of
//! five), so both sides exclude process start. The comparison table is printed at the end.
//! All throughputs are in MB/s (10^6 bytes) of WBXML.

#[path = "support/sync_response.rs"]
mod sync_response;

use std::hint::black_box;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput};
use eas_wbxml::{Document, Limits, decode, encode_into, from_xml, to_xml};

const EMAILS: usize = 100;

fn criterion_benches(criterion: &mut Criterion, document: &Document, wbxml: &[u8]) {
    let xml = to_xml(document);
    let limits = Limits::default();
    let mut group = criterion.benchmark_group("wbxml");
    group.throughput(Throughput::Bytes(wbxml.len() as u64));
    group.bench_function("decode", |b| {
        b.iter(|| decode(black_box(wbxml), &limits).expect("decodes"))
    });
    let mut buffer = Vec::with_capacity(wbxml.len());
    group.bench_function("encode", |b| {
        b.iter(|| {
            buffer.clear();
            encode_into(black_box(document), &mut buffer).expect("encodes");
        })
    });
    group.bench_function("decode+to_xml", |b| {
        b.iter(|| to_xml(&decode(black_box(wbxml), &limits).expect("decodes")))
    });
    group.bench_function("from_xml+encode", |b| {
        b.iter(|| {
            buffer.clear();
            encode_into(&from_xml(black_box(&xml)).expect("parses"), &mut buffer).expect("encodes");
        })
    });
    group.finish();
}

/// Seconds per iteration: calibrate to ~0.5 s, five rounds, fastest round (the harness's method;
/// the fastest round is the one least disturbed by other load on the machine).
fn time_per_iteration(mut step: impl FnMut()) -> f64 {
    let start = Instant::now();
    step();
    let once = start.elapsed().as_secs_f64().max(1e-9);
    let iterations = ((0.5 / once) as u64).max(1);
    (0..5)
        .map(|_| {
            let start = Instant::now();
            for _ in 0..iterations {
                step();
            }
            start.elapsed().as_secs_f64() / iterations as f64
        })
        .fold(f64::INFINITY, f64::min)
}

struct LibwbxmlTimes {
    wbxml2xml: f64,
    xml2wbxml: f64,
    roundtrip_identical: bool,
}

/// Compiles and runs the C harness on `wbxml`.
fn run_libwbxml_harness(wbxml: &[u8]) -> LibwbxmlTimes {
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let out_dir = std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(PathBuf::from))
        .unwrap_or_else(std::env::temp_dir);
    let harness = out_dir.join("libwbxml_harness");
    let input = out_dir.join("sync-response-100.wbxml");
    std::fs::write(&input, wbxml).expect("write the benchmark input");

    // Debian's libwbxml2.pc carries a broken -L path; the headers are all that pkg-config adds.
    let compiled = Command::new("cc")
        .args(["-O2", "-Wall", "-I/usr/include/libwbxml-1.0"])
        .arg(manifest.join("benches/libwbxml_harness.c"))
        .arg("-o")
        .arg(&harness)
        .arg("-lwbxml2")
        .status()
        .unwrap_or_else(|error| {
            panic!("cannot run cc ({error}): the libwbxml comparison needs a C compiler")
        });
    assert!(
        compiled.success(),
        "compiling benches/libwbxml_harness.c failed: install libwbxml2-dev (apt-get install libwbxml2-dev)"
    );

    let output = Command::new(&harness).arg(&input).output().expect("run the libwbxml harness");
    assert!(
        output.status.success(),
        "libwbxml harness failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    let field = |name: &str, index: usize| -> f64 {
        let line = stdout
            .lines()
            .find(|line| line.starts_with(name))
            .unwrap_or_else(|| panic!("no {name} in {stdout}"));
        line.split_whitespace()
            .nth(index)
            .and_then(|value| value.parse().ok())
            .expect("numeric field")
    };
    LibwbxmlTimes {
        wbxml2xml: field("wbxml2xml ", 3),
        xml2wbxml: field("xml2wbxml ", 3),
        roundtrip_identical: field("roundtrip_identical", 1) == 1.0,
    }
}

fn compare_with_libwbxml(document: &Document, wbxml: &[u8]) {
    let limits = Limits::default();
    let xml = to_xml(document);
    let megabytes = wbxml.len() as f64 / 1e6;
    let mut buffer = Vec::with_capacity(wbxml.len());

    let ours_decode = time_per_iteration(|| drop(black_box(decode(black_box(wbxml), &limits))));
    let ours_encode = time_per_iteration(|| {
        buffer.clear();
        let _ = black_box(encode_into(black_box(document), &mut buffer));
    });
    let ours_decode_xml = time_per_iteration(|| {
        black_box(to_xml(&decode(black_box(wbxml), &limits).expect("decodes")));
    });
    let ours_xml_encode = time_per_iteration(|| {
        buffer.clear();
        let _ = black_box(encode_into(&from_xml(black_box(&xml)).expect("parses"), &mut buffer));
    });
    let libwbxml = run_libwbxml_harness(wbxml);

    let rate = |seconds: f64| megabytes / seconds;
    println!();
    println!(
        "WBXML codec vs libwbxml 0.11.8 — Sync response, {EMAILS} emails, {} bytes of WBXML",
        wbxml.len()
    );
    println!("| direction | eas-wbxml | MB/s | libwbxml 0.11.8 | MB/s | ratio |");
    println!("|---|---|---:|---|---:|---:|");
    let rows = [
        ("WBXML → tree", "decode", ours_decode, "wbxml2xml", libwbxml.wbxml2xml),
        ("WBXML → XML text", "decode + to_xml", ours_decode_xml, "wbxml2xml", libwbxml.wbxml2xml),
        ("tree → WBXML", "encode_into", ours_encode, "xml2wbxml", libwbxml.xml2wbxml),
        (
            "XML text → WBXML",
            "from_xml + encode_into",
            ours_xml_encode,
            "xml2wbxml",
            libwbxml.xml2wbxml,
        ),
    ];
    for (direction, ours_name, ours, theirs_name, theirs) in rows {
        println!(
            "| {direction} | {ours_name} | {:.0} | {theirs_name} | {:.0} | {:.1}× |",
            rate(ours),
            rate(theirs),
            theirs / ours
        );
    }
    println!("libwbxml xml2wbxml reproduced our bytes exactly: {}", libwbxml.roundtrip_identical);
}

fn main() {
    let document = sync_response::sync_response(EMAILS);
    let wbxml = eas_wbxml::encode(&document).expect("the fixture encodes");
    assert_eq!(
        decode(&wbxml, &Limits::default()).as_ref(),
        Ok(&document),
        "the fixture round-trips"
    );

    let mut criterion =
        Criterion::default().warm_up_time(Duration::from_secs(1)).configure_from_args();
    criterion_benches(&mut criterion, &document, &wbxml);
    criterion.final_summary();

    // Only a real `cargo bench` run (which passes --bench) does the libwbxml comparison, not
    // `cargo test --benches` (criterion's test mode) nor listing.
    let arguments: Vec<String> = std::env::args().collect();
    let benchmarking = arguments.iter().any(|argument| argument == "--bench")
        && !arguments.iter().any(|argument| argument == "--test" || argument == "--list");
    if benchmarking {
        compare_with_libwbxml(&document, &wbxml);
    }
}
