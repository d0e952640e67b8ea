//! email2:ConversationId and ConversationIndex (MS-ASEMAIL §2.2.2.21–22, MS-ASCON §2.2.2.4).
//!
//! ConversationId rule: the 16-byte FNV-1a-128 hash of the thread root, where the root is, in
//! order of preference:
//! 1. the first Message-ID of References (RFC 5322 §3.6.4: the thread's first message),
//! 2. else In-Reply-To,
//! 3. else the message's own Message-ID,
//! 4. else the subject without reply prefixes, lower-cased and whitespace-collapsed,
//! 5. else (no ids, no subject) the UID and INTERNALDATE: such a message is its own thread.
//!
//! Each kind is hashed with a distinct label so an id never collides with an equal subject.
//! Every message of a thread carries the root id in References, so replies and the original
//! agree. The value must never change for a stored message: the hash and the rule are fixed.

use super::dates::filetime_from_unix;
use super::headers::{ThreadIds, strip_reply_prefixes};

pub fn conversation_id(ids: &ThreadIds, subject: &str, uid: u32, internal_date: i64) -> [u8; 16] {
    let root_id = ids.references.first().or(ids.in_reply_to.as_ref()).or(ids.message_id.as_ref());
    if let Some(id) = root_id {
        return fnv1a_128(&[b"message-id:", id.as_bytes()]);
    }
    let topic = strip_reply_prefixes(subject).split_whitespace().collect::<Vec<_>>().join(" ");
    if !topic.is_empty() {
        return fnv1a_128(&[b"subject:", topic.to_lowercase().as_bytes()]);
    }
    fnv1a_128(&[b"uid:", &uid.to_be_bytes(), &internal_date.to_be_bytes()])
}

/// The 22-byte header block of PidTagConversationIndex (MS-OXOMSG §2.2.1.3): 0x01, the 40
/// high bits of the FILETIME big-endian, then the conversation GUID (here the
/// ConversationId). No child blocks: IMAP does not say how deep in the thread a message is.
pub fn conversation_index(conversation_id: &[u8; 16], unix_seconds: i64) -> [u8; 22] {
    let mut index = [0u8; 22];
    index[0] = 0x01;
    let filetime_high_40_bits = filetime_from_unix(unix_seconds) >> 24;
    index[1..6].copy_from_slice(&filetime_high_40_bits.to_be_bytes()[3..]);
    index[6..].copy_from_slice(conversation_id);
    index
}

/// FNV-1a with the 128-bit parameters (offset basis and prime from the FNV specification).
fn fnv1a_128(chunks: &[&[u8]]) -> [u8; 16] {
    const OFFSET_BASIS: u128 = 0x6c62_272e_07bb_0142_62b8_2175_6295_c58d;
    const PRIME: u128 = 0x0000_0000_0100_0000_0000_0000_0000_013b;
    let mut hash = OFFSET_BASIS;
    for &byte in chunks.iter().flat_map(|chunk| chunk.iter()) {
        hash ^= u128::from(byte);
        hash = hash.wrapping_mul(PRIME);
    }
    hash.to_be_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(references: &[&str], in_reply_to: Option<&str>, own: Option<&str>) -> ThreadIds {
        ThreadIds {
            references: references.iter().map(|r| r.to_string()).collect(),
            in_reply_to: in_reply_to.map(str::to_owned),
            message_id: own.map(str::to_owned),
        }
    }

    #[test]
    fn fnv_known_vectors() {
        // Published FNV-1a-128 test values.
        assert_eq!(fnv1a_128(&[b""]), 0x6c62272e07bb014262b821756295c58d_u128.to_be_bytes());
        assert_eq!(fnv1a_128(&[b"a"]), 0xd228cb696f1a8caf78912b704e4a8964_u128.to_be_bytes());
    }

    #[test]
    fn a_thread_shares_one_id() {
        let original = conversation_id(&ids(&[], None, Some("root@x")), "Plans", 1, 0);
        let reply =
            conversation_id(&ids(&["root@x"], Some("root@x"), Some("r1@x")), "Re: Plans", 2, 0);
        let reply_to_reply = conversation_id(
            &ids(&["root@x", "r1@x"], Some("r1@x"), Some("r2@x")),
            "Re: Re: Plans",
            3,
            0,
        );
        let broken_client = conversation_id(&ids(&[], Some("root@x"), Some("r3@x")), "", 4, 0);
        assert_eq!(original, reply);
        assert_eq!(reply, reply_to_reply);
        assert_eq!(reply, broken_client);
    }

    #[test]
    fn fallbacks_to_subject_then_uid() {
        let a = conversation_id(&ids(&[], None, None), "Re:  Budget  2025", 1, 5);
        let b = conversation_id(&ids(&[], None, None), "budget 2025", 2, 6);
        assert_eq!(a, b);
        let lone_1 = conversation_id(&ids(&[], None, None), "", 1, 5);
        let lone_2 = conversation_id(&ids(&[], None, None), "Re:", 2, 5);
        assert_ne!(lone_1, lone_2);
        assert_ne!(conversation_id(&ids(&[], None, Some("budget 2025")), "", 1, 5), a);
    }

    #[test]
    fn index_header_layout() {
        let id = [0xAB; 16];
        let index = conversation_index(&id, 0);
        // FILETIME of 1970-01-01 is 0x019DB1DED53E8000; its 40 high bits are 01 9D B1 DE D5.
        assert_eq!(index[..6], [0x01, 0x01, 0x9D, 0xB1, 0xDE, 0xD5]);
        assert_eq!(index[6..], id);
    }
}
