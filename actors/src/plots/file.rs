//! Opening a plot file: the header is read and checked before anything else is trusted.

use std::fs::File;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use spacetime::Hash;
use spacetime::plot::{HEADER_FIXED_BYTES, HeaderError, PlotHeader, PlotLayout, PlotShape};

use super::sys;

/// The file extension of finished plots.
pub const PLOT_EXTENSION: &str = "plot";
/// The file extension of plots being written.
pub const TEMP_EXTENSION: &str = "tmp";

/// Why a plot file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum PlotFileError {
    /// Opening or reading failed.
    #[error("{}: {error}", .path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        error: std::io::Error,
    },
    /// The header or the length is wrong: foreign, truncated, damaged or unfinished file.
    #[error("{}: {error}", .path.display())]
    Header {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        error: HeaderError,
    },
    /// The plot's shape is not the network's.
    #[error("{}: plot parameters (G=2^{}, W={}, B={}) are not this network's", .path.display(), .shape.group_leaves_log2, .shape.chain_window, .shape.buckets)]
    WrongShape {
        /// The file.
        path: PathBuf,
        /// The plot's shape.
        shape: PlotShape,
    },
}

/// An open, checked plot file. Reads use positioned I/O, so one handle serves many threads.
#[derive(Debug)]
pub struct PlotFile {
    path: PathBuf,
    file: File,
    header: PlotHeader,
    plot_id: Hash,
}

/// Reads `buf.len()` bytes at `offset`, or fewer at the end of the file.
pub(crate) fn read_full_at(file: &File, buf: &mut [u8], offset: u64) -> std::io::Result<usize> {
    let mut done = 0;
    while done < buf.len() {
        match file.read_at(&mut buf[done..], offset + done as u64) {
            Ok(0) => break,
            Ok(n) => done += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(done)
}

/// Reads and checks the header of an open file (complete or not).
pub(crate) fn read_header(file: &File, path: &Path) -> Result<PlotHeader, PlotFileError> {
    let io = |error| PlotFileError::Io {
        path: path.to_owned(),
        error,
    };
    let hdr = |error| PlotFileError::Header {
        path: path.to_owned(),
        error,
    };
    let mut prefix = vec![0u8; HEADER_FIXED_BYTES];
    let n = read_full_at(file, &mut prefix, 0).map_err(io)?;
    prefix.truncate(n);
    let len = PlotHeader::encoded_len(&prefix).map_err(hdr)?;
    let mut bytes = vec![0u8; len];
    let n = read_full_at(file, &mut bytes, 0).map_err(io)?;
    bytes.truncate(n);
    PlotHeader::decode(&bytes).map_err(hdr)
}

/// Reads the header of any plot file (finished or not) and the file's length, without
/// requiring completeness or the right length (for `plot inspect`).
pub fn read_header_at(path: &Path) -> Result<(PlotHeader, u64), PlotFileError> {
    let file = File::open(path).map_err(|error| PlotFileError::Io {
        path: path.to_owned(),
        error,
    })?;
    let len = file
        .metadata()
        .map_err(|error| PlotFileError::Io {
            path: path.to_owned(),
            error,
        })?
        .len();
    Ok((read_header(&file, path)?, len))
}

impl PlotFile {
    /// Opens a finished plot: checks magic, version, header checksum, plot id, completeness
    /// and the file length. With `direct`, reads bypass the page cache (`O_DIRECT`).
    pub fn open(path: &Path, direct: bool) -> Result<Self, PlotFileError> {
        let io = |error| PlotFileError::Io {
            path: path.to_owned(),
            error,
        };
        let hdr = |error| PlotFileError::Header {
            path: path.to_owned(),
            error,
        };
        // Opening a FIFO (or a device) named `*.plot` would block or read forever.
        if !std::fs::metadata(path).map_err(io)?.is_file() {
            return Err(io(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "not a regular file",
            )));
        }
        let mut opts = std::fs::OpenOptions::new();
        opts.read(true);
        if direct {
            opts.custom_flags(sys::o_direct_flag());
        }
        let file = opts.open(path).map_err(io)?;
        // O_DIRECT needs aligned reads: read the header through a plain handle.
        let header = if direct {
            let plain = File::open(path).map_err(io)?;
            read_header(&plain, path)?
        } else {
            read_header(&file, path)?
        };
        header.check_complete().map_err(hdr)?;
        let len = file.metadata().map_err(io)?.len();
        header.check_file_len(len).map_err(hdr)?;
        let plot_id = header.plot_id();
        Ok(Self {
            path: path.to_owned(),
            file,
            header,
            plot_id,
        })
    }

    /// Opens a plot and checks that its shape is `shape`.
    pub fn open_for(path: &Path, shape: &PlotShape, direct: bool) -> Result<Self, PlotFileError> {
        let plot = Self::open(path, direct)?;
        if plot.layout().shape != *shape {
            return Err(PlotFileError::WrongShape {
                path: path.to_owned(),
                shape: plot.layout().shape,
            });
        }
        Ok(plot)
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The checked header.
    pub fn header(&self) -> &PlotHeader {
        &self.header
    }

    /// Where the leaves are.
    pub fn layout(&self) -> &PlotLayout {
        &self.header.layout
    }

    /// The plot id.
    pub fn plot_id(&self) -> Hash {
        self.plot_id
    }

    /// The file handle (positioned reads only).
    pub fn file(&self) -> &File {
        &self.file
    }

    /// Size of the file in bytes.
    pub fn size(&self) -> u64 {
        self.layout().file_len()
    }

    /// Reads `buf.len()` bytes at `offset`; an early end of file is an error.
    pub fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> std::io::Result<()> {
        let n = read_full_at(&self.file, buf, offset)?;
        if n < buf.len() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "plot file ends early",
            ));
        }
        Ok(())
    }
}

/// True when `path` names a finished plot (`*.plot`).
pub fn is_plot_path(path: &Path) -> bool {
    path.extension().is_some_and(|e| e == PLOT_EXTENSION)
}
