//! Node configuration TOML: parsing never panics, and an accepted configuration prints to TOML
//! that parses back to the same configuration.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use spacetime_actors::config::NodeConfig;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = core::str::from_utf8(data) else {
        return;
    };
    let path = Path::new("node.toml");
    let config = match NodeConfig::from_toml(text, path) {
        Ok(config) => config,
        Err(e) => {
            let _ = e.to_string();
            return;
        }
    };
    assert!(config.validate().is_ok());
    let printed = toml::to_string(&config).expect("a node configuration prints as TOML");
    let reparsed =
        NodeConfig::from_toml(&printed, path).expect("printed node configuration parses");
    assert_eq!(
        reparsed, config,
        "node configuration TOML does not round-trip:\n{printed}"
    );
    let _ = config.network.bandwidth();
    let _ = config.relay.settings();
    let _ = config.sync.settings();
});
