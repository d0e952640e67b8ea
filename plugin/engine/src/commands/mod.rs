//! EAS commands: from a parsed request to the response.

mod common_status;

use crate::ashttp::{CommonStatus, EasRequest, WireForm};
use crate::capabilities::{Capabilities, Level};
use crate::http::Response;

pub use common_status::status_document;

/// Commands that the engine answers. Grows with each command; never lists one that would be
/// refused as not supported (`MS-ASProtocolCommands` in the OPTIONS answer is this list).
pub const IMPLEMENTED: &[&str] = &[];

/// Runs the command of an authenticated, parsed request.
pub async fn dispatch(caps: &impl Capabilities, identity: &str, request: &EasRequest) -> Response {
    caps.log(
        Level::Info,
        &format!(
            "{identity} device {} ({}) sent {} v{}: not implemented",
            request.device_id.as_str(),
            request.device_type.as_str(),
            request.command.name(),
            request.version.as_str()
        ),
    );
    answer_common_status(request, CommonStatus::CommandNotSupported)
}

/// A command-independent failure in the wire form the request's version wants: an HTTP code
/// for 12.1, or `<Command><Status>N</Status></Command>` for 14.0+ (MS-ASCMD §2.2.2).
pub fn answer_common_status(request: &EasRequest, status: CommonStatus) -> Response {
    match request.wire_form(status) {
        WireForm::Http(reply) => reply.into_response(),
        WireForm::StatusInBody(code) => match status_document(request.command, code) {
            Some(body) => Response::new(200).with_body(crate::WBXML_CONTENT_TYPE, body),
            // Only a broken code-page table could get here; 500 is the honest answer.
            None => Response::new(500),
        },
    }
}
