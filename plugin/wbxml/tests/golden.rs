//! Golden vectors (`tests/vectors/*.hex` + `*.xml`): decode, encode and XML rendering must all
//! agree with the files byte for byte.
//!
//! `UPDATE_VECTORS=1` rewrites the `.hex` of every non-`spec-` vector from its XML (after a
//! deliberate change; review the diff and re-run `tests/libwbxml.rs`).

mod common;

use eas_wbxml::{Limits, decode, encode, from_xml, tags, to_xml};

#[test]
fn every_vector_decodes_encodes_and_renders_exactly() {
    let update = std::env::var_os("UPDATE_VECTORS").is_some();
    for vector in common::vectors() {
        let document = from_xml(&vector.xml).unwrap_or_else(|e| panic!("{}: {e}", vector.name));
        if update && !vector.name.starts_with("spec-") {
            let bytes = encode(&document).expect("vector encodes");
            let title = format!(
                "{} (generated from {}.xml by this crate's encoder)",
                vector.name, vector.name
            );
            std::fs::write(&vector.hex_path, common::annotate(&bytes, &title)).expect("write hex");
        }
        let bytes = vector.bytes();
        assert_eq!(
            encode(&document).as_deref(),
            Ok(&bytes[..]),
            "{}: encode(xml) != hex",
            vector.name
        );
        let decoded =
            decode(&bytes, &Limits::default()).unwrap_or_else(|e| panic!("{}: {e}", vector.name));
        assert_eq!(decoded, document, "{}: decode(hex) != xml", vector.name);
        assert_eq!(
            to_xml(&decoded),
            vector.xml,
            "{}: to_xml(decode(hex)) != xml file",
            vector.name
        );
    }
}

#[test]
fn spec_vectors_are_the_bytes_from_eas_notes() {
    // Same bytes as EAS-NOTES §2.5, written inline so a broken .hex parser cannot hide a mismatch.
    let sync = [
        0x03, 0x01, 0x6a, 0x00, 0x45, 0x5c, 0x4f, 0x4b, 0x03, 0x30, 0x00, 0x01, 0x52, 0x03, 0x35,
        0x00, 0x01, 0x01, 0x01, 0x01,
    ];
    let vector = common::vectors()
        .into_iter()
        .find(|v| v.name == "spec-sync-one-collection")
        .expect("vector");
    assert_eq!(vector.bytes(), sync);

    let document = decode(&sync, &Limits::default()).expect("spec bytes decode");
    let collection = document
        .root
        .child(tags::air_sync::COLLECTIONS)
        .and_then(|c| c.child(tags::air_sync::COLLECTION));
    let collection = collection.expect("Collections > Collection");
    assert_eq!(collection.text_of(tags::air_sync::SYNC_KEY), Some("0"));
    assert_eq!(collection.text_of(tags::air_sync::COLLECTION_ID), Some("5"));

    let send_mail = common::vectors()
        .into_iter()
        .find(|v| v.name == "spec-sendmail-opaque-mime")
        .expect("vector");
    let bytes = send_mail.bytes();
    assert_eq!(
        &bytes[..14],
        &[0x03, 0x01, 0x6a, 0x00, 0x00, 0x15, 0x45, 0x51, 0x03, b'm', b's', b'g', b'-', b'1']
    );
    assert_eq!(&bytes[15..20], &[0x01, 0x08, 0x50, 0xc3, 0x29]);
    assert_eq!(bytes.len(), 20 + 0x29 + 2);
    let document = decode(&bytes, &Limits::default()).expect("spec bytes decode");
    assert!(
        document.root.child(tags::compose_mail::SAVE_IN_SENT_ITEMS).is_some_and(|e| e.is_empty())
    );
    assert_eq!(document.root.bytes_of(tags::compose_mail::MIME).map(<[u8]>::len), Some(41));
}

#[test]
fn every_proper_prefix_of_every_vector_is_truncated() {
    for vector in common::vectors() {
        let bytes = vector.bytes();
        for len in 0..bytes.len() {
            assert_eq!(
                decode(&bytes[..len], &Limits::default()),
                Err(eas_wbxml::DecodeError::Truncated { offset: len }),
                "{} cut at {len}",
                vector.name
            );
        }
    }
}
