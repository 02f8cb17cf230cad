pub(crate) mod format;
