//! Deliberate misbehaviour for testing the host's guest limits (feature `fault-injection`).

use eas_engine::http::Request;

/// Header that selects the fault: `trap`, `spin` or `grow`.
const FAULT_HEADER: &str = "x-eas-edge-fault";

pub fn inject(request: &Request) {
    match request.header_str(FAULT_HEADER) {
        Some("trap") => core::arch::wasm32::unreachable(),
        Some("spin") => spin(),
        Some("grow") => grow(),
        _ => {}
    }
}

/// Never returns; only the host's epoch deadline stops it.
fn spin() {
    let mut counter = 0u64;
    loop {
        counter = std::hint::black_box(counter.wrapping_add(1));
    }
}

/// Allocates until the host's memory cap makes growth fail, which aborts (a trap).
fn grow() {
    let mut hoard: Vec<Vec<u8>> = Vec::new();
    loop {
        hoard.push(vec![1u8; 1 << 20]);
        std::hint::black_box(&hoard);
    }
}
