//! Locking a mutex even after a holder panicked.
//!
//! A poisoned mutex only says that some holder panicked, which is a bug already logged by the
//! panic itself. Refusing the lock from then on would turn that one bug into a panic in every
//! later caller: a task, a connection or the whole host. Each mutex of the host guards data
//! that a panic under the lock cannot leave half-changed (each caller says why), so the data is
//! used on.

use std::sync::{Mutex, MutexGuard, PoisonError};

/// `mutex.lock()`, ignoring poison.
pub fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_mutex_whose_holder_panicked_is_still_locked_and_used() {
        let mutex = Mutex::new(1);
        let panicked = std::panic::catch_unwind(|| {
            let _guard = lock(&mutex);
            panic!("a bug under the lock");
        });
        assert!(panicked.is_err());
        assert!(mutex.is_poisoned());
        *lock(&mutex) += 1;
        assert_eq!(*lock(&mutex), 2);
    }
}
