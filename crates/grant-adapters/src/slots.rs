//! One admin connection per endpoint, for either engine: a slot per label, held exclusively while in use, so
//! the work on one database runs in order on its connection, which stays open across warm invocations.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tokio::sync::{Mutex as AsyncMutex, OwnedMutexGuard};

pub(crate) struct Slots<T> {
    slots: Mutex<HashMap<String, Arc<AsyncMutex<Option<T>>>>>,
}

impl<T> Default for Slots<T> {
    fn default() -> Self {
        Slots { slots: Mutex::default() }
    }
}

impl<T> Slots<T> {
    /// Exclusive use of `label`'s slot: None until a connection is made in it.
    pub(crate) async fn take(&self, label: &str) -> OwnedMutexGuard<Option<T>> {
        let slot = self.slots.lock().expect("slot map lock").entry(label.to_string()).or_default().clone();
        slot.lock_owned().await
    }
}
