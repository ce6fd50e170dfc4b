//! The codec of one side of a link, changed by `set_encoding` and
//! `set_terminator` while other threads read and write: swapped whole, so
//! a call in progress keeps the pair it started with, and copied by each
//! half of the link, so a call checks it with one load instead of a lock.

use std::sync::atomic::Ordering;

use crate::sync::{AtomicU64, RwLock};
use crate::wire::codec::Codec;

#[derive(Debug)]
pub(crate) struct SharedCodec {
    current: RwLock<Codec>,
    /// Bumped by every `set`, under the write lock.
    version: AtomicU64,
}

impl SharedCodec {
    pub(crate) fn new(codec: Codec) -> SharedCodec {
        SharedCodec {
            current: RwLock::new(codec),
            version: AtomicU64::new(0),
        }
    }

    pub(crate) fn get(&self) -> Codec {
        self.current.read().clone()
    }

    pub(crate) fn set(&self, update: impl FnOnce(&Codec) -> Codec) {
        let mut codec = self.current.write();
        *codec = update(&codec);
        self.version.fetch_add(1, Ordering::Release);
    }

    /// The codec with the version it was set at, read under the lock `set`
    /// bumps the version under, so the pair is consistent.
    fn versioned(&self) -> (u64, Codec) {
        let codec = self.current.read();
        (self.version.load(Ordering::Acquire), codec.clone())
    }
}

/// A half's copy of the codec, refreshed only when `set` ran since.
#[derive(Debug)]
pub(crate) struct CodecCache {
    version: u64,
    codec: Codec,
}

impl CodecCache {
    pub(crate) fn new(shared: &SharedCodec) -> CodecCache {
        let (version, codec) = shared.versioned();
        CodecCache { version, codec }
    }

    #[inline]
    pub(crate) fn get(&mut self, shared: &SharedCodec) -> &Codec {
        if self.version != shared.version.load(Ordering::Acquire) {
            self.refresh(shared);
        }
        &self.codec
    }

    #[cold]
    fn refresh(&mut self, shared: &SharedCodec) {
        *self = CodecCache::new(shared);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::encoding::Encoding;

    #[test]
    fn a_cache_follows_every_set() {
        let shared = SharedCodec::new(Codec::new(Encoding::Utf8, b"\r\n"));
        let mut cache = CodecCache::new(&shared);
        assert_eq!(cache.get(&shared).terminator(), b"\r\n");
        shared.set(|c| Codec::new(Encoding::Latin1, c.terminator()));
        assert_eq!(cache.get(&shared).encoding, Encoding::Latin1);
        shared.set(|c| Codec::new(c.encoding, b"\n"));
        let codec = cache.get(&shared);
        assert_eq!(
            (codec.encoding, codec.terminator()),
            (Encoding::Latin1, &b"\n"[..])
        );
    }
}
