//! Plot file headers: decoding never panics, an accepted header re-encodes to exactly the bytes
//! it was read from, and its layout arithmetic stays in range. Half the inputs get their plot id
//! and checksum fixed up first, so the fuzzer reaches the field checks behind them.
#![no_main]

use libfuzzer_sys::fuzz_target;
use spacetime::hash::{hash, tags};
use spacetime::plot::{HEADER_FIXED_BYTES, PlotHeader, PlotShape, plot_id};
use spacetime::{Hash, PublicKey};

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// Writes the plot id and header checksum the header's own fields imply.
fn fix_up(bytes: &mut [u8]) {
    let Ok(len) = PlotHeader::encoded_len(bytes) else {
        return;
    };
    if bytes.len() < len || len < HEADER_FIXED_BYTES + 32 {
        return;
    }
    let shape = PlotShape {
        group_leaves_log2: bytes[16],
        chain_window: u32_at(bytes, 20),
        buckets: u32_at(bytes, 24),
    };
    let mut miner = [0u8; 32];
    miner.copy_from_slice(&bytes[32..64]);
    let mut seed = [0u8; 32];
    seed.copy_from_slice(&bytes[64..96]);
    let id = plot_id(&shape, &PublicKey(miner), &Hash(seed));
    bytes[96..128].copy_from_slice(id.as_bytes());
    let sum = hash(tags::PLOT_HEADER, &bytes[..len - 32]);
    bytes[len - 32..len].copy_from_slice(sum.as_bytes());
}

fuzz_target!(|data: &[u8]| {
    let Some((&flag, rest)) = data.split_first() else {
        return;
    };
    let mut bytes = rest.to_vec();
    if flag & 1 == 1 {
        fix_up(&mut bytes);
    }
    let Ok(header) = PlotHeader::decode(&bytes) else {
        return;
    };
    let len = PlotHeader::encoded_len(&bytes).expect("a decoded header has a length");
    assert_eq!(
        header.encode(),
        &bytes[..len],
        "decode then encode changed the header"
    );
    let layout = header.layout;
    assert!(layout.validate().is_ok());
    assert_eq!(header.segments.len() as u64, layout.segment_count());
    assert_eq!(layout.header_len(), len as u64);
    assert!(layout.data_offset() >= layout.header_len());
    assert!(
        layout
            .data_offset()
            .is_multiple_of(spacetime::plot::DATA_ALIGN)
    );
    assert!(header.check_file_len(layout.file_len()).is_ok());
    assert!(header.check_file_len(layout.file_len() - 1).is_err());
    let _ = header.check_complete();
    // Segments tile the data: in order, inside the file.
    let mut end = layout.data_offset();
    for index in 0..layout.segment_count().min(64) {
        let segment = layout.segment(index);
        assert_eq!(segment.index, index);
        assert_eq!(
            segment.offset, end,
            "segment {index} does not follow the previous one"
        );
        end = segment.offset + segment.len;
        assert!(end <= layout.file_len());
    }
    let g = layout.shape.group_leaves();
    let b = layout.shape.buckets;
    for (k, group) in [0, layout.groups / 2, layout.groups - 1]
        .into_iter()
        .enumerate()
    {
        let scoop = ((g - 1) >> k) as u32;
        let offset = layout.leaf_offset(group, scoop);
        assert!(offset >= layout.data_offset());
        assert!(offset + 32 <= layout.file_len());
        if layout.chunks_per_bucket() <= 64 {
            let bucket = (group % u64::from(b)) as u32;
            let runs = layout.region(scoop, bucket);
            assert!(
                runs.iter()
                    .any(|r| r.offset <= offset && offset < r.offset + r.len)
            );
        }
    }
});
