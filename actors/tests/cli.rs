//! End-to-end tests of the `spacetime` binary: real processes, real files.

#![cfg(unix)]

use std::os::unix::fs::PermissionsExt;
use std::process::Output;

mod common;
use common::{assert_one_line_error, path_str, spacetime, stderr, stdout};

fn public_key_line(o: &Output) -> String {
    stdout(o)
        .lines()
        .find_map(|l| l.strip_prefix("public key: ").map(str::to_owned))
        .expect("a public key line")
}

#[test]
fn keys_new_then_show() {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("miner.key");
    let made = spacetime(&["keys", "new", "--out", path_str(&key)]);
    assert!(made.status.success(), "{}", stderr(&made));
    let public = public_key_line(&made);
    assert_eq!(public.len(), 64);
    let mode = std::fs::metadata(&key).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);

    let shown = spacetime(&["keys", "show", path_str(&key)]);
    assert!(shown.status.success(), "{}", stderr(&shown));
    assert_eq!(public_key_line(&shown), public);

    // Two new keys differ.
    let other = dir.path().join("other.key");
    let made2 = spacetime(&["keys", "new", "--out", path_str(&other)]);
    assert_ne!(public_key_line(&made2), public);
}

#[test]
fn keys_new_refuses_to_overwrite_without_force() {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("k");
    assert!(
        spacetime(&["keys", "new", "--out", path_str(&key)])
            .status
            .success()
    );
    let before = std::fs::read(&key).unwrap();
    let again = spacetime(&["keys", "new", "--out", path_str(&key)]);
    assert_one_line_error(&again, "already exists");
    assert_eq!(std::fs::read(&key).unwrap(), before);
    let forced = spacetime(&["keys", "new", "--out", path_str(&key), "--force"]);
    assert!(forced.status.success());
    assert_ne!(std::fs::read(&key).unwrap(), before);
}

#[test]
fn keys_show_refuses_bad_files() {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("k");
    assert!(
        spacetime(&["keys", "new", "--out", path_str(&key)])
            .status
            .success()
    );
    let good = std::fs::read(&key).unwrap();

    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    assert_one_line_error(&spacetime(&["keys", "show", path_str(&key)]), "chmod 600");
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();

    std::fs::write(&key, &good[..40]).unwrap();
    assert_one_line_error(&spacetime(&["keys", "show", path_str(&key)]), "truncated");

    let mut flipped = good.clone();
    flipped[10] ^= 1;
    std::fs::write(&key, &flipped).unwrap();
    assert_one_line_error(&spacetime(&["keys", "show", path_str(&key)]), "corrupted");

    std::fs::write(&key, b"-----BEGIN OPENSSH PRIVATE KEY-----\nnot ours\n").unwrap();
    assert!(
        !spacetime(&["keys", "show", path_str(&key)])
            .status
            .success()
    );

    let missing = dir.path().join("missing");
    assert_one_line_error(&spacetime(&["keys", "show", path_str(&missing)]), "missing");
}

#[test]
fn genesis_hash_is_stable_and_matches_the_shipped_files() {
    let dev = spacetime(&["genesis", "hash", "--network", "dev"]);
    assert!(dev.status.success());
    let dev_id = stdout(&dev).trim().to_owned();
    assert_eq!(dev_id.len(), 64);
    assert_eq!(
        stdout(&spacetime(&["genesis", "hash"])).trim(),
        dev_id,
        "dev is the default"
    );

    let file = concat!(env!("CARGO_MANIFEST_DIR"), "/../networks/dev.toml");
    let from_file = spacetime(&["genesis", "hash", "--config", file]);
    assert!(from_file.status.success(), "{}", stderr(&from_file));
    assert_eq!(stdout(&from_file).trim(), dev_id);

    let testnet = spacetime(&["genesis", "hash", "--network", "testnet"]);
    assert_ne!(stdout(&testnet).trim(), dev_id);
}

#[test]
fn genesis_show_prints_id_and_config() {
    let shown = spacetime(&["genesis", "show", "--network", "testnet"]);
    assert!(shown.status.success());
    let text = stdout(&shown);
    let id = stdout(&spacetime(&["genesis", "hash", "--network", "testnet"]));
    assert!(
        text.contains(&format!("network id:     {}", id.trim())),
        "{text}"
    );
    assert!(text.contains("[emission]"), "{text}");
    assert!(text.contains("name = \"testnet\""), "{text}");
}

#[test]
fn genesis_refuses_bad_configs_naming_the_problem() {
    let dir = tempfile::tempdir().unwrap();
    let base =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../networks/dev.toml"))
            .unwrap();
    let cases = [
        (
            base.replace("epoch_ms = 1000", "epoch_ms = 0"),
            "network.epoch_ms",
        ),
        (
            base.replace("[consensus]", "[consensus]\nsurprise = 1"),
            "surprise",
        ),
        (
            base.replace("initial_reward = 5000000000", "initial_reward = -1"),
            "initial_reward",
        ),
        ("this is not toml".to_owned(), "g.toml"),
    ];
    let path = dir.path().join("g.toml");
    for (text, needle) in cases {
        std::fs::write(&path, text).unwrap();
        assert_one_line_error(
            &spacetime(&["genesis", "hash", "--config", path_str(&path)]),
            needle,
        );
    }
    assert_one_line_error(
        &spacetime(&["genesis", "hash", "--network", "mainnet"]),
        "mainnet",
    );
    assert_one_line_error(
        &spacetime(&[
            "genesis",
            "hash",
            "--config",
            path_str(&dir.path().join("nope.toml")),
        ]),
        "nope.toml",
    );
}

#[test]
fn usage_errors_and_help() {
    let bad = spacetime(&["frobnicate"]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(stderr(&bad).starts_with("error: "));
    let conflict = spacetime(&["genesis", "hash", "--network", "dev", "--config", "x"]);
    assert_eq!(conflict.status.code(), Some(2));

    let help = spacetime(&["--help"]);
    assert!(help.status.success());
    for sub in ["keys", "genesis"] {
        assert!(stdout(&help).contains(sub), "{}", stdout(&help));
    }
    assert!(spacetime(&["--version"]).status.success());
}

#[test]
fn emission_table_and_svg() {
    let dir = tempfile::tempdir().unwrap();
    let svg = dir.path().join("dev.svg");
    let out = spacetime(&[
        "emission",
        "--network",
        "dev",
        "--rows",
        "5",
        "--svg",
        path_str(&svg),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.contains("% of limit"), "{text}");
    // Height 1 pays the dev initial reward, and the last row is at 99.99 % or more.
    assert!(
        text.lines()
            .any(|l| l.split_whitespace().collect::<Vec<_>>()[..]
                == ["1", "5000000000", "5000000000", "0.00%"]),
        "{text}"
    );
    let drawn = std::fs::read_to_string(&svg).unwrap();
    assert!(drawn.starts_with("<svg") && drawn.contains("polyline"));

    // A capped custom schedule from a file reports the cap height.
    let base =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../networks/dev.toml"))
            .unwrap();
    let capped = base.replace("floor = 0", "floor = 0\ncap = 50000000000");
    let file = dir.path().join("capped.toml");
    std::fs::write(&file, capped).unwrap();
    let out = spacetime(&["emission", "--network", path_str(&file)]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("cap reached at:  height 10"),
        "{}",
        stdout(&out)
    );
    assert!(stdout(&out).contains("100.00%"));

    // A schedule that would overflow is refused, naming the problem.
    let fixed = base.replace(
        "type = \"halving\"\ninterval = 100000",
        "type = \"fixed\"\nreward = 9000000000000000000",
    );
    std::fs::write(&file, fixed).unwrap();
    assert_one_line_error(
        &spacetime(&["emission", "--network", path_str(&file)]),
        "exceeds the u64 range",
    );
    assert_one_line_error(
        &spacetime(&["emission", "--network", "nope.toml"]),
        "nope.toml",
    );
}

#[test]
fn node_with_a_taken_listen_port_exits_with_one_error_line() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("node");
    let o = spacetime(&[
        "node",
        "--dev",
        "--no-mine",
        "--data-dir",
        path_str(&data),
        "--listen",
        &addr,
    ]);
    // The actors already started stop first: no panic from the runtime going away.
    assert_one_line_error(&o, "cannot listen on");
}

#[test]
fn chain_reads_never_create_a_database() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("mistyped");
    for cmd in [
        vec!["chain", "tip", "--dev", "--data-dir", path_str(&missing)],
        vec!["chain", "supply", "--dev", "--data-dir", path_str(&missing)],
        vec![
            "chain",
            "export",
            "--dev",
            "--data-dir",
            path_str(&missing),
            path_str(&dir.path().join("out.bin")),
        ],
    ] {
        let o = spacetime(&cmd);
        assert_one_line_error(&o, "no chain database at");
        assert!(!missing.exists(), "{cmd:?} created {}", missing.display());
    }
}
