//! A value the daemon replaces while it serves (a configuration reload): readers take
//! a snapshot and keep it for the request, so a swap never changes a value under a
//! request that is using it.

use std::sync::{Arc, PoisonError, RwLock};

/// A shared value swapped whole, never edited in place.
pub struct Live<T>(RwLock<Arc<T>>);

impl<T> Live<T> {
    pub fn new(value: T) -> Self {
        Live(RwLock::new(Arc::new(value)))
    }

    /// The value now in effect.
    pub fn get(&self) -> Arc<T> {
        // A writer only ever stores a whole value, so a poisoned lock still holds one.
        Arc::clone(&self.0.read().unwrap_or_else(PoisonError::into_inner))
    }

    /// Puts `value` in effect for every reader from now on.
    pub fn set(&self, value: T) {
        *self.0.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(value);
    }
}

impl<T: Default> Default for Live<T> {
    fn default() -> Self {
        Live::new(T::default())
    }
}

impl<T: std::fmt::Debug> std::fmt::Debug for Live<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.get().fmt(f)
    }
}
