//! Writes a block file of `N` dev-network blocks mined by a solo miner over an in-memory plot:
//! `cargo run --release -p spacetime-actors --example dev_blocks -- OUT.bin N`. Load it into a
//! data directory with `spacetime chain import --dev --data-dir DIR OUT.bin` (figures for an
//! idle node after N blocks, import timing).

use spacetime::chain::{Chain, SoloMiner};
use spacetime::{Genesis, Keypair};
use spacetime_actors::chain::blockfile::BlockFileWriter;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let out = args.next().ok_or("usage: dev_blocks OUT.bin N")?;
    let n: u64 = args.next().ok_or("usage: dev_blocks OUT.bin N")?.parse()?;
    let genesis = Genesis::builtin("dev")?;
    let dir = tempfile::tempdir()?;
    let mut chain = Chain::open(&dir.path().join("chain.redb"), genesis.clone())?;
    let miner = SoloMiner::new(&genesis.config.plot, Keypair::generate(), 1, 64);
    let mut w = BlockFileWriter::new(std::io::BufWriter::new(std::fs::File::create(&out)?))?;
    for _ in 0..n {
        let block = miner.mine_next(&chain, Vec::new())?;
        chain.import(block.clone(), u64::MAX / 2)?;
        w.write(&block)?;
    }
    w.finish()?;
    println!("wrote {n} blocks to {out}, tip {}", chain.tip().hash);
    Ok(())
}
