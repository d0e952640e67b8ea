//! The OPTIONS answer: what this server speaks (MS-ASHTTP §2.2.4, §3.2.5.2).

use crate::ashttp::{PROTOCOL_VERSIONS_HEADER, SUPPORTED_VERSIONS};
use crate::http::Response;

pub const ALLOWED_METHODS: &str = "OPTIONS,POST";

/// Value of `MS-Server-ActiveSync`. Clients read it as an Exchange build number, so it looks
/// like one (Exchange 2019 / Online report 15.x).
pub const SERVER_VERSION: &str = "15.20";

pub fn answer() -> Response {
    Response::new(200)
        .with_header("Allow", ALLOWED_METHODS)
        .with_header("Public", ALLOWED_METHODS)
        .with_header("MS-Server-ActiveSync", SERVER_VERSION)
        .with_header(PROTOCOL_VERSIONS_HEADER, SUPPORTED_VERSIONS)
        .with_header("MS-ASProtocolCommands", crate::commands::IMPLEMENTED.join(","))
}
