//! Relay of real nodes in virtual time: blocks mined anywhere reach every node about once per
//! node, transfers submitted anywhere are mined elsewhere, floods and invalid blocks are cut
//! off, reorged transfers come back, and challenges, proofs and acceptances reach everyone.

use std::time::Duration;

use spacetime_sim::scenarios::RelayScenario;

#[test]
fn ten_nodes_three_miners_every_block_reaches_every_node_about_once() {
    let scenario = RelayScenario::new(15, 10, Duration::from_secs(120));
    let (_, f) = scenario.run().expect("run");
    eprintln!("10 nodes: {f:?}");
    assert!(f.one_tip, "{f:?}");
    assert!(f.height >= 30, "{f:?}");
    assert_eq!(f.missing, 0, "{f:?}");
    assert!(f.bodies_per_block <= 1.5, "{f:?}");
}
