//! The BTREE layout's storage core: slotted pages, a bounded buffer pool and a
//! B+tree over byte keys (spec: `docs/btree-format.md`). Not yet reachable from
//! SQL: LAYOUT=BTREE stays refused until the redo and undo logs and transactions
//! are in (see the BTREE issue).
pub mod engine;
pub mod log;
pub mod page;
pub mod pool;
pub mod table;
pub mod tree;
