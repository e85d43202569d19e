//! Child side start-up.
pub(crate) fn on_load() {}
