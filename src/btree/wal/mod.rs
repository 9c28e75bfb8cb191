//! The write-ahead log of the BTREE layout, the lowest layer above the page
//! format: the redo log file ([`log`]), the payloads of its records, each
//! record's writer beside its reader ([`records`]), and the control file that
//! says where recovery starts ([`control`]). Uses [`crate::btree::page`] only.
pub mod control;
pub mod log;
pub mod records;
