//! The wire: pure code from bytes to values and back. Frames out of a byte
//! stream, text in nine encodings, separators, JSON (serde_json's and
//! Python's), packed binary structs.
//! Nothing here knows of sockets or threads; every piece is tested on a
//! `Cursor` or a slice.

pub(crate) mod binary;
pub(crate) mod codec;
pub(crate) mod frame;
pub(crate) mod json;
pub(crate) mod separator;
pub(crate) mod text;

pub use binary::BinaryStruct;
