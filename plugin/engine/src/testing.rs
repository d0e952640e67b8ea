//! An in-memory [`Capabilities`] for unit tests of the engine's pure logic (no I/O involved;
//! the real capabilities are tested end to end against Dovecot).

use crate::capabilities::{Capabilities, Level, StateResult, StateScope};
use std::cell::{Cell, RefCell};
use std::collections::HashMap;

#[derive(Default)]
pub struct FakeHost {
    state: RefCell<HashMap<(StateScope, String), Vec<u8>>>,
    counter: Cell<u64>,
}

impl FakeHost {
    pub fn stored(&self, scope: &StateScope, key: &str) -> Option<Vec<u8>> {
        self.state.borrow().get(&(scope.clone(), key.to_owned())).cloned()
    }

    pub fn store(&self, scope: &StateScope, key: &str, value: &[u8]) {
        self.state.borrow_mut().insert((scope.clone(), key.to_owned()), value.to_vec());
    }
}

impl Capabilities for FakeHost {
    fn now_ms(&self) -> u64 {
        0
    }

    fn log(&self, _: Level, _: &str) {}

    /// Distinct, predictable values: tests can tell keys apart.
    fn random_u64(&self) -> Option<u64> {
        self.counter.set(self.counter.get() + 1);
        Some(self.counter.get().wrapping_mul(0x9E37_79B9_7F4A_7C15))
    }

    async fn state_get(&self, scope: &StateScope, key: &str) -> StateResult<Option<Vec<u8>>> {
        Ok(self.stored(scope, key))
    }

    async fn state_put(&self, scope: &StateScope, key: &str, value: Vec<u8>) -> StateResult<()> {
        self.store(scope, key, &value);
        Ok(())
    }

    async fn state_compare_and_swap(
        &self,
        scope: &StateScope,
        key: &str,
        expected: Option<Vec<u8>>,
        new: Option<Vec<u8>>,
    ) -> StateResult<bool> {
        let mut state = self.state.borrow_mut();
        let slot = (scope.clone(), key.to_owned());
        if state.get(&slot) != expected.as_ref() {
            return Ok(false);
        }
        match new {
            Some(value) => state.insert(slot, value),
            None => state.remove(&slot),
        };
        Ok(true)
    }
}
