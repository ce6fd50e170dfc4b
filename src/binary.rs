//! Binary structs (placeholder until the macro lands).
/// A packed binary record.
pub trait BinaryStruct {
    /// Size in bytes on the wire.
    fn size(&self) -> usize;
    /// Appends exactly `size()` bytes.
    fn encode(&self, out: &mut Vec<u8>);
    /// Sets every field from exactly `size()` bytes.
    fn decode(&mut self, bytes: &[u8]) -> crate::Result<()>;
}
