//! The filter decodes the endpoint's JSON straight into the engine's types: every shape the
//! host's generated types serialise to must mean the same to the engine. A field or variant
//! renamed on one side only would otherwise fail in Envoy, at run time, as an unreadable
//! answer.

use crate::plugin_host::eas_edge::gateway::{mailbox, out_of_office, state, submission};
use serde::Serialize;
use serde::de::DeserializeOwned;

/// Host value → JSON → engine value → JSON: both JSON texts must be equal (no field lost,
/// none renamed, the same variant).
fn same_shape<Engine: DeserializeOwned + Serialize>(host: impl Serialize) -> Engine {
    let json = serde_json::to_value(&host).expect("host value serialises");
    let engine: Engine = serde_json::from_value(json.clone())
        .unwrap_or_else(|error| panic!("the engine cannot read {json}: {error}"));
    let back = serde_json::to_value(&engine).expect("engine value serialises");
    assert_eq!(json, back, "the engine's form differs from the host's");
    engine
}

#[test]
fn mailbox_answers() {
    let folder = mailbox::Folder {
        name: "INBOX.Projekte &AOQ-".into(),
        display_name: "INBOX/Projekte ä".into(),
        delimiter: Some('.'),
        role: Some(mailbox::FolderRole::Archive),
        selectable: true,
        mailbox_id: Some("F123".into()),
    };
    let engine: eas_engine::mailbox::Folder = same_shape(folder);
    assert_eq!(engine.role, Some(eas_engine::mailbox::FolderRole::Archive));

    let changes = mailbox::FolderChanges {
        method: mailbox::ChangeMethod::Condstore,
        uid_validity: 7,
        uid_validity_changed: false,
        highest_modseq: 99,
        uid_next: 12,
        messages: 3,
        changed: vec![mailbox::MessageFlags { uid: 4, flags: vec!["\\Seen".into()] }],
        vanished: vec![mailbox::UidRange { first: 1, last: 2 }],
        current_uids: Some(vec![mailbox::UidRange { first: 3, last: 11 }]),
    };
    same_shape::<eas_engine::mailbox::Changes>(changes);

    let summary = mailbox::MessageSummary {
        uid: 5,
        flags: vec!["$Forwarded".into()],
        internal_date: 1_700_000_000,
        size: 1234,
        body_structure: vec![mailbox::BodyPart {
            section: "1".into(),
            depth: 1,
            is_multipart: false,
            media_type: "text".into(),
            media_subtype: "plain".into(),
            params: vec![("charset".into(), "utf-8".into())],
            content_id: None,
            description: Some("d".into()),
            encoding: Some("base64".into()),
            size: 10,
            lines: Some(1),
            disposition: Some("inline".into()),
            disposition_params: vec![("filename".into(), "a.txt".into())],
        }],
        prefix: b"From: a\r\n".to_vec(),
        rendered: Some(vec![0, 1, 2]),
    };
    same_shape::<eas_engine::mailbox::MessageSummary>(summary);

    let message =
        mailbox::Message { uid: 1, flags: vec![], internal_date: -5, raw: vec![0, 255, 10] };
    same_shape::<eas_engine::mailbox::Message>(message);
    same_shape::<eas_engine::mailbox::FolderStatus>(mailbox::FolderStatus {
        uid_validity: 1,
        uid_next: 2,
        highest_modseq: None,
        messages: 3,
        unseen: 4,
    });
    for error in [
        mailbox::Error::Unauthenticated,
        mailbox::Error::NoSuchFolder("x".into()),
        mailbox::Error::TooLarge("y".into()),
        mailbox::Error::Unavailable("z".into()),
        mailbox::Error::Refused("w".into()),
    ] {
        same_shape::<eas_engine::mailbox::MailboxError>(error);
    }
    // a whole answer, as the endpoint sends it
    let answer: Result<Vec<Result<mailbox::FolderStatus, mailbox::Error>>, mailbox::Error> =
        Ok(vec![Err(mailbox::Error::NoSuchFolder("gone".into()))]);
    let decoded = same_shape::<
        Result<
            Vec<Result<eas_engine::mailbox::FolderStatus, eas_engine::mailbox::MailboxError>>,
            eas_engine::mailbox::MailboxError,
        >,
    >(answer);
    assert!(matches!(
        decoded.as_deref(),
        Ok([Err(eas_engine::mailbox::MailboxError::NoSuchFolder(name))]) if name == "gone"
    ));
}

#[test]
fn arguments_the_filter_sends() {
    // the engine's argument types, read by the host's
    let query = eas_engine::mailbox::SearchQuery {
        text: Some("invoice".into()),
        since: Some(1),
        before: None,
        header: Some(("Message-ID".into(), "<a@b>".into())),
    };
    let json = serde_json::to_value(&query).expect("serialises");
    let host: crate::plugin_host::eas_edge::gateway::mailbox_write::SearchQuery =
        serde_json::from_value(json).expect("the host reads a search query");
    assert_eq!(host.header, Some(("Message-ID".into(), "<a@b>".into())));

    let point = eas_engine::mailbox::SyncPoint { uid_validity: 3, highest_modseq: 4 };
    let host: mailbox::SyncPoint =
        serde_json::from_value(serde_json::to_value(point).expect("serialises")).expect("reads");
    assert_eq!((host.uid_validity, host.highest_modseq), (3, 4));

    for scope in [eas_engine::StateScope::Account, eas_engine::StateScope::Device("D1".into())] {
        let host: state::Scope =
            serde_json::from_value(serde_json::to_value(&scope).expect("serialises"))
                .expect("the host reads a scope");
        same_shape::<eas_engine::StateScope>(host);
    }
    for expected in [None, Some(vec![1, 2])] {
        let claim = eas_engine::submission::SendClaim {
            scope: eas_engine::StateScope::Device("D1".into()),
            key: "compose/ledger".into(),
            expected,
            value: vec![3],
            presumed: vec![4],
        };
        let host: submission::Claim =
            serde_json::from_value(serde_json::to_value(&claim).expect("serialises"))
                .expect("the host reads a send's claim");
        assert_eq!(same_shape::<eas_engine::submission::SendClaim>(host), claim);
    }
    let settings = eas_engine::out_of_office::OofSettings {
        enabled: true,
        start: Some(1),
        end: None,
        subject: Some("away".into()),
        message: "back soon".into(),
    };
    let host: out_of_office::Settings =
        serde_json::from_value(serde_json::to_value(&settings).expect("serialises"))
            .expect("the host reads out-of-office settings");
    same_shape::<eas_engine::out_of_office::OofSettings>(host);
}

#[test]
fn other_interfaces_errors() {
    for error in [
        state::Error::Unauthenticated,
        state::Error::TooLarge("t".into()),
        state::Error::Unavailable("u".into()),
    ] {
        same_shape::<eas_engine::StateError>(error);
    }
    for error in [
        submission::Error::Unauthenticated,
        submission::Error::Unavailable("a".into()),
        submission::Error::Rejected("b".into()),
        submission::Error::TooLarge("c".into()),
        submission::Error::OutcomeUnknown("d".into()),
        submission::Error::ClaimLost,
    ] {
        same_shape::<eas_engine::submission::SubmissionError>(error);
    }
    same_shape::<eas_engine::submission::RefusedRecipient>(submission::RefusedRecipient {
        address: "x@y".into(),
        reply: "550 no".into(),
    });
    for error in [
        out_of_office::Error::Unauthenticated,
        out_of_office::Error::NotAvailable,
        out_of_office::Error::Unavailable("a".into()),
        out_of_office::Error::Refused("b".into()),
    ] {
        same_shape::<eas_engine::out_of_office::OofError>(error);
    }
}
