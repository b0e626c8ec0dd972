//! Where the chain database lives: a file, or memory that outlives the database (the
//! simulator's disk, kept across a node's restart). Both open through the same code path in
//! [`Chain::open_on`](super::Chain::open_on); only redb's storage backend differs.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

/// The storage of a chain database.
#[derive(Debug, Clone)]
pub enum ChainStorage {
    /// A redb file (created with the genesis state when missing).
    File(PathBuf),
    /// A simulated disk in memory.
    Memory(MemoryDisk),
}

impl ChainStorage {
    /// How the storage is named in errors and logs.
    pub fn describe(&self) -> String {
        match self {
            Self::File(path) => path.display().to_string(),
            Self::Memory(disk) => format!("memory disk {}", disk.name),
        }
    }
}

/// A disk in memory: a redb storage backend whose bytes survive the database that used them,
/// so a simulated node can stop and start again with its chain. Clones share the bytes.
///
/// It injects write faults: while [`MemoryDisk::set_full`] is on, every write, resize and sync
/// fails as a full disk does, and reads still work.
#[derive(Clone, Default)]
pub struct MemoryDisk {
    name: String,
    bytes: Arc<Mutex<Vec<u8>>>,
    full: Arc<AtomicBool>,
}

impl core::fmt::Debug for MemoryDisk {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("MemoryDisk")
            .field("name", &self.name)
            .field("len", &self.len_bytes())
            .finish()
    }
}

impl MemoryDisk {
    /// An empty disk called `name` (in error messages).
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            bytes: Arc::default(),
            full: Arc::default(),
        }
    }

    /// Makes every write fail with "no space left on device" (`true`) or succeed again.
    pub fn set_full(&self, full: bool) {
        self.full.store(full, Ordering::SeqCst);
    }

    /// True while writes fail.
    pub fn is_full(&self) -> bool {
        self.full.load(Ordering::SeqCst)
    }

    fn check_space(&self) -> Result<(), std::io::Error> {
        if self.is_full() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::StorageFull,
                "no space left on device (memory disk)",
            ));
        }
        Ok(())
    }

    /// Bytes stored.
    pub fn len_bytes(&self) -> u64 {
        self.lock().len() as u64
    }

    /// True when nothing was ever written (a new database is created on it).
    pub fn is_empty(&self) -> bool {
        self.lock().is_empty()
    }

    // A writer that panicked left whole writes behind (each copies under the lock): read on.
    fn lock(&self) -> MutexGuard<'_, Vec<u8>> {
        self.bytes.lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn out_of_range() -> std::io::Error {
    std::io::Error::new(
        std::io::ErrorKind::InvalidInput,
        "memory disk access out of range",
    )
}

impl redb::StorageBackend for MemoryDisk {
    fn len(&self) -> Result<u64, std::io::Error> {
        Ok(self.len_bytes())
    }

    fn read(&self, offset: u64, out: &mut [u8]) -> Result<(), std::io::Error> {
        let bytes = self.lock();
        let start = usize::try_from(offset).map_err(|_| out_of_range())?;
        let end = start.checked_add(out.len()).ok_or_else(out_of_range)?;
        out.copy_from_slice(bytes.get(start..end).ok_or_else(out_of_range)?);
        Ok(())
    }

    fn set_len(&self, len: u64) -> Result<(), std::io::Error> {
        self.check_space()?;
        let len = usize::try_from(len).map_err(|_| out_of_range())?;
        self.lock().resize(len, 0);
        Ok(())
    }

    fn sync_data(&self) -> Result<(), std::io::Error> {
        self.check_space()
    }

    fn write(&self, offset: u64, data: &[u8]) -> Result<(), std::io::Error> {
        self.check_space()?;
        let mut bytes = self.lock();
        let start = usize::try_from(offset).map_err(|_| out_of_range())?;
        let end = start.checked_add(data.len()).ok_or_else(out_of_range)?;
        bytes
            .get_mut(start..end)
            .ok_or_else(out_of_range)?
            .copy_from_slice(data);
        Ok(())
    }
}
