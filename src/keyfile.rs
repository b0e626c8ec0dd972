//! Key files: one 32-byte secret on disk (an sr25519 signing key or a node's Noise static key),
//! checksummed, written atomically with mode 0600.
//!
//! # Format
//!
//! A key file is exactly [`KEY_FILE_LEN`] = 78 bytes, with no text encoding and no padding:
//!
//! | Offset | Length | Field                                                                   |
//! |-------:|-------:|-------------------------------------------------------------------------|
//! |      0 |      4 | magic, the ASCII bytes `STKY` ([`MAGIC`])                               |
//! |      4 |      1 | format version, `1` ([`FORMAT_VERSION`])                                |
//! |      5 |      1 | key kind: `1` sr25519 ([`KIND_SR25519`]), `2` node key ([`KIND_NOISE_X25519`]) |
//! |      6 |     32 | secret: the sr25519 seed ([`Keypair::seed`]) or the X25519 private key  |
//! |     38 |     32 | public key derived from the secret for its kind                         |
//! |     70 |      8 | checksum: the first 8 bytes of `hash(tags::KEY_FILE, bytes[0..70])`     |
//!
//! [`decode_key_file`] checks, in this order: the length, the magic, the version, the kind, the
//! checksum, and that the stored public key is the one derived from the stored seed. The
//! checksum catches accidental damage (a truncated copy, a flipped bit, the wrong file); it is not
//! a MAC and the seed is not encrypted. What protects the secret is the file's permissions.
//! Both comparisons that involve the secret (the checksum, a hash of it, and the public key
//! derived from it, against the file's bytes) run in constant time ([`subtle`]), and the copies
//! of the secret this module makes (the file image, the read buffer) are wiped after use.
//!
//! # On disk
//!
//! [`write_key_file`] never exposes a partial or world-readable file: it writes a temporary file
//! in the target's directory, created with mode 0600, syncs it, moves it into place atomically and
//! syncs the directory. It does not create missing directories; the caller decides where keys
//! live. [`read_key_file`] refuses, on Unix, a file that group or others may access, and never
//! reads more than 79 bytes, however large the file.

use core::fmt;
use std::ffi::{OsStr, OsString};
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

use subtle::ConstantTimeEq;
use zeroize::{Zeroize, Zeroizing};

use crate::crypto::Keypair;
use crate::hash::{hash, tags};

/// Length in bytes of every key file.
pub const KEY_FILE_LEN: usize = 78;
/// The first four bytes of every key file.
pub const MAGIC: [u8; 4] = *b"STKY";
/// The key file format version this code writes and reads.
pub const FORMAT_VERSION: u8 = 1;
/// The key kind byte of an sr25519 key.
pub const KIND_SR25519: u8 = 1;
/// The key kind byte of a node's Noise static key (X25519).
pub const KIND_NOISE_X25519: u8 = 2;

/// What a key file holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyKind {
    /// An sr25519 signing key (a miner or wallet key); the seed is a schnorrkel mini secret.
    Sr25519,
    /// A node's Noise static key; the seed is the X25519 private key.
    NoiseX25519,
}

impl KeyKind {
    /// The kind byte in the file.
    pub const fn byte(self) -> u8 {
        match self {
            Self::Sr25519 => KIND_SR25519,
            Self::NoiseX25519 => KIND_NOISE_X25519,
        }
    }

    fn from_byte(byte: u8) -> Option<Self> {
        match byte {
            KIND_SR25519 => Some(Self::Sr25519),
            KIND_NOISE_X25519 => Some(Self::NoiseX25519),
            _ => None,
        }
    }

    /// A name for messages.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Sr25519 => "sr25519 signing key",
            Self::NoiseX25519 => "node (Noise X25519) key",
        }
    }

    /// The public key of `seed` for this kind.
    fn public_of(self, seed: &[u8; 32]) -> [u8; 32] {
        match self {
            Self::Sr25519 => Keypair::from_seed(seed).public().0,
            Self::NoiseX25519 => x25519_public(seed),
        }
    }
}

/// The X25519 public key of a private key (RFC 7748, with clamping).
pub fn x25519_public(private: &[u8; 32]) -> [u8; 32] {
    curve25519_dalek::MontgomeryPoint::mul_base_clamped(*private).to_bytes()
}

/// The X25519 shared secret of a private key and a peer's public key (RFC 7748, with clamping;
/// an all-zero result for a low-order peer key is returned as it is, as Noise allows).
pub fn x25519(private: &[u8; 32], public: &[u8; 32]) -> [u8; 32] {
    curve25519_dalek::MontgomeryPoint(*public)
        .mul_clamped(*private)
        .to_bytes()
}

// Field offsets of the layout in the module documentation.
const VERSION_AT: usize = 4;
const KIND_AT: usize = 5;
const SEED_AT: usize = 6;
const PUBLIC_AT: usize = SEED_AT + 32;
const CHECKSUM_AT: usize = PUBLIC_AT + 32;
const CHECKSUM_LEN: usize = 8;
const _: () = assert!(CHECKSUM_AT + CHECKSUM_LEN == KEY_FILE_LEN);

/// Bytes [`read_key_file`] reads at most: one more than a key file, to tell "too long" apart.
const READ_LIMIT: u64 = KEY_FILE_LEN as u64 + 1;
/// Permission bits that let users other than the owner at a key file.
#[cfg(unix)]
const GROUP_OTHER_BITS: u32 = 0o077;
/// How many temporary file names [`write_key_file`] tries before giving up.
const TEMP_ATTEMPTS: u32 = 64;

/// Why bytes are not a valid key file (no path: see [`KeyFileError::Format`] for that).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyFormatError {
    /// Fewer than [`KEY_FILE_LEN`] bytes.
    Truncated {
        /// Bytes present.
        found: usize,
    },
    /// More than [`KEY_FILE_LEN`] bytes.
    TooLong {
        /// Bytes present.
        found: usize,
    },
    /// The magic bytes are not `STKY`.
    NotAKeyFile,
    /// A format version this code does not read.
    UnsupportedVersion(u8),
    /// A key kind this code does not know.
    UnsupportedKind(u8),
    /// A key of another kind than the one asked for.
    WrongKind {
        /// The kind asked for.
        expected: KeyKind,
        /// The kind found.
        found: KeyKind,
    },
    /// The checksum does not match the contents.
    Corrupted,
    /// The checksum matches but the public key is not the one derived from the seed.
    PublicKeyMismatch,
}

impl KeyFormatError {
    /// What is wrong, phrased to follow "key file" or "key file PATH".
    fn detail(self) -> impl fmt::Display {
        struct Detail(KeyFormatError);
        impl fmt::Display for Detail {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                match self.0 {
                    KeyFormatError::Truncated { found } => {
                        write!(f, "is truncated ({found} of {KEY_FILE_LEN} bytes)")
                    }
                    KeyFormatError::TooLong { found } => {
                        write!(f, "is too long ({found} bytes, expected {KEY_FILE_LEN})")
                    }
                    KeyFormatError::NotAKeyFile => {
                        f.write_str("is not a Spacetime key file (it does not start with STKY)")
                    }
                    KeyFormatError::UnsupportedVersion(v) => write!(
                        f,
                        "has unsupported format version {v} (this build reads {FORMAT_VERSION})"
                    ),
                    KeyFormatError::UnsupportedKind(k) => write!(
                        f,
                        "holds unsupported key kind {k} (this build reads {KIND_SR25519}, sr25519, \
                         and {KIND_NOISE_X25519}, node keys)"
                    ),
                    KeyFormatError::WrongKind { expected, found } => {
                        write!(f, "holds a {}, not a {}", found.name(), expected.name())
                    }
                    KeyFormatError::Corrupted => f.write_str("is corrupted (checksum mismatch)"),
                    KeyFormatError::PublicKeyMismatch => {
                        f.write_str("is corrupted (its public key does not match its secret seed)")
                    }
                }
            }
        }
        Detail(self)
    }
}

impl fmt::Display for KeyFormatError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "key file {}", self.detail())
    }
}

impl std::error::Error for KeyFormatError {}

/// Why a key file could not be read or written.
///
/// Every message is one line naming the file, and already includes any underlying I/O error, so
/// `source()` returns `None` (error-chain printers would otherwise repeat it).
#[derive(Debug, thiserror::Error)]
pub enum KeyFileError {
    /// The file could not be opened or read.
    #[error("cannot read key file {}: {error}", .path.display())]
    Read {
        /// The key file.
        path: PathBuf,
        /// The I/O error.
        error: io::Error,
    },
    /// The file could not be written; the target is unchanged and no temporary file remains.
    #[error("cannot write key file {}: {error}", .path.display())]
    Write {
        /// The key file.
        path: PathBuf,
        /// The I/O error.
        error: io::Error,
    },
    /// The directory to write into does not exist (it is not created automatically).
    #[error(
        "cannot write key file {}: directory {} does not exist",
        .path.display(), .dir.display()
    )]
    DirectoryMissing {
        /// The key file.
        path: PathBuf,
        /// The missing directory.
        dir: PathBuf,
    },
    /// The path names no file (for example `/` or a path ending in `..`).
    #[error("key file path {} does not name a file", .path.display())]
    InvalidPath {
        /// The path given.
        path: PathBuf,
    },
    /// The path exists but is not a regular file (a directory, a device, a pipe).
    #[error("key file {} is not a regular file", .path.display())]
    NotAFile {
        /// The key file.
        path: PathBuf,
    },
    /// The file may be read or written by users other than its owner.
    #[error(
        "key file {} is readable by other users (mode {:04o}); run: chmod 600 {}",
        .path.display(), .mode, shell_word(.path)
    )]
    PermissionsTooOpen {
        /// The key file.
        path: PathBuf,
        /// Its permission bits (`st_mode & 0o7777`).
        mode: u32,
    },
    /// The target exists and overwriting was not asked for; it is unchanged.
    #[error("key file {} already exists; refusing to overwrite", .path.display())]
    Exists {
        /// The key file.
        path: PathBuf,
    },
    /// The file's contents are not a valid key file.
    #[error("key file {} {}", .path.display(), .error.detail())]
    Format {
        /// The key file.
        path: PathBuf,
        /// What is wrong with the contents.
        error: KeyFormatError,
    },
    /// The key file is in place but its directory entry could not be made durable.
    #[error(
        "key file {} was written but directory {} could not be synced: {error}",
        .path.display(), .dir.display()
    )]
    SyncDirectory {
        /// The key file.
        path: PathBuf,
        /// Its directory.
        dir: PathBuf,
        /// The I/O error.
        error: io::Error,
    },
    /// No key could be made for a new key file: the operating system gave no randomness.
    #[error("cannot create key file {}: {error}", .path.display())]
    NoRandomness {
        /// The key file.
        path: PathBuf,
        /// Why the OS gave none.
        error: crate::rng::RngError,
    },
    /// The key file is in place but the temporary copy of the secret could not be deleted.
    #[error(
        "key file {} was written but temporary file {} could not be removed: {error}; delete it",
        .path.display(), .temp.display()
    )]
    RemoveTemp {
        /// The key file.
        path: PathBuf,
        /// The temporary file left behind.
        temp: PathBuf,
        /// The I/O error.
        error: io::Error,
    },
}

/// The 78-byte key file holding `key` (see the module documentation for the layout).
#[must_use]
pub fn encode_key_file(key: &Keypair) -> [u8; KEY_FILE_LEN] {
    encode_secret(KeyKind::Sr25519, &Zeroizing::new(key.seed()))
}

/// The 78-byte key file holding a node's Noise static private key.
#[must_use]
pub fn encode_node_key_file(private: &[u8; 32]) -> [u8; KEY_FILE_LEN] {
    encode_secret(KeyKind::NoiseX25519, private)
}

fn encode_secret(kind: KeyKind, seed: &[u8; 32]) -> [u8; KEY_FILE_LEN] {
    let mut out = [0u8; KEY_FILE_LEN];
    out[..VERSION_AT].copy_from_slice(&MAGIC);
    out[VERSION_AT] = FORMAT_VERSION;
    out[KIND_AT] = kind.byte();
    out[SEED_AT..PUBLIC_AT].copy_from_slice(seed);
    out[PUBLIC_AT..CHECKSUM_AT].copy_from_slice(&kind.public_of(seed));
    let sum = checksum(&out[..CHECKSUM_AT]);
    out[CHECKSUM_AT..].copy_from_slice(&sum);
    out
}

/// Reads a key file's bytes, checking length, magic, version, kind, checksum and public key.
pub fn decode_key_file(bytes: &[u8]) -> Result<Keypair, KeyFormatError> {
    let mut seed = decode_secret(bytes, KeyKind::Sr25519)?;
    let key = Keypair::from_seed(&seed);
    seed.zeroize();
    Ok(key)
}

/// Whether two byte strings are equal, in time that depends only on their lengths.
fn ct_equal(a: &[u8], b: &[u8]) -> bool {
    bool::from(a.ct_eq(b))
}

/// Reads a node key file's bytes; returns the Noise static private key.
pub fn decode_node_key_file(bytes: &[u8]) -> Result<[u8; 32], KeyFormatError> {
    decode_secret(bytes, KeyKind::NoiseX25519)
}

fn decode_secret(bytes: &[u8], expected: KeyKind) -> Result<[u8; 32], KeyFormatError> {
    let Ok(bytes) = <&[u8; KEY_FILE_LEN]>::try_from(bytes) else {
        let found = bytes.len();
        return Err(if found < KEY_FILE_LEN {
            KeyFormatError::Truncated { found }
        } else {
            KeyFormatError::TooLong { found }
        });
    };
    if bytes[..VERSION_AT] != MAGIC {
        return Err(KeyFormatError::NotAKeyFile);
    }
    if bytes[VERSION_AT] != FORMAT_VERSION {
        return Err(KeyFormatError::UnsupportedVersion(bytes[VERSION_AT]));
    }
    let Some(found) = KeyKind::from_byte(bytes[KIND_AT]) else {
        return Err(KeyFormatError::UnsupportedKind(bytes[KIND_AT]));
    };
    if !ct_equal(&bytes[CHECKSUM_AT..], &checksum(&bytes[..CHECKSUM_AT])) {
        return Err(KeyFormatError::Corrupted);
    }
    if found != expected {
        return Err(KeyFormatError::WrongKind { expected, found });
    }
    let mut seed = [0u8; 32];
    seed.copy_from_slice(&bytes[SEED_AT..PUBLIC_AT]);
    if !ct_equal(&found.public_of(&seed), &bytes[PUBLIC_AT..CHECKSUM_AT]) {
        seed.zeroize();
        return Err(KeyFormatError::PublicKeyMismatch);
    }
    Ok(seed)
}

/// Writes `key` to `path` atomically with mode 0600; replaces an existing file only if `overwrite`.
///
/// The key is written to a temporary file in the same directory (created with `O_EXCL` and mode
/// 0600, so it is never readable by others), synced, then renamed over `path` (`overwrite`) or
/// hard-linked to `path`, which fails atomically with [`KeyFileError::Exists`] if anything is
/// already there. The directory is synced last. The directory must exist
/// ([`KeyFileError::DirectoryMissing`] otherwise). On every error the temporary file is removed
/// and an existing key file is left untouched.
pub fn write_key_file(path: &Path, key: &Keypair, overwrite: bool) -> Result<(), KeyFileError> {
    write_secret_file(path, &Zeroizing::new(encode_key_file(key)), overwrite)
}

/// Writes a node's Noise static private key like [`write_key_file`].
pub fn write_node_key_file(
    path: &Path,
    private: &[u8; 32],
    overwrite: bool,
) -> Result<(), KeyFileError> {
    write_secret_file(
        path,
        &Zeroizing::new(encode_node_key_file(private)),
        overwrite,
    )
}

fn write_secret_file(
    path: &Path,
    contents: &[u8; KEY_FILE_LEN],
    overwrite: bool,
) -> Result<(), KeyFileError> {
    let Some(name) = path.file_name() else {
        return Err(KeyFileError::InvalidPath {
            path: path.to_path_buf(),
        });
    };
    let dir = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    let write_error = |error| KeyFileError::Write {
        path: path.to_path_buf(),
        error,
    };

    let (temp, mut file) = match TempFile::create(dir, name) {
        Ok(created) => created,
        Err(error) if error.kind() == io::ErrorKind::NotFound => {
            return Err(KeyFileError::DirectoryMissing {
                path: path.to_path_buf(),
                dir: dir.to_path_buf(),
            });
        }
        Err(error) => return Err(write_error(error)),
    };
    file.write_all(contents).map_err(write_error)?;
    file.sync_all().map_err(write_error)?;
    drop(file);

    let removed = if overwrite {
        fs::rename(&temp.path, path).map_err(write_error)?;
        temp.disarm();
        Ok(())
    } else {
        match fs::hard_link(&temp.path, path) {
            Ok(()) => {}
            Err(error) if error.kind() == io::ErrorKind::AlreadyExists => {
                return Err(KeyFileError::Exists {
                    path: path.to_path_buf(),
                });
            }
            Err(error) => return Err(write_error(error)),
        }
        temp.remove()
    };
    // One directory sync makes both the new entry and the temporary file's removal durable.
    sync_dir(dir).map_err(|error| KeyFileError::SyncDirectory {
        path: path.to_path_buf(),
        dir: dir.to_path_buf(),
        error,
    })?;
    removed.map_err(|(temp, error)| KeyFileError::RemoveTemp {
        path: path.to_path_buf(),
        temp,
        error,
    })
}

/// Reads and checks the key file at `path`, refusing on Unix a file open to group or others.
pub fn read_key_file(path: &Path) -> Result<Keypair, KeyFileError> {
    let mut seed = read_secret_file(path, KeyKind::Sr25519)?;
    let key = Keypair::from_seed(&seed);
    seed.zeroize();
    Ok(key)
}

/// Reads a node key file like [`read_key_file`]; returns the Noise static private key.
pub fn read_node_key_file(path: &Path) -> Result<[u8; 32], KeyFileError> {
    read_secret_file(path, KeyKind::NoiseX25519)
}

fn read_secret_file(path: &Path, kind: KeyKind) -> Result<[u8; 32], KeyFileError> {
    let read_error = |error| KeyFileError::Read {
        path: path.to_path_buf(),
        error,
    };
    let not_a_file = || KeyFileError::NotAFile {
        path: path.to_path_buf(),
    };

    // Look before opening, so that a named pipe is refused rather than blocking `open`.
    if !fs::metadata(path).map_err(read_error)?.is_file() {
        return Err(not_a_file());
    }
    let file = File::open(path).map_err(read_error)?;
    // Check the file actually opened, which may differ from the one looked at above.
    let meta = file.metadata().map_err(read_error)?;
    if !meta.is_file() {
        return Err(not_a_file());
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = meta.permissions().mode() & 0o7777;
        if mode & GROUP_OTHER_BITS != 0 {
            return Err(KeyFileError::PermissionsTooOpen {
                path: path.to_path_buf(),
                mode,
            });
        }
    }

    // Never reallocated (at most READ_LIMIT bytes are read), so wiping it wipes every copy.
    let mut bytes = Zeroizing::new(Vec::with_capacity(KEY_FILE_LEN + 1));
    file.take(READ_LIMIT)
        .read_to_end(&mut bytes)
        .map_err(read_error)?;
    decode_secret(&bytes, kind).map_err(|error| {
        let error = match error {
            // Only READ_LIMIT bytes were read; report the file's real size.
            KeyFormatError::TooLong { found } => KeyFormatError::TooLong {
                found: found.max(usize::try_from(meta.len()).unwrap_or(usize::MAX)),
            },
            other => other,
        };
        KeyFileError::Format {
            path: path.to_path_buf(),
            error,
        }
    })
}

/// The first [`CHECKSUM_LEN`] bytes of the key file hash of `body`.
fn checksum(body: &[u8]) -> [u8; CHECKSUM_LEN] {
    let mut out = [0u8; CHECKSUM_LEN];
    out.copy_from_slice(&hash(tags::KEY_FILE, body).as_bytes()[..CHECKSUM_LEN]);
    out
}

/// `path` as one shell word: unchanged if it is plainly safe, otherwise single-quoted.
fn shell_word(path: &Path) -> String {
    let text = path.to_string_lossy();
    let plain = |c: char| c.is_ascii_alphanumeric() || "/._-+=:,@%".contains(c);
    if !text.is_empty() && text.chars().all(plain) {
        text.into_owned()
    } else {
        format!("'{}'", text.replace('\'', r"'\''"))
    }
}

#[cfg(unix)]
fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

#[cfg(not(unix))]
fn sync_dir(_dir: &Path) -> io::Result<()> {
    Ok(())
}

/// A temporary file holding a copy of the secret, deleted on drop unless disarmed.
struct TempFile {
    path: PathBuf,
    armed: bool,
}

impl TempFile {
    /// Creates `.NAME.PID.N.tmp` in `dir`, exclusively and with mode 0600, trying fresh names.
    fn create(dir: &Path, name: &OsStr) -> io::Result<(Self, File)> {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let mut last_error = None;
        for _ in 0..TEMP_ATTEMPTS {
            let n = COUNTER.fetch_add(1, Ordering::Relaxed);
            let mut temp_name = OsString::from(".");
            temp_name.push(name);
            temp_name.push(format!(".{}.{n}.tmp", std::process::id()));
            let path = dir.join(temp_name);

            let mut options = OpenOptions::new();
            options.write(true).create_new(true);
            #[cfg(unix)]
            {
                use std::os::unix::fs::OpenOptionsExt;
                options.mode(0o600);
            }
            match options.open(&path) {
                Ok(file) => {
                    let temp = Self { path, armed: true };
                    // The umask may have cleared owner bits; make the mode exactly 0600.
                    #[cfg(unix)]
                    {
                        use std::os::unix::fs::PermissionsExt;
                        file.set_permissions(fs::Permissions::from_mode(0o600))?;
                    }
                    return Ok((temp, file));
                }
                Err(error) if error.kind() == io::ErrorKind::AlreadyExists => {
                    last_error = Some(error);
                }
                Err(error) => return Err(error),
            }
        }
        Err(last_error.unwrap_or_else(|| io::Error::other("no free temporary file name")))
    }

    /// The file has been renamed into place: nothing to delete.
    fn disarm(mut self) {
        self.armed = false;
    }

    /// Deletes the file now, returning its path with the error if that fails.
    fn remove(mut self) -> Result<(), (PathBuf, io::Error)> {
        match fs::remove_file(&self.path) {
            Ok(()) => {
                self.armed = false;
                Ok(())
            }
            // Stay armed: dropping tries once more.
            Err(error) => Err((self.path.clone(), error)),
        }
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if self.armed {
            // Best effort on an error path; the error being returned is the one that matters.
            let _ = fs::remove_file(&self.path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bytes::to_hex;
    use proptest::prelude::*;

    fn key() -> Keypair {
        Keypair::from_seed(&[7; 32])
    }

    /// `bytes` with the checksum recomputed, so that a later check is the one that fails.
    fn resealed(mut bytes: [u8; KEY_FILE_LEN]) -> [u8; KEY_FILE_LEN] {
        let sum = checksum(&bytes[..CHECKSUM_AT]);
        bytes[CHECKSUM_AT..].copy_from_slice(&sum);
        bytes
    }

    /// The names in `dir`, sorted.
    fn entries(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    /// Writes raw bytes with owner-only permissions.
    fn write_raw(path: &Path, bytes: &[u8]) {
        fs::write(path, bytes).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            fs::set_permissions(path, fs::Permissions::from_mode(0o600)).unwrap();
        }
    }

    #[test]
    fn encoding_follows_the_documented_layout() {
        let k = key();
        let bytes = encode_key_file(&k);
        assert_eq!(bytes.len(), 78);
        assert_eq!(&bytes[0..4], b"STKY");
        assert_eq!(bytes[4], 1);
        assert_eq!(bytes[5], 1);
        assert_eq!(&bytes[6..38], &k.seed());
        assert_eq!(&bytes[38..70], k.public().as_bytes());
        assert_eq!(
            &bytes[70..78],
            &hash(tags::KEY_FILE, &bytes[..70]).as_bytes()[..8]
        );
    }

    #[test]
    fn decode_round_trips() {
        let k = Keypair::generate();
        let back = decode_key_file(&encode_key_file(&k)).unwrap();
        assert_eq!(back.public(), k.public());
        assert_eq!(back.seed(), k.seed());
    }

    #[test]
    fn every_truncation_is_an_error() {
        let bytes = encode_key_file(&key());
        for len in 0..KEY_FILE_LEN {
            assert_eq!(
                decode_key_file(&bytes[..len]).unwrap_err(),
                KeyFormatError::Truncated { found: len }
            );
        }
    }

    #[test]
    fn trailing_bytes_are_an_error() {
        for extra in [0u8, 0xff] {
            let mut bytes = encode_key_file(&key()).to_vec();
            bytes.push(extra);
            assert_eq!(
                decode_key_file(&bytes).unwrap_err(),
                KeyFormatError::TooLong { found: 79 }
            );
        }
    }

    #[test]
    fn every_bit_flip_is_detected() {
        let bytes = encode_key_file(&key());
        for i in 0..KEY_FILE_LEN {
            for bit in 0..8 {
                let mut bad = bytes;
                bad[i] ^= 1 << bit;
                let expected = match i {
                    0..4 => KeyFormatError::NotAKeyFile,
                    4 => KeyFormatError::UnsupportedVersion(bad[4]),
                    5 => KeyFormatError::UnsupportedKind(bad[5]),
                    _ => KeyFormatError::Corrupted,
                };
                assert_eq!(
                    decode_key_file(&bad).unwrap_err(),
                    expected,
                    "byte {i} bit {bit}"
                );
            }
        }
    }

    #[test]
    fn wrong_magic_version_or_kind_is_named() {
        let good = encode_key_file(&key());
        let mut bad = good;
        bad[..4].copy_from_slice(b"STKX");
        assert_eq!(
            decode_key_file(&resealed(bad)).unwrap_err(),
            KeyFormatError::NotAKeyFile
        );
        for version in [0, 2, 255] {
            let mut bad = good;
            bad[4] = version;
            assert_eq!(
                decode_key_file(&resealed(bad)).unwrap_err(),
                KeyFormatError::UnsupportedVersion(version)
            );
        }
        for kind in [0, 3, 255] {
            let mut bad = good;
            bad[5] = kind;
            assert_eq!(
                decode_key_file(&resealed(bad)).unwrap_err(),
                KeyFormatError::UnsupportedKind(kind)
            );
        }
        // A node key where a signing key is expected, and the other way round.
        let node = encode_node_key_file(&[7; 32]);
        assert_eq!(
            decode_key_file(&node).unwrap_err(),
            KeyFormatError::WrongKind {
                expected: KeyKind::Sr25519,
                found: KeyKind::NoiseX25519
            }
        );
        assert_eq!(
            decode_node_key_file(&good).unwrap_err(),
            KeyFormatError::WrongKind {
                expected: KeyKind::NoiseX25519,
                found: KeyKind::Sr25519
            }
        );
    }

    #[test]
    fn node_keys_round_trip_and_match_rfc_7748() {
        // RFC 7748 section 6.1: Alice's private key and public key.
        let private: [u8; 32] = crate::bytes::decode_hex(
            "77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a",
        )
        .unwrap();
        assert_eq!(
            crate::bytes::to_hex(&x25519_public(&private)),
            "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a"
        );
        // Section 6.1 again: Bob's key pair and the secret both sides share.
        let bob: [u8; 32] = crate::bytes::decode_hex(
            "5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb",
        )
        .unwrap();
        let shared = "4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742";
        assert_eq!(
            crate::bytes::to_hex(&x25519(&private, &x25519_public(&bob))),
            shared
        );
        assert_eq!(
            crate::bytes::to_hex(&x25519(&bob, &x25519_public(&private))),
            shared
        );
        let bytes = encode_node_key_file(&private);
        assert_eq!(bytes[5], KIND_NOISE_X25519);
        assert_eq!(decode_node_key_file(&bytes), Ok(private));
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("node.key");
        write_node_key_file(&path, &private, false).unwrap();
        assert_eq!(read_node_key_file(&path).unwrap(), private);
        assert!(matches!(
            read_key_file(&path),
            Err(KeyFileError::Format { .. })
        ));
        let mut flipped = bytes;
        flipped[10] ^= 1;
        assert_eq!(
            decode_node_key_file(&flipped),
            Err(KeyFormatError::Corrupted)
        );
    }

    #[test]
    fn public_key_not_derived_from_the_seed_is_refused() {
        let mut bad = encode_key_file(&key());
        bad[PUBLIC_AT..CHECKSUM_AT].copy_from_slice(Keypair::generate().public().as_bytes());
        assert_eq!(
            decode_key_file(&resealed(bad)).unwrap_err(),
            KeyFormatError::PublicKeyMismatch
        );
    }

    #[test]
    fn messages_are_one_readable_line() {
        let path = PathBuf::from("/x/y");
        let format = |error| {
            KeyFileError::Format {
                path: path.clone(),
                error,
            }
            .to_string()
        };
        assert_eq!(
            format(KeyFormatError::Truncated { found: 40 }),
            "key file /x/y is truncated (40 of 78 bytes)"
        );
        assert_eq!(
            format(KeyFormatError::Corrupted),
            "key file /x/y is corrupted (checksum mismatch)"
        );
        assert_eq!(
            KeyFileError::PermissionsTooOpen {
                path: path.clone(),
                mode: 0o644
            }
            .to_string(),
            "key file /x/y is readable by other users (mode 0644); run: chmod 600 /x/y"
        );
        assert_eq!(
            KeyFileError::Exists { path: path.clone() }.to_string(),
            "key file /x/y already exists; refusing to overwrite"
        );
        let denied = io::Error::from(io::ErrorKind::PermissionDenied);
        assert_eq!(
            KeyFileError::Read {
                path: path.clone(),
                error: denied
            }
            .to_string(),
            format!(
                "cannot read key file /x/y: {}",
                io::Error::from(io::ErrorKind::PermissionDenied)
            )
        );
        assert_eq!(
            KeyFormatError::TooLong { found: 100 }.to_string(),
            "key file is too long (100 bytes, expected 78)"
        );
        let all = [
            KeyFormatError::Truncated { found: 0 },
            KeyFormatError::TooLong { found: 79 },
            KeyFormatError::NotAKeyFile,
            KeyFormatError::UnsupportedVersion(9),
            KeyFormatError::UnsupportedKind(9),
            KeyFormatError::Corrupted,
            KeyFormatError::PublicKeyMismatch,
        ];
        for error in all {
            let line = format(error);
            assert!(
                line.starts_with("key file /x/y ") && !line.contains('\n'),
                "{line}"
            );
            assert_eq!(line.replace("/x/y ", ""), error.to_string());
        }
    }

    #[test]
    fn chmod_hint_quotes_paths_a_shell_would_split() {
        assert_eq!(
            shell_word(Path::new("/home/a/node.key")),
            "/home/a/node.key"
        );
        assert_eq!(
            shell_word(Path::new("/my keys/it's")),
            r"'/my keys/it'\''s'"
        );
        let error = KeyFileError::PermissionsTooOpen {
            path: PathBuf::from("/a b"),
            mode: 0o640,
        };
        assert!(
            error
                .to_string()
                .ends_with("(mode 0640); run: chmod 600 '/a b'"),
            "{error}"
        );
    }

    #[test]
    fn constant_time_comparison_is_equality() {
        assert!(ct_equal(b"", b""));
        assert!(ct_equal(&[1, 2, 3], &[1, 2, 3]));
        assert!(!ct_equal(&[1, 2, 3], &[1, 2, 4]));
        assert!(!ct_equal(&[1, 2, 3], &[1, 2]));
    }

    #[test]
    fn debug_never_shows_the_secret() {
        let k = Keypair::generate();
        let seed = to_hex(&k.seed());
        let back = decode_key_file(&encode_key_file(&k)).unwrap();
        assert!(!format!("{back:?}").contains(&seed));
        let error = KeyFileError::Format {
            path: PathBuf::from("/k"),
            error: KeyFormatError::Corrupted,
        };
        assert!(!format!("{error:?}").contains(&seed));
    }

    #[test]
    fn write_then_read_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("node.key");
        let k = Keypair::generate();
        write_key_file(&path, &k, false).unwrap();
        let back = read_key_file(&path).unwrap();
        assert_eq!(back.public(), k.public());
        assert_eq!(back.seed(), k.seed());
        assert_eq!(fs::read(&path).unwrap(), encode_key_file(&k));
        assert_eq!(
            entries(dir.path()),
            ["node.key"],
            "no temporary file left behind"
        );
    }

    #[cfg(unix)]
    #[test]
    fn written_file_mode_is_exactly_0600() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("node.key");
        write_key_file(&path, &key(), false).unwrap();
        assert_eq!(
            fs::metadata(&path).unwrap().permissions().mode() & 0o7777,
            0o600
        );
        write_key_file(&path, &Keypair::generate(), true).unwrap();
        assert_eq!(
            fs::metadata(&path).unwrap().permissions().mode() & 0o7777,
            0o600
        );
    }

    #[test]
    fn refusing_to_overwrite_keeps_the_original() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("node.key");
        let original = key();
        write_key_file(&path, &original, false).unwrap();
        let before = fs::read(&path).unwrap();

        let err = write_key_file(&path, &Keypair::generate(), false).unwrap_err();
        assert!(
            matches!(&err, KeyFileError::Exists { path: p } if *p == path),
            "{err}"
        );
        assert_eq!(fs::read(&path).unwrap(), before);
        assert_eq!(read_key_file(&path).unwrap().seed(), original.seed());
        assert_eq!(
            entries(dir.path()),
            ["node.key"],
            "no temporary file left behind"
        );
    }

    #[test]
    fn refusing_to_overwrite_covers_any_existing_entry() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notes.txt");
        fs::write(&path, b"not a key").unwrap();
        let err = write_key_file(&path, &key(), false).unwrap_err();
        assert!(matches!(err, KeyFileError::Exists { .. }), "{err}");
        assert_eq!(fs::read(&path).unwrap(), b"not a key");
        assert_eq!(entries(dir.path()), ["notes.txt"]);
    }

    #[test]
    fn overwrite_replaces() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("node.key");
        write_key_file(&path, &key(), false).unwrap();
        let new = Keypair::generate();
        write_key_file(&path, &new, true).unwrap();
        assert_eq!(read_key_file(&path).unwrap().seed(), new.seed());
        assert_eq!(
            entries(dir.path()),
            ["node.key"],
            "no temporary file left behind"
        );
    }

    #[test]
    fn missing_directory_is_a_clear_error_and_is_not_created() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nope");
        let path = missing.join("node.key");
        let err = write_key_file(&path, &key(), false).unwrap_err();
        let KeyFileError::DirectoryMissing { path: p, dir: d } = &err else {
            panic!("{err}")
        };
        assert_eq!((p, d), (&path, &missing));
        assert!(err.to_string().contains("does not exist"), "{err}");
        assert!(!missing.exists());
    }

    #[test]
    fn paths_without_a_file_name_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        for path in [PathBuf::from("/"), dir.path().join("..")] {
            let err = write_key_file(&path, &key(), true).unwrap_err();
            assert!(matches!(err, KeyFileError::InvalidPath { .. }), "{err}");
        }
        assert!(entries(dir.path()).is_empty());
    }

    #[cfg(unix)]
    #[test]
    fn permissions_open_to_others_are_refused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("node.key");
        write_key_file(&path, &key(), false).unwrap();
        for mode in [0o644, 0o640, 0o604, 0o660, 0o610, 0o601, 0o700 | 0o007] {
            fs::set_permissions(&path, fs::Permissions::from_mode(mode)).unwrap();
            let err = read_key_file(&path).unwrap_err();
            let KeyFileError::PermissionsTooOpen { path: p, mode: m } = &err else {
                panic!("{err}")
            };
            assert_eq!((p, *m), (&path, mode));
            assert!(
                err.to_string()
                    .contains(&format!("chmod 600 {}", path.display())),
                "{err}"
            );
        }
        for mode in [0o400, 0o600, 0o700] {
            fs::set_permissions(&path, fs::Permissions::from_mode(mode)).unwrap();
            assert_eq!(
                read_key_file(&path).unwrap().seed(),
                key().seed(),
                "{mode:o}"
            );
        }
    }

    #[test]
    fn truncated_files_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("node.key");
        let bytes = encode_key_file(&key());
        for len in 0..KEY_FILE_LEN {
            write_raw(&path, &bytes[..len]);
            let err = read_key_file(&path).unwrap_err();
            let KeyFileError::Format { error, .. } = err else {
                panic!("{len}: {err}")
            };
            assert_eq!(error, KeyFormatError::Truncated { found: len });
        }
    }

    #[test]
    fn oversized_files_report_their_real_size() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("node.key");
        let mut bytes = encode_key_file(&key()).to_vec();
        bytes.push(0);
        write_raw(&path, &bytes);
        let err = read_key_file(&path).unwrap_err();
        assert!(
            matches!(
                err,
                KeyFileError::Format {
                    error: KeyFormatError::TooLong { found: 79 },
                    ..
                }
            ),
            "{err}"
        );
        write_raw(&path, &vec![0u8; 1 << 20]);
        let err = read_key_file(&path).unwrap_err();
        let KeyFileError::Format { error, .. } = err else {
            panic!("{err}")
        };
        assert_eq!(error, KeyFormatError::TooLong { found: 1 << 20 });
    }

    #[test]
    fn corrupted_file_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("node.key");
        let mut bytes = encode_key_file(&key());
        bytes[20] ^= 0x10;
        write_raw(&path, &bytes);
        let err = read_key_file(&path).unwrap_err();
        assert!(
            matches!(
                err,
                KeyFileError::Format {
                    error: KeyFormatError::Corrupted,
                    ..
                }
            ),
            "{err}"
        );
        assert_eq!(
            err.to_string(),
            format!(
                "key file {} is corrupted (checksum mismatch)",
                path.display()
            )
        );
    }

    #[test]
    fn missing_file_and_directory_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        let err = read_key_file(&dir.path().join("absent.key")).unwrap_err();
        let KeyFileError::Read { error, .. } = &err else {
            panic!("{err}")
        };
        assert_eq!(error.kind(), io::ErrorKind::NotFound);
        assert!(
            err.to_string().starts_with("cannot read key file "),
            "{err}"
        );
        let err = read_key_file(dir.path()).unwrap_err();
        assert!(matches!(err, KeyFileError::NotAFile { .. }), "{err}");
    }

    proptest! {
        #[test]
        fn random_bytes_never_decode(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            prop_assert!(decode_key_file(&bytes).is_err());
        }

        #[test]
        fn any_seed_round_trips(seed in any::<[u8; 32]>()) {
            let k = Keypair::from_seed(&seed);
            let back = decode_key_file(&encode_key_file(&k)).unwrap();
            prop_assert_eq!(back.seed(), seed);
            prop_assert_eq!(back.public(), k.public());
        }
    }
}
