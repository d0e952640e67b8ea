//! The server's CAPABILITY list (RFC 9051 §7.2.2), with the extensions this client uses as
//! fields so that decisions read as `caps.qresync` rather than string lookups.

/// What the server announced. The list changes after STARTTLS and LOGIN (RFC 9051 §6.2.2), so
/// the session asks again then.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Capabilities {
    pub imap4rev1: bool,
    pub imap4rev2: bool,
    /// RFC 7162 §3.1: MODSEQ and CHANGEDSINCE.
    pub condstore: bool,
    /// RFC 7162 §3.2: SELECT with QRESYNC, VANISHED.
    pub qresync: bool,
    /// RFC 5161.
    pub enable: bool,
    /// RFC 5465.
    pub notify: bool,
    /// RFC 2177.
    pub idle: bool,
    /// RFC 6851.
    pub move_command: bool,
    /// RFC 4315: APPENDUID, COPYUID, UID EXPUNGE.
    pub uidplus: bool,
    /// RFC 6154.
    pub special_use: bool,
    /// RFC 5258: LIST ... RETURN (...).
    pub list_extended: bool,
    /// RFC 5819: LIST ... RETURN (STATUS (...)).
    pub list_status: bool,
    /// RFC 7888: non-synchronising literals `{n+}` of any size.
    pub literal_plus: bool,
    /// RFC 7888: non-synchronising literals up to 4096 bytes.
    pub literal_minus: bool,
    /// RFC 4731: SEARCH RETURN (...), ESEARCH responses.
    pub esearch: bool,
    /// RFC 8474: MAILBOXID, EMAILID, THREADID.
    pub objectid: bool,
    pub starttls: bool,
    /// RFC 9051 §6.2.3: LOGIN is refused (until TLS).
    pub login_disabled: bool,
    /// Everything announced, upper-cased, in order.
    pub all: Vec<String>,
}

impl Capabilities {
    pub fn from_atoms<'a>(atoms: impl IntoIterator<Item = &'a [u8]>) -> Self {
        let mut caps = Capabilities::default();
        for atom in atoms {
            let name = String::from_utf8_lossy(atom).to_ascii_uppercase();
            match name.as_str() {
                "IMAP4REV1" => caps.imap4rev1 = true,
                "IMAP4REV2" => caps.imap4rev2 = true,
                "CONDSTORE" => caps.condstore = true,
                // QRESYNC implies CONDSTORE (RFC 7162 §3.2.3)
                "QRESYNC" => {
                    caps.qresync = true;
                    caps.condstore = true;
                }
                "ENABLE" => caps.enable = true,
                "NOTIFY" => caps.notify = true,
                "IDLE" => caps.idle = true,
                "MOVE" => caps.move_command = true,
                "UIDPLUS" => caps.uidplus = true,
                "SPECIAL-USE" => caps.special_use = true,
                "LIST-EXTENDED" => caps.list_extended = true,
                "LIST-STATUS" => caps.list_status = true,
                "LITERAL+" => caps.literal_plus = true,
                "LITERAL-" => caps.literal_minus = true,
                "ESEARCH" => caps.esearch = true,
                "OBJECTID" => caps.objectid = true,
                "STARTTLS" => caps.starttls = true,
                "LOGINDISABLED" => caps.login_disabled = true,
                _ => {}
            }
            caps.all.push(name);
        }
        // IMAP4rev2 folds ENABLE, IDLE, MOVE, UIDPLUS, SPECIAL-USE, LIST-EXTENDED, LIST-STATUS,
        // LITERAL- and ESEARCH into the base protocol (RFC 9051 Appendix E).
        if caps.imap4rev2 {
            caps.enable = true;
            caps.idle = true;
            caps.move_command = true;
            caps.uidplus = true;
            caps.special_use = true;
            caps.list_extended = true;
            caps.list_status = true;
            caps.literal_minus = true;
            caps.esearch = true;
        }
        caps
    }

    /// Whether `name` was announced (case-insensitive), for extensions without a field.
    pub fn has(&self, name: &str) -> bool {
        self.all.iter().any(|announced| announced.eq_ignore_ascii_case(name))
    }

    /// Whether a literal of `len` bytes may be sent without waiting for the server's `+`.
    pub fn allows_non_sync_literal(&self, len: usize) -> bool {
        self.literal_plus || (self.literal_minus && len <= 4096)
    }

    /// The CONDSTORE/QRESYNC view with both turned off (config: change tracking disabled).
    pub fn without_change_tracking(mut self) -> Self {
        self.condstore = false;
        self.qresync = false;
        self
    }

    /// QRESYNC turned off, CONDSTORE kept (config: CONDSTORE only).
    pub fn without_qresync(mut self) -> Self {
        self.qresync = false;
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dovecot_capabilities() {
        let line = "IMAP4rev1 SASL-IR LOGIN-REFERRALS ID ENABLE IDLE SORT SORT=DISPLAY THREAD=REFERENCES \
                    THREAD=REFS THREAD=ORDEREDSUBJECT MULTIAPPEND URL-PARTIAL CATENATE UNSELECT CHILDREN \
                    NAMESPACE UIDPLUS LIST-EXTENDED I18NLEVEL=1 CONDSTORE QRESYNC ESEARCH ESORT SEARCHRES \
                    WITHIN CONTEXT=SEARCH LIST-STATUS BINARY MOVE SNIPPET=FUZZY PREVIEW=FUZZY PREVIEW \
                    STATUS=SIZE SAVEDATE LITERAL+ NOTIFY SPECIAL-USE";
        let caps = Capabilities::from_atoms(line.split(' ').map(str::as_bytes));
        assert!(caps.imap4rev1 && caps.condstore && caps.qresync && caps.enable && caps.notify);
        assert!(caps.idle && caps.move_command && caps.uidplus && caps.special_use);
        assert!(caps.list_extended && caps.list_status && caps.literal_plus && caps.esearch);
        assert!(!caps.starttls && !caps.login_disabled && !caps.imap4rev2);
        assert!(caps.has("sort=display"));
        assert!(caps.allows_non_sync_literal(1 << 20));
    }

    #[test]
    fn rev2_implies_folded_extensions_and_qresync_implies_condstore() {
        let caps = Capabilities::from_atoms([&b"IMAP4rev2"[..], b"QRESYNC", b"LITERAL-"]);
        assert!(caps.esearch && caps.move_command && caps.condstore);
        assert!(caps.allows_non_sync_literal(4096) && !caps.allows_non_sync_literal(4097));
        let off = caps.clone().without_change_tracking();
        assert!(!off.condstore && !off.qresync);
        assert!(caps.without_qresync().condstore);
    }
}
