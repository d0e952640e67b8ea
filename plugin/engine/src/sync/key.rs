//! SyncKeys: `{generation:x}-{counter}`. The generation is random per sync relationship (set
//! by a SyncKey `0`), the counter grows by one with every answer that carries changes. A key
//! from another generation (an older relationship, another device, a guess) is unknown.

use std::fmt;

/// A SyncKey the server issued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SyncKey {
    pub generation: u64,
    pub counter: u32,
}

/// What a client's SyncKey says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientKey {
    /// `0`: start (or restart) the collection.
    Initial,
    Issued(SyncKey),
    /// Not a key this server could have issued.
    Malformed,
}

impl SyncKey {
    pub fn next(self) -> SyncKey {
        SyncKey { generation: self.generation, counter: self.counter.wrapping_add(1) }
    }
}

impl fmt::Display for SyncKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:x}-{}", self.generation, self.counter)
    }
}

impl ClientKey {
    pub fn parse(text: &str) -> ClientKey {
        let text = text.trim();
        if text == "0" {
            return ClientKey::Initial;
        }
        let Some((generation, counter)) = text.split_once('-') else {
            return ClientKey::Malformed;
        };
        let is_hex =
            |s: &str| !s.is_empty() && s.len() <= 16 && s.bytes().all(|b| b.is_ascii_hexdigit());
        let is_dec =
            |s: &str| !s.is_empty() && s.len() <= 10 && s.bytes().all(|b| b.is_ascii_digit());
        if !is_hex(generation) || !is_dec(counter) {
            return ClientKey::Malformed;
        }
        match (u64::from_str_radix(generation, 16), counter.parse::<u32>()) {
            (Ok(generation), Ok(counter)) => ClientKey::Issued(SyncKey { generation, counter }),
            _ => ClientKey::Malformed,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_round_trip_and_stay_short() {
        let key = SyncKey { generation: u64::MAX, counter: u32::MAX };
        let text = key.to_string();
        assert!(text.len() <= 64);
        assert_eq!(ClientKey::parse(&text), ClientKey::Issued(key));
        assert_eq!(ClientKey::parse(" 0 "), ClientKey::Initial);
    }

    #[test]
    fn anything_else_is_malformed() {
        for text in [
            "",
            "-",
            "1",
            "x-1",
            "1-x",
            "1-",
            "-1",
            "1-2-3",
            "+1-2",
            "11111111111111111-1",
            "1-99999999999",
        ] {
            assert_eq!(ClientKey::parse(text), ClientKey::Malformed, "{text:?}");
        }
    }
}
