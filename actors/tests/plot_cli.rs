//! End-to-end tests of `spacetime plot`: the real binary on small dev plots in a tempdir.

#![cfg(unix)]

use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::process::Output;

mod common;
use common::{assert_one_line_error, path_str as p, spacetime, stderr, stdout};

fn ok(o: Output) -> String {
    assert!(o.status.success(), "stderr: {}", stderr(&o));
    stdout(&o)
}

fn written_path(out: &str) -> PathBuf {
    out.lines()
        .find_map(|l| l.strip_prefix("wrote "))
        .map(PathBuf::from)
        .expect("a `wrote` line")
}

#[test]
fn create_list_check_inspect() {
    let tmp = tempfile::tempdir().unwrap();
    let key = tmp.path().join("miner.key");
    ok(spacetime(&["keys", "new", "--out", p(&key)]));
    let plots = tmp.path().join("plots");
    let nested = plots.join("disk2");
    std::fs::create_dir_all(&nested).unwrap();

    let out = ok(spacetime(&[
        "plot",
        "create",
        "--size",
        "512KiB",
        "--dir",
        p(&plots),
        "--key",
        p(&key),
        "--network",
        "dev",
        "--memory",
        "64KiB",
    ]));
    let first = written_path(&out);
    assert!(first.exists());
    assert!(out.contains("plot id: "), "{out}");
    let out = ok(spacetime(&[
        "plot",
        "create",
        "--size",
        "256KiB",
        "--dir",
        p(&nested),
        "--key",
        p(&key),
        "--quiet",
    ]));
    let second = written_path(&out);
    // Nothing temporary is left behind.
    let leftovers: Vec<_> = std::fs::read_dir(&plots)
        .unwrap()
        .filter_map(Result::ok)
        .filter(|e| e.path().to_string_lossy().ends_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty());

    let list = ok(spacetime(&["plot", "list", "--dir", p(&plots)]));
    assert!(
        list.contains(p(&first)) && list.contains(p(&second)),
        "{list}"
    );
    assert!(list.contains("2 plot(s)"), "{list}");

    let check = ok(spacetime(&["plot", "check", p(&first), "--samples", "200"]));
    assert!(
        check.contains("0 damaged") && check.contains("200 recomputed, 0 wrong"),
        "{check}"
    );

    let inspect = ok(spacetime(&["plot", "inspect", p(&first)]));
    assert!(inspect.contains("state: complete"), "{inspect}");
    assert!(inspect.contains("networks: dev"), "{inspect}");

    // Damage a leaf: check fails with one line, list still loads the plot (header intact).
    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(&first)
        .unwrap();
    f.write_all_at(&[0xAA; 64], 8192).unwrap();
    drop(f);
    assert_one_line_error(
        &spacetime(&["plot", "check", p(&first), "--samples", "10"]),
        "check failed: 1 damaged segment",
    );

    // A truncated and a foreign plot are skipped by list with a reason, never fatal.
    let bytes = std::fs::read(&second).unwrap();
    std::fs::write(nested.join("cut.plot"), &bytes[..bytes.len() / 2]).unwrap();
    std::fs::write(plots.join("foreign.plot"), b"hello").unwrap();
    let list = ok(spacetime(&["plot", "list", "--dir", p(&plots)]));
    assert!(
        list.contains("2 plot(s)") && list.contains("2 skipped"),
        "{list}"
    );
    assert!(list.contains("bad magic"), "{list}");
    assert_one_line_error(
        &spacetime(&["plot", "check", p(&nested.join("cut.plot"))]),
        "plot file is",
    );
    assert_one_line_error(
        &spacetime(&["plot", "inspect", p(&plots.join("foreign.plot"))]),
        "not a Spacetime plot file",
    );
}

#[test]
fn same_seed_same_bytes_and_bad_arguments() {
    let tmp = tempfile::tempdir().unwrap();
    let miner = "11".repeat(32);
    let seed = "22".repeat(32);
    let mut files = Vec::new();
    for (name, threads) in [("a", "1"), ("b", "2")] {
        let dir = tmp.path().join(name);
        std::fs::create_dir_all(&dir).unwrap();
        let out = ok(spacetime(&[
            "plot",
            "create",
            "--size",
            "300KiB",
            "--dir",
            p(&dir),
            "--miner",
            &miner,
            "--seed",
            &seed,
            "--threads",
            threads,
            "--quiet",
        ]));
        files.push(std::fs::read(written_path(&out)).unwrap());
    }
    assert_eq!(
        files[0], files[1],
        "same key and seed give byte-identical plots"
    );

    let dir = p(tmp.path());
    assert_one_line_error(
        &spacetime(&[
            "plot", "create", "--size", "10XB", "--dir", dir, "--miner", &miner,
        ]),
        "unknown unit",
    );
    assert_one_line_error(
        &spacetime(&[
            "plot", "create", "--size", "1KiB", "--dir", dir, "--miner", &miner,
        ]),
        "below the minimum",
    );
    assert_one_line_error(
        &spacetime(&[
            "plot", "create", "--size", "1MiB", "--dir", dir, "--miner", "xyz",
        ]),
        "invalid miner public key",
    );
    assert_one_line_error(
        &spacetime(&[
            "plot",
            "create",
            "--size",
            "1MiB",
            "--dir",
            dir,
            "--key",
            p(&tmp.path().join("missing.key")),
        ]),
        "missing.key",
    );
    assert_one_line_error(
        &spacetime(&[
            "plot",
            "create",
            "--size",
            "1MiB",
            "--dir",
            p(&tmp.path().join("nodir")),
            "--miner",
            &miner,
        ]),
        "nodir",
    );
    // The same plot again: refused, the existing file is untouched.
    let again = spacetime(&[
        "plot",
        "create",
        "--size",
        "300KiB",
        "--dir",
        p(&tmp.path().join("a")),
        "--miner",
        &miner,
        "--seed",
        &seed,
        "--quiet",
    ]);
    assert_one_line_error(&again, "already exists");
}
