//! The CSV layout: a plain CSV file per table.
pub mod codec;
pub mod table;
pub mod layout;
