//! Operating-system hints and queries for plot files, through rustix's safe wrappers (no
//! `unsafe` here). Hints are best effort: where unsupported they do nothing.

use std::fs::File;
use std::num::NonZeroU64;
use std::path::Path;

use rustix::fs::{Advice, FallocateFlags};

/// Bytes available to an unprivileged writer on the file system holding `path`.
pub fn free_space(path: &Path) -> std::io::Result<u64> {
    let st = rustix::fs::statvfs(path)?;
    Ok(st.f_bavail.saturating_mul(st.f_frsize))
}

/// Reserves `len` bytes for `file` (so a full disk fails now, not hours into plotting); falls
/// back to `set_len` (a sparse file) where `fallocate` is unsupported.
pub fn reserve(file: &File, len: u64) -> std::io::Result<()> {
    match rustix::fs::fallocate(file, FallocateFlags::empty(), 0, len) {
        Ok(()) => Ok(()),
        Err(e) if e == rustix::io::Errno::NOSPC => Err(std::io::Error::from(e)),
        Err(_) => file.set_len(len),
    }
}

/// Takes an exclusive advisory lock on `file` without waiting (released when the file is
/// closed); false when another process holds it.
pub fn try_lock_exclusive(file: &File) -> bool {
    rustix::fs::flock(file, rustix::fs::FlockOperation::NonBlockingLockExclusive).is_ok()
}

/// Hints that `[offset, offset + len)` will be read soon (the kernel starts reading it ahead).
pub fn will_need(file: &File, offset: u64, len: u64) {
    let _ = rustix::fs::fadvise(file, offset, NonZeroU64::new(len), Advice::WillNeed);
}

/// Hints that the file is read at scattered offsets (no read-ahead beyond what is asked).
pub fn random_access(file: &File) {
    let _ = rustix::fs::fadvise(file, 0, None, Advice::Random);
}

/// Drops the file's cached pages (used after writing a plot and by benchmarks for cold reads).
pub fn drop_cache(file: &File) {
    let _ = rustix::fs::fadvise(file, 0, None, Advice::DontNeed);
}

/// The `O_DIRECT` open flag (reads bypass the page cache; offsets and buffers must be aligned).
pub fn o_direct_flag() -> i32 {
    rustix::fs::OFlags::DIRECT.bits() as i32
}

/// A heap buffer whose usable part starts on an `align` boundary (for `O_DIRECT` and for
/// page-aligned reads), without `unsafe`: it over-allocates and slices at the aligned offset.
#[derive(Debug)]
pub struct AlignedBuf {
    raw: Vec<u8>,
    start: usize,
    len: usize,
}

impl AlignedBuf {
    /// A zeroed buffer of `len` usable bytes aligned to `align` (a power of two).
    pub fn new(len: usize, align: usize) -> Self {
        let raw = vec![0u8; len + align];
        let start = raw.as_ptr().align_offset(align).min(align);
        Self { raw, start, len }
    }

    /// The usable bytes.
    pub fn as_mut_slice(&mut self) -> &mut [u8] {
        &mut self.raw[self.start..self.start + self.len]
    }

    /// The usable bytes.
    pub fn as_slice(&self) -> &[u8] {
        &self.raw[self.start..self.start + self.len]
    }

    /// Usable length.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when the buffer has no usable bytes.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aligned_buffer_is_aligned() {
        for len in [0, 1, 4096, 10_000] {
            let mut b = AlignedBuf::new(len, 4096);
            assert_eq!(b.as_mut_slice().len(), len);
            assert_eq!(b.as_slice().as_ptr() as usize % 4096, 0);
        }
    }

    #[test]
    fn exclusive_lock_excludes_a_second_holder() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("f");
        let a = File::create(&p).unwrap();
        assert!(try_lock_exclusive(&a));
        let b = File::open(&p).unwrap();
        assert!(!try_lock_exclusive(&b));
        drop(a);
        assert!(try_lock_exclusive(&b));
    }

    #[test]
    fn free_space_of_tempdir() {
        let d = tempfile::tempdir().unwrap();
        assert!(free_space(d.path()).unwrap() > 0);
        assert!(free_space(&d.path().join("missing")).is_err());
    }
}
