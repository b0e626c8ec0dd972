use super::*;
use crate::{Amount, decode, encode};

fn dev() -> GenesisConfig {
    GenesisConfig::builtin("dev").unwrap()
}

fn expect_invalid(text: &str, field: &str) {
    match GenesisConfig::from_toml_str(text) {
        Err(GenesisError::Invalid { field: f, .. }) => assert_eq!(f, field, "for:\n{text}"),
        other => panic!("expected invalid `{field}`, got {other:?}"),
    }
    // The one-pass path validates exactly the same.
    match Genesis::from_toml_str(text) {
        Err(GenesisError::Invalid { field: f, .. }) => assert_eq!(f, field, "for:\n{text}"),
        other => panic!("expected invalid `{field}`, got {other:?}"),
    }
}

/// The built-in dev TOML, to which tests append tables.
fn dev_text() -> String {
    super::DEV_TOML.to_owned()
}

#[test]
fn builtins_parse_and_differ() {
    let dev = Genesis::builtin("dev").unwrap();
    let testnet = Genesis::builtin("testnet").unwrap();
    assert_ne!(dev.network_id, testnet.network_id);
    assert_ne!(dev.chain_id, testnet.chain_id);
    assert!(matches!(
        Genesis::builtin("mainnet"),
        Err(GenesisError::UnknownNetwork(_))
    ));
    for name in BUILTIN_NETWORKS {
        assert_eq!(Genesis::builtin(name).unwrap().config.network.name, name);
    }
}

#[test]
fn genesis_is_deterministic_and_round_trips() {
    let a = Genesis::builtin("dev").unwrap();
    let b = Genesis::new(GenesisConfig::from_toml_str(&dev().to_toml_string()).unwrap()).unwrap();
    assert_eq!(a, b);
    let bytes = encode(&a.block);
    let back: Block = decode(&bytes).unwrap();
    assert_eq!(back.hash(), a.network_id);
    back.check_tx_root().unwrap();
    assert_eq!(a.block.header.height, 0);
    assert_eq!(a.block.header.challenge, a.config.config_hash());
    assert_eq!(&a.block.coinbase.extra_data[..], b"dev");
}

#[test]
fn every_parameter_changes_the_network_id() {
    let base = Genesis::builtin("dev").unwrap().network_id;
    let mut variants: Vec<GenesisConfig> = Vec::new();
    let mut c = dev();
    c.network.epoch_ms += 1;
    variants.push(c);
    let mut c = dev();
    c.consensus.coinbase_maturity += 1;
    variants.push(c);
    let mut c = dev();
    c.plot.buckets += 1;
    variants.push(c);
    let mut c = dev();
    c.emission.initial_reward = Amount(c.emission.initial_reward.0 + 1);
    variants.push(c);
    let mut c = dev();
    c.premine.push(Allocation {
        address: PublicKey([9; 32]),
        amount: Amount(1),
    });
    variants.push(c);
    let mut c = dev();
    c.checkpoints.push(Checkpoint {
        height: 5,
        hash: Hash([1; 32]),
    });
    variants.push(c);
    for c in variants {
        assert_ne!(Genesis::new(c).unwrap().network_id, base);
    }
}

#[test]
fn unknown_fields_are_refused_with_their_name() {
    let text = dev_text().replace("[consensus]\n", "[consensus]\nmax_reorg_dept = 5\n");
    let err = GenesisConfig::from_toml_str(&text).unwrap_err().to_string();
    assert!(err.contains("max_reorg_dept"), "{err}");
    let text = dev_text().replace("type = \"halving\"", "type = \"halving\"\nreward = 5");
    let err = GenesisConfig::from_toml_str(&text).unwrap_err().to_string();
    assert!(err.contains("`reward` does not apply"), "{err}");
    let text = dev_text().replace("type = \"halving\"", "type = \"fixed\"");
    let err = GenesisConfig::from_toml_str(&text).unwrap_err().to_string();
    assert!(err.contains("`interval` does not apply"), "{err}");
    let text = dev_text().replace("interval = 100000\n", "");
    let err = GenesisConfig::from_toml_str(&text).unwrap_err().to_string();
    assert!(err.contains("needs field `interval`"), "{err}");
    let err = GenesisConfig::from_toml_str(&(dev_text() + "\n[extra]\nx = 1\n")).unwrap_err();
    assert!(err.to_string().contains("extra"), "{err}");
}

#[test]
fn bad_values_name_the_field() {
    let t = dev_text();
    expect_invalid(
        &t.replace("epoch_ms = 1000", "epoch_ms = 0"),
        "network.epoch_ms",
    );
    expect_invalid(
        &t.replace("target_block_time_ms = 2000", "target_block_time_ms = 999"),
        "network.target_block_time_ms",
    );
    expect_invalid(
        &t.replace("max_future_drift_ms = 900", "max_future_drift_ms = 1000"),
        "network.max_future_drift_ms",
    );
    expect_invalid(
        &t.replace("name = \"dev\"", "name = \"Dev Net\""),
        "network.name",
    );
    expect_invalid(&t.replace("name = \"dev\"", "name = \"\""), "network.name");
    expect_invalid(
        &t.replace("max_reorg_depth = 100", "max_reorg_depth = 0"),
        "consensus.max_reorg_depth",
    );
    expect_invalid(
        &t.replace("group_leaves_log2 = 6", "group_leaves_log2 = 0"),
        "plot.group_leaves_log2",
    );
    expect_invalid(
        &t.replace("chain_window = 64", "chain_window = 65"),
        "plot.chain_window",
    );
    expect_invalid(&t.replace("buckets = 4", "buckets = 0"), "plot.buckets");
    expect_invalid(
        &t.replace("coinbase_maturity = 10", "coinbase_maturity = 1001"),
        "consensus.coinbase_maturity",
    );
    expect_invalid(
        &t.replace("interval = 100000", "interval = 0"),
        "emission.schedules[0].interval",
    );
    expect_invalid(
        &t.replace("floor = 0", "floor = 5000000001"),
        "emission.floor",
    );
    let zero_target = format!("initial_target = \"{}\"", "0".repeat(64));
    let line = t.lines().find(|l| l.starts_with("initial_target")).unwrap();
    expect_invalid(&t.replace(line, &zero_target), "difficulty.initial_target");
}

#[test]
fn amounts_that_overflow_are_refused() {
    let t = dev_text();
    // An amount beyond u64 is a parse error naming the value's place.
    let err = GenesisConfig::from_toml_str(&t.replace(
        "initial_reward = 5000000000",
        "initial_reward = 18446744073709551616",
    ))
    .unwrap_err();
    assert!(matches!(err, GenesisError::Parse(_)), "{err}");
    let msg = err.to_string();
    assert!(
        msg.contains("initial_reward = 18446744073709551616"),
        "{msg}"
    );
    assert!(!msg.contains('\n'), "{msg}");
    // Premine amounts that add up past u64.
    let big = format!(
        "{t}\n[[premine]]\naddress = \"{}\"\namount = {}\n\n[[premine]]\naddress = \"{}\"\namount = 2\n",
        "11".repeat(32),
        u64::MAX,
        "22".repeat(32)
    );
    expect_invalid(&big, "premine[1].amount");
    let dup = format!(
        "{t}\n[[premine]]\naddress = \"{0}\"\namount = 1\n\n[[premine]]\naddress = \"{0}\"\namount = 2\n",
        "11".repeat(32)
    );
    expect_invalid(&dup, "premine[1].address");
}

#[test]
fn schedule_versions_and_tables_are_ordered() {
    let t = dev_text();
    // The number of schedule versions is bounded before any is compiled.
    let mut many = dev_text();
    for h in 1..=64 {
        many.push_str(&format!(
            "\n[[emission.schedules]]\nactivation_height = {h}\ntype = \"exponential_decay\"\nhalf_life_blocks = 256\n"
        ));
    }
    expect_invalid(&many, "emission.schedules");
    let second = "\n[[emission.schedules]]\nactivation_height = 0\ntype = \"fixed\"\nreward = 1\n";
    expect_invalid(
        &format!("{t}{second}"),
        "emission.schedules[1].activation_height",
    );
    let table = "\n[[emission.schedules]]\nactivation_height = 10\ntype = \"custom_table\"\nranges = [\
        { start = 10, end = 20, reward = 5 }, { start = 15, end = 30, reward = 1 }]\n";
    expect_invalid(&format!("{t}{table}"), "emission.schedules[1].ranges[1]");
    let ok = table.replace("start = 15", "start = 20");
    let c = GenesisConfig::from_toml_str(&format!("{t}{ok}")).unwrap();
    assert!(
        matches!(c.emission.schedules[1].schedule, Schedule::CustomTable { ref ranges } if ranges.len() == 2)
    );
}

#[test]
fn checkpoints_ascend() {
    let t = dev_text();
    let h = "11".repeat(32);
    let bad = format!(
        "{t}\n[[checkpoints]]\nheight = 5\nhash = \"{h}\"\n\n[[checkpoints]]\nheight = 5\nhash = \"{h}\"\n"
    );
    expect_invalid(&bad, "checkpoints[1].height");
    let zero = format!("{t}\n[[checkpoints]]\nheight = 0\nhash = \"{h}\"\n");
    expect_invalid(&zero, "checkpoints[0].height");
}

#[test]
fn toml_round_trip_preserves_config() {
    for name in BUILTIN_NETWORKS {
        let c = GenesisConfig::builtin(name).unwrap();
        assert_eq!(
            GenesisConfig::from_toml_str(&c.to_toml_string()).unwrap(),
            c
        );
    }
}

#[test]
fn oversized_text_is_refused_before_parsing() {
    let text = " ".repeat(MAX_GENESIS_TOML_BYTES + 1);
    assert!(matches!(
        GenesisConfig::from_toml_str(&text),
        Err(GenesisError::Parse(_))
    ));
}
