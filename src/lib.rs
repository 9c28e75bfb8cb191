//! ha_rust: a storage engine for MariaDB whose logic is Rust.
//!
//! `cpp/mariadb/` holds the server glue (plugin declaration, the `ha_rust` handler,
//! row and key conversion); everything that touches a file lives here. The two meet
//! only in [`ffi`]. See `docs/` for the file formats and `docs/architecture.md` for
//! the shape.

pub mod archive;
pub mod btree;
pub mod consts;
pub mod csv;
pub mod error;
pub mod ffi;
pub mod fsutil;
#[cfg(any(test, feature = "fuzzing"))]
pub mod fuzzing;
pub mod inventory;
pub mod layout;
pub mod metrics;
pub mod optimizer;
pub mod rejected;
pub mod session;
#[cfg(test)]
pub(crate) mod testutil;
