//! Generated `Tag` constants, one module per code page (from `data/codepages.tsv`).
//!
//! Naming scheme:
//! * module = the page name in snake_case: `air_sync`, `email`, `air_sync_base`,
//!   `get_item_estimate`, `compose_mail`, `email2`, `gal` (page 16, "GAL"), `find`, … — page 5
//!   "Move" is a Rust keyword and is spelled `r#move`;
//! * constant = the MS-ASWBXML tag name in SCREAMING_SNAKE_CASE, a new word starting at each
//!   lower-to-upper change and before the last capital of an acronym: `SyncKey` → `SYNC_KEY`,
//!   `GalSearchCriterion` → `GAL_SEARCH_CRITERION`, `SMTPAddress` → `SMTP_ADDRESS`,
//!   `Mime` → `MIME`, `UmCallerID` → `UM_CALLER_ID`.
//!
//! Examples: `tags::air_sync::SYNC`, `tags::email::SUBJECT`, `tags::compose_mail::MIME`,
//! `tags::find::GAL_SEARCH_CRITERION`. Legacy tokens (decode-only) live under [`legacy`],
//! e.g. `tags::legacy::email::BODY`. Page 3 (AirNotify) has legacy tags only.

include!(concat!(env!("OUT_DIR"), "/tag_constants.rs"));
