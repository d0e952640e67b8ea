//! One capability call from the Envoy filter, run on the same host code as the plugin's
//! imports: `POST /v1/call/{interface}/{function}` with the arguments as a JSON array, in the
//! order and shapes of `wit/gateway.wit` (serde's form of the generated types), answered with
//! `{"Ok": ...}` or `{"Err": ...}` exactly as the import would return it.
//!
//! Limits and scoping are those of an in-process call because it is the in-process code: a
//! [`RequestState`] built for the granted account serves the call.

use crate::plugin_host::RequestState;
use crate::plugin_host::eas_edge::gateway::{
    mailbox, mailbox_write, out_of_office, state, submission,
};
use serde::Serialize;
use serde::de::DeserializeOwned;

/// Why a call could not be made (as opposed to a call whose answer is an error).
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    #[error("no such capability function: {0}")]
    Unknown(String),
    #[error("arguments of {function}: {error}")]
    Arguments { function: String, error: serde_json::Error },
}

/// Runs `interface/function` with `arguments` (JSON) against `state`; the JSON answer.
pub async fn call(
    state: &mut RequestState,
    interface: &str,
    function: &str,
    arguments: &[u8],
) -> Result<Vec<u8>, CallError> {
    let name = format!("{interface}/{function}");
    let args = Arguments { function: &name, json: arguments };
    let answer = match (interface, function) {
        ("state", "get") => {
            let (scope, key) = args.parse()?;
            json(state::Host::get(state, scope, key).await)
        }
        ("state", "put") => {
            let (scope, key, value) = args.parse()?;
            json(state::Host::put(state, scope, key, value).await)
        }
        ("state", "delete") => {
            let (scope, key) = args.parse()?;
            json(state::Host::delete(state, scope, key).await)
        }
        ("state", "compare-and-swap") => {
            let (scope, key, expected, new) = args.parse()?;
            json(state::Host::compare_and_swap(state, scope, key, expected, new).await)
        }
        ("state", "transact") => {
            let (scope, conditions, writes) = args.parse()?;
            json(state::Host::transact(state, scope, conditions, writes).await)
        }
        ("mailbox", _) => mailbox_call(&mut state.mailbox, function, &args).await?,
        ("mailbox-write", _) => write_call(&mut state.mailbox, function, &args).await?,
        ("submission", "send") => {
            let (message, recipients, claim) = args.parse()?;
            json(submission::Host::send(&mut state.submission, message, recipients, claim).await)
        }
        ("out-of-office", "get") => json(out_of_office::Host::get(&mut state.out_of_office).await),
        ("out-of-office", "set") => {
            let (settings,) = args.parse()?;
            json(out_of_office::Host::set(&mut state.out_of_office, settings).await)
        }
        _ => return Err(CallError::Unknown(name)),
    };
    Ok(answer)
}

async fn mailbox_call(
    mailbox: &mut crate::plugin_host::MailboxCapability,
    function: &str,
    args: &Arguments<'_>,
) -> Result<Vec<u8>, CallError> {
    use mailbox::Host;
    Ok(match function {
        "list-folders" => json(mailbox.list_folders().await),
        "status" => {
            let (folders,) = args.parse()?;
            json(mailbox.status(folders).await)
        }
        "changes" => {
            let (folder, since) = args.parse()?;
            json(mailbox.changes(folder, since).await)
        }
        "uids-since" => {
            let (folder, since) = args.parse()?;
            json(mailbox.uids_since(folder, since).await)
        }
        "fetch-summaries" => {
            let (folder, uids, prefix_bytes) = args.parse()?;
            // (nothing is rendered ahead for the Envoy filter: no render request)
            json(mailbox.fetch_summaries(folder, uids, prefix_bytes, None).await)
        }
        "prefetch-summaries" => {
            let (folder, uids, prefix_bytes) = args.parse()?;
            mailbox.prefetch_summaries(folder, uids, prefix_bytes, None).await;
            json(Ok::<(), mailbox::Error>(()))
        }
        "fetch-message" => {
            let (folder, uid, max_bytes) = args.parse()?;
            json(mailbox.fetch_message(folder, uid, max_bytes).await)
        }
        "fetch-part" => {
            let (folder, uid, section, max_bytes) = args.parse()?;
            json(mailbox.fetch_part(folder, uid, section, max_bytes).await)
        }
        _ => return Err(CallError::Unknown(format!("mailbox/{function}"))),
    })
}

async fn write_call(
    mailbox: &mut crate::plugin_host::MailboxCapability,
    function: &str,
    args: &Arguments<'_>,
) -> Result<Vec<u8>, CallError> {
    use mailbox_write::Host;
    Ok(match function {
        "store-flags" => {
            let (folder, uids, add, remove) = args.parse()?;
            json(mailbox.store_flags(folder, uids, add, remove).await)
        }
        "move-messages" => {
            let (source, uids, destination) = args.parse()?;
            json(mailbox.move_messages(source, uids, destination).await)
        }
        "expunge" => {
            let (folder, uids) = args.parse()?;
            json(mailbox.expunge(folder, uids).await)
        }
        "append" => {
            let (folder, message, flags, internal_date) = args.parse()?;
            json(mailbox.append(folder, message, flags, internal_date).await)
        }
        "search" => {
            let (folder, query) = args.parse()?;
            json(mailbox.search(folder, query).await)
        }
        "create-folder" => {
            let (parent, name) = args.parse()?;
            json(mailbox.create_folder(parent, name).await)
        }
        "rename-folder" => {
            let (folder, new_parent, new_name) = args.parse()?;
            json(mailbox.rename_folder(folder, new_parent, new_name).await)
        }
        "delete-folder" => {
            let (folder,) = args.parse()?;
            json(mailbox.delete_folder(folder).await)
        }
        "empty-folder" => {
            let (folder,) = args.parse()?;
            json(mailbox.empty_folder(folder).await)
        }
        _ => return Err(CallError::Unknown(format!("mailbox-write/{function}"))),
    })
}

struct Arguments<'a> {
    function: &'a str,
    json: &'a [u8],
}

impl Arguments<'_> {
    /// The arguments as a tuple; an empty body is the empty argument list.
    fn parse<T: DeserializeOwned>(&self) -> Result<T, CallError> {
        let json = if self.json.is_empty() { b"[]".as_slice() } else { self.json };
        serde_json::from_slice(json)
            .map_err(|error| CallError::Arguments { function: self.function.to_owned(), error })
    }
}

/// Serialising the generated types cannot fail (no maps with non-string keys, no floats).
fn json(answer: impl Serialize) -> Vec<u8> {
    serde_json::to_vec(&answer).unwrap_or_else(|error| {
        tracing::error!("capability answer not serialisable: {error}");
        br#"{"Err":{"Unavailable":"host error"}}"#.to_vec()
    })
}
