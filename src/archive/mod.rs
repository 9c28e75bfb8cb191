//! The ARCHIVE layout: compressed, append-only tables for history and logs.
pub mod format;
pub mod table;
pub mod layout;
