//! Reading small text files named by users (genesis and node configurations) with a size bound.

use std::io::Read;
use std::path::Path;

/// Reads a UTF-8 text file of at most `limit` bytes, reading no more than `limit + 1` bytes
/// of a larger file; a larger file is an `InvalidData` error naming the limit.
pub fn read_text_limited(path: &Path, limit: usize) -> std::io::Result<String> {
    let file = std::fs::File::open(path)?;
    let mut text = String::new();
    file.take(limit as u64 + 1).read_to_string(&mut text)?;
    if text.len() > limit {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("file is larger than {limit} bytes"),
        ));
    }
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounded_read() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("t.toml");
        std::fs::write(&p, "abcd").unwrap();
        assert_eq!(read_text_limited(&p, 4).unwrap(), "abcd");
        let e = read_text_limited(&p, 3).unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::InvalidData);
        assert!(e.to_string().contains("larger than 3 bytes"));
        let missing = read_text_limited(&dir.path().join("none"), 3).unwrap_err();
        assert_eq!(missing.kind(), std::io::ErrorKind::NotFound);
    }
}
