//! The relay's metrics, `spacetime_relay_*` (see `docs/metrics.md`).

use spacetime::p2p::Misbehavior;
use spacetime::relay::{ItemKind, RelayCounters};

/// Relay messages received from peers, by message type.
pub const MESSAGES_RECEIVED: &str = "spacetime_relay_messages_received_total";
/// Relay messages sent to peers, by message type.
pub const MESSAGES_SENT: &str = "spacetime_relay_messages_sent_total";
/// Items received whole, by kind.
pub const ITEMS_RECEIVED: &str = "spacetime_relay_items_received_total";
/// Items received whole that the node already had, by kind.
pub const DUPLICATES: &str = "spacetime_relay_duplicates_total";
/// Items relayed (checked good or local), by kind.
pub const RELAYED: &str = "spacetime_relay_items_relayed_total";
/// Items refused by their check, by kind.
pub const REFUSED: &str = "spacetime_relay_items_refused_total";
/// Items fetched from announcers, by kind.
pub const FETCHED: &str = "spacetime_relay_items_fetched_total";
/// Items dropped from full peer queues, by kind.
pub const QUEUE_DROPPED: &str = "spacetime_relay_queue_dropped_total";
/// Messages not sent or answered, by reason.
pub const DROPPED: &str = "spacetime_relay_dropped_total";
/// Penalties the relay gave, by misbehaviour.
pub const PENALTIES: &str = "spacetime_relay_penalties_total";
/// Items queued to peers.
pub const QUEUED: &str = "spacetime_relay_queued";
/// Peers the relay serves.
pub const PEERS: &str = "spacetime_relay_peers";

pub(crate) fn received(kind: &'static str) {
    metrics::counter!(MESSAGES_RECEIVED, "type" => kind).increment(1);
}

pub(crate) fn sent(kind: &'static str) {
    metrics::counter!(MESSAGES_SENT, "type" => kind).increment(1);
}

pub(crate) fn dropped(reason: &'static str) {
    metrics::counter!(DROPPED, "reason" => reason).increment(1);
}

pub(crate) fn penalized(what: Misbehavior) {
    metrics::counter!(PENALTIES, "kind" => crate::p2p::metrics::misbehaviour_label(what))
        .increment(1);
}

/// Publishes the state machine's counters (monotonic totals) and gauges.
pub(crate) fn export(c: &RelayCounters, queued: usize, peers: usize) {
    for kind in ItemKind::ALL {
        let k = kind.name();
        let of = |a: &[u64; 5]| RelayCounters::of(a, kind);
        metrics::counter!(ITEMS_RECEIVED, "kind" => k).absolute(of(&c.received));
        metrics::counter!(DUPLICATES, "kind" => k).absolute(of(&c.duplicates));
        metrics::counter!(RELAYED, "kind" => k).absolute(of(&c.relayed));
        metrics::counter!(REFUSED, "kind" => k).absolute(of(&c.refused));
        metrics::counter!(FETCHED, "kind" => k).absolute(of(&c.fetched));
        metrics::counter!(QUEUE_DROPPED, "kind" => k).absolute(of(&c.queue_dropped));
    }
    metrics::gauge!(QUEUED).set(queued as f64);
    metrics::gauge!(PEERS).set(peers as f64);
}

/// Compact blocks received, by result: `rebuilt` from held transfers, `missed` (a transfer
/// lacking: the whole block is fetched) or `known`.
pub const COMPACT: &str = "spacetime_relay_compact_blocks_total";

pub(crate) fn compact(result: &'static str) {
    metrics::counter!(COMPACT, "result" => result).increment(1);
}
