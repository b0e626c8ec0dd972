//! Block files: a sequence of blocks for `spacetime chain import` and `export`.
//!
//! Layout: the 8-byte magic `STBLOCKS`, then per block its canonical encoding preceded by its
//! length as a u32 little-endian. A reader refuses a length above the block size limit before
//! reading the block, so a damaged file costs at most one block of memory.

use std::io::{self, Read, Write};

use spacetime::limits::MAX_BLOCK_BYTES;
use spacetime::{Block, DecodeError, decode, encode};

/// The magic at the start of a block file.
pub const BLOCK_FILE_MAGIC: &[u8; 8] = b"STBLOCKS";

/// Why a block file could not be read.
#[derive(Debug, thiserror::Error)]
pub enum BlockFileError {
    /// Reading failed.
    #[error("block file: {0}")]
    Io(#[from] io::Error),
    /// The file does not start with the magic.
    #[error("not a block file (bad magic)")]
    Magic,
    /// A length prefix exceeds the block size limit.
    #[error("block {index} claims {len} bytes, more than the limit of {max}")]
    TooLong {
        /// Position of the block in the file.
        index: u64,
        /// The claimed length.
        len: u64,
        /// [`MAX_BLOCK_BYTES`].
        max: usize,
    },
    /// The file ends inside a block.
    #[error("block file ends inside block {index}")]
    Truncated {
        /// Position of the block in the file.
        index: u64,
    },
    /// A block does not decode.
    #[error("block {index} does not decode: {error}")]
    Decode {
        /// Position of the block in the file.
        index: u64,
        /// The decoding error.
        error: DecodeError,
    },
}

/// Writes blocks to a block file.
#[derive(Debug)]
pub struct BlockFileWriter<W: Write> {
    out: W,
}

impl<W: Write> BlockFileWriter<W> {
    /// Starts a block file on `out`.
    pub fn new(mut out: W) -> io::Result<Self> {
        out.write_all(BLOCK_FILE_MAGIC)?;
        Ok(Self { out })
    }

    /// Appends a block.
    pub fn write(&mut self, block: &Block) -> io::Result<()> {
        let bytes = encode(block);
        // Encoded blocks are below MAX_BLOCK_BYTES, far below u32::MAX.
        self.out.write_all(&(bytes.len() as u32).to_le_bytes())?;
        self.out.write_all(&bytes)
    }

    /// Flushes and returns the writer.
    pub fn finish(mut self) -> io::Result<W> {
        self.out.flush()?;
        Ok(self.out)
    }
}

/// Reads blocks from a block file, one at a time.
#[derive(Debug)]
pub struct BlockFileReader<R: Read> {
    input: R,
    index: u64,
    buf: Vec<u8>,
}

impl<R: Read> BlockFileReader<R> {
    /// Checks the magic of `input`.
    pub fn new(mut input: R) -> Result<Self, BlockFileError> {
        let mut magic = [0u8; 8];
        input.read_exact(&mut magic).map_err(|e| match e.kind() {
            io::ErrorKind::UnexpectedEof => BlockFileError::Magic,
            _ => BlockFileError::Io(e),
        })?;
        if &magic != BLOCK_FILE_MAGIC {
            return Err(BlockFileError::Magic);
        }
        Ok(Self {
            input,
            index: 0,
            buf: Vec::new(),
        })
    }

    /// The next block, `None` at the end of the file.
    pub fn next_block(&mut self) -> Result<Option<Block>, BlockFileError> {
        let index = self.index;
        let mut len = [0u8; 4];
        let mut got = 0;
        while got < 4 {
            match self.input.read(&mut len[got..]) {
                Ok(0) if got == 0 => return Ok(None),
                Ok(0) => return Err(BlockFileError::Truncated { index }),
                Ok(n) => got += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e.into()),
            }
        }
        let len = u64::from(u32::from_le_bytes(len));
        if len > MAX_BLOCK_BYTES as u64 {
            return Err(BlockFileError::TooLong {
                index,
                len,
                max: MAX_BLOCK_BYTES,
            });
        }
        self.buf.resize(len as usize, 0);
        self.input
            .read_exact(&mut self.buf)
            .map_err(|e| match e.kind() {
                io::ErrorKind::UnexpectedEof => BlockFileError::Truncated { index },
                _ => BlockFileError::Io(e),
            })?;
        let block =
            decode::<Block>(&self.buf).map_err(|error| BlockFileError::Decode { index, error })?;
        self.index += 1;
        Ok(Some(block))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use spacetime::Genesis;

    #[test]
    fn round_trip_and_damage() {
        let g = Genesis::builtin("dev").unwrap();
        let mut w = BlockFileWriter::new(Vec::new()).unwrap();
        w.write(&g.block).unwrap();
        w.write(&g.block).unwrap();
        let bytes = w.finish().unwrap();
        let mut r = BlockFileReader::new(bytes.as_slice()).unwrap();
        assert_eq!(r.next_block().unwrap(), Some(g.block.clone()));
        assert_eq!(r.next_block().unwrap(), Some(g.block.clone()));
        assert!(r.next_block().unwrap().is_none());

        assert!(matches!(
            BlockFileReader::new(&b"NOTBLOCK"[..]),
            Err(BlockFileError::Magic)
        ));
        let mut r = BlockFileReader::new(&bytes[..bytes.len() - 3]).unwrap();
        r.next_block().unwrap();
        assert!(matches!(
            r.next_block(),
            Err(BlockFileError::Truncated { index: 1 })
        ));
        let mut huge = BLOCK_FILE_MAGIC.to_vec();
        huge.extend_from_slice(&u32::MAX.to_le_bytes());
        let mut r = BlockFileReader::new(huge.as_slice()).unwrap();
        assert!(matches!(
            r.next_block(),
            Err(BlockFileError::TooLong { .. })
        ));
        let mut junk = BLOCK_FILE_MAGIC.to_vec();
        junk.extend_from_slice(&4u32.to_le_bytes());
        junk.extend_from_slice(&[1, 2, 3, 4]);
        let mut r = BlockFileReader::new(junk.as_slice()).unwrap();
        assert!(matches!(r.next_block(), Err(BlockFileError::Decode { .. })));
    }
}
