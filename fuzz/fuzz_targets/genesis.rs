//! Genesis TOML: parsing never panics, the two entry points agree, and an accepted
//! configuration prints to TOML that parses back to the same configuration and network id.
#![no_main]

use libfuzzer_sys::fuzz_target;
use spacetime::{Genesis, GenesisConfig};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = core::str::from_utf8(data) else {
        return;
    };
    let config = GenesisConfig::from_toml_str(text);
    let genesis = Genesis::from_toml_str(text);
    let (config, genesis) = match (config, genesis) {
        (Ok(c), Ok(g)) => (c, g),
        (Err(a), Err(b)) => {
            assert_eq!(a, b, "the two genesis parsers refuse for different reasons");
            let _ = a.to_string();
            return;
        }
        (c, g) => panic!(
            "genesis parsers disagree: {c:?} vs {:?}",
            g.map(|g| g.network_id)
        ),
    };
    assert_eq!(genesis.config, config);
    let printed = config.to_toml_string();
    let reparsed = GenesisConfig::from_toml_str(&printed).expect("printed genesis parses");
    assert_eq!(reparsed, config, "genesis TOML does not round-trip");
    assert_eq!(reparsed.config_hash(), config.config_hash());
    let rebuilt = Genesis::new(reparsed).expect("a valid genesis stays valid");
    assert_eq!(rebuilt.network_id, genesis.network_id);
    assert_eq!(rebuilt.block, genesis.block);
    assert_eq!(genesis.block.hash(), genesis.network_id);
    assert!(genesis.block.check_tx_root().is_ok());
});
