//! The parts of a multi-key transaction: conditions that must all hold, and the writes applied
//! if they do. This is what an atomic SyncKey advance is made of (check the current key, write
//! the new key, the previous key and what the device now holds, in one commit).

/// "`key` currently holds `expected`" (`None`: the key is absent).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Condition {
    pub key: String,
    pub expected: Option<Vec<u8>>,
}

impl Condition {
    pub fn equals(key: impl Into<String>, value: impl Into<Vec<u8>>) -> Self {
        Condition { key: key.into(), expected: Some(value.into()) }
    }

    pub fn absent(key: impl Into<String>) -> Self {
        Condition { key: key.into(), expected: None }
    }
}

/// "Set `key` to `value`" (`None`: delete the key).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Write {
    pub key: String,
    pub value: Option<Vec<u8>>,
}

impl Write {
    pub fn put(key: impl Into<String>, value: impl Into<Vec<u8>>) -> Self {
        Write { key: key.into(), value: Some(value.into()) }
    }

    pub fn delete(key: impl Into<String>) -> Self {
        Write { key: key.into(), value: None }
    }
}
