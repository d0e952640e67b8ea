//! Push: the engine's side of the hold contract (docs/architecture.md, "Push").
//!
//! A Ping or Sync-with-Wait that finds nothing to report answers with a [`Hold`]: the folders
//! to watch with the state token the answer was based on, the heartbeat, and the response to
//! send when the heartbeat expires. The host parks the request without any wasm instance and
//! calls the engine again (the same request, marked `x-eas-edge-wake`) when a folder's token moves.

mod hold;
mod token;

pub use hold::Hold;
pub use token::{HIERARCHY, folder_token, hierarchy_token};
