//! Size limits every backend enforces the same way, before touching storage: the state
//! capability is driven by the plugin, and one device's requests must not be able to fill the
//! disk or the host's memory.

use super::error::{StateError, StateResult};
use super::namespace::Namespace;
use super::transaction::{Condition, Write};
use serde::Deserialize;

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StoreLimits {
    /// Largest value one key may hold. The default leaves room for the plugin's stored Sync
    /// answer (kept for a retry with the previous key; up to 1.5 MiB per collection).
    pub max_value_bytes: usize,
    /// Longest key, and longest tenant, user or device name.
    pub max_name_bytes: usize,
    /// Largest `transact`: all keys, expected values and written values together.
    pub max_transaction_bytes: usize,
}

impl Default for StoreLimits {
    fn default() -> Self {
        StoreLimits {
            max_value_bytes: 4 * 1024 * 1024,
            max_name_bytes: 1024,
            max_transaction_bytes: 16 * 1024 * 1024,
        }
    }
}

impl StoreLimits {
    pub fn check_namespace(&self, ns: &Namespace) -> StateResult<()> {
        self.check_name("tenant name", &ns.tenant)?;
        self.check_name("user name", &ns.user)?;
        match &ns.device {
            Some(device) => self.check_name("device id", device),
            None => Ok(()),
        }
    }

    pub fn check_key(&self, key: &str) -> StateResult<()> {
        self.check_name("key", key)
    }

    pub fn check_name(&self, what: &'static str, name: &str) -> StateResult<()> {
        if name.len() > self.max_name_bytes {
            return Err(StateError::NameTooLong {
                what,
                len: name.len(),
                max: self.max_name_bytes,
            });
        }
        Ok(())
    }

    pub fn check_value(&self, value: &[u8]) -> StateResult<()> {
        if value.len() > self.max_value_bytes {
            return Err(StateError::ValueTooLarge { len: value.len(), max: self.max_value_bytes });
        }
        Ok(())
    }

    /// Checks a whole transaction: every key and value on its own, then the total.
    pub fn check_transaction(&self, conditions: &[Condition], writes: &[Write]) -> StateResult<()> {
        let mut total = 0usize;
        for condition in conditions {
            self.check_key(&condition.key)?;
            total += condition.key.len() + condition.expected.as_ref().map_or(0, Vec::len);
        }
        for write in writes {
            self.check_key(&write.key)?;
            if let Some(value) = &write.value {
                self.check_value(value)?;
            }
            total += write.key.len() + write.value.as_ref().map_or(0, Vec::len);
        }
        if total > self.max_transaction_bytes {
            return Err(StateError::TransactionTooLarge {
                len: total,
                max: self.max_transaction_bytes,
            });
        }
        Ok(())
    }
}
