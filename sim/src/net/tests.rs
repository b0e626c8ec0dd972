//! Tests of the parent module.

use super::*;
use std::net::Ipv4Addr;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::{Instant, sleep, timeout};

const MS: Duration = Duration::from_millis(1);
const PORT: u16 = 9000;

fn ip(n: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(10, 0, 0, n))
}

fn at(n: u8) -> SocketAddr {
    SocketAddr::new(ip(n), PORT)
}

/// Dials `to` from `from` and accepts on `listener`: (dialer's end, acceptor's end, from).
async fn connect(
    net: &SimNet,
    from: u8,
    listener: &mut Box<dyn Listener>,
) -> (BoxStream, BoxStream, SocketAddr) {
    let dial = net.transport(ip(from)).dial(listener.local_addr());
    let (dialed, accepted) = tokio::join!(dial, listener.accept());
    let (inbound, addr) = accepted.unwrap();
    (dialed.unwrap(), inbound, addr)
}

async fn listen(net: &SimNet, n: u8) -> Box<dyn Listener> {
    net.transport(ip(n)).listen(at(n)).await.unwrap()
}

/// Whether `stream` yields a byte within `wait`.
async fn readable_within(stream: &mut BoxStream, wait: Duration) -> bool {
    let mut byte = [0u8; 1];
    timeout(wait, stream.read_exact(&mut byte)).await.is_ok()
}

#[tokio::test(start_paused = true)]
async fn dial_without_listener_is_refused_after_a_round_trip() {
    let net = SimNet::new(1, LinkParams::with_latency(25 * MS));
    let start = Instant::now();
    let err = net.transport(ip(1)).dial(at(2)).await.err().unwrap();
    assert_eq!(err.kind(), io::ErrorKind::ConnectionRefused);
    assert_eq!(start.elapsed(), 50 * MS);
    assert_eq!(net.stats().refused, 1);
}

#[tokio::test(start_paused = true)]
async fn accept_yields_the_dialers_address_and_bytes_flow() {
    let net = SimNet::new(1, LinkParams::with_latency(10 * MS));
    let mut listener = listen(&net, 2).await;
    let start = Instant::now();
    let (mut out, mut inb, from) = connect(&net, 1, &mut listener).await;
    assert_eq!(start.elapsed(), 20 * MS);
    assert_eq!(from, SocketAddr::new(ip(1), FIRST_EPHEMERAL_PORT));
    out.write_all(b"ping").await.unwrap();
    inb.write_all(b"pong").await.unwrap();
    let mut buf = [0u8; 4];
    inb.read_exact(&mut buf).await.unwrap();
    assert_eq!(&buf, b"ping");
    out.read_exact(&mut buf).await.unwrap();
    assert_eq!(&buf, b"pong");

    let (_out2, _in2, from2) = connect(&net, 1, &mut listener).await;
    assert_eq!(from2, SocketAddr::new(ip(1), FIRST_EPHEMERAL_PORT + 1));
    // Ports count per host.
    let (_out3, _in3, from3) = connect(&net, 3, &mut listener).await;
    assert_eq!(from3, SocketAddr::new(ip(3), FIRST_EPHEMERAL_PORT));

    let stats = net.stats();
    assert_eq!(stats.live_connections, 3);
    assert_eq!(stats.connections_opened, 3);
    assert_eq!(stats.bytes_carried, 8);
    assert_eq!(net.carried(ip(1), ip(2)).bytes, 4);
    assert_eq!(net.carried(ip(2), ip(1)).bytes, 4);
}

#[tokio::test(start_paused = true)]
async fn listen_rules_addr_in_use_free_ports_and_unbinding() {
    let net = SimNet::new(1, LinkParams::default());
    let t = net.transport(ip(1));
    let first = t.listen(at(1)).await.unwrap();
    assert_eq!(first.local_addr(), at(1));
    let err = t.listen(at(1)).await.err().unwrap();
    assert_eq!(err.kind(), io::ErrorKind::AddrInUse);
    // Another host may use the same port.
    assert!(net.transport(ip(2)).listen(at(2)).await.is_ok());
    // Unspecified means this host; port 0 picks a free one.
    let any = t.listen("0.0.0.0:0".parse().unwrap()).await.unwrap();
    assert_eq!(
        any.local_addr(),
        SocketAddr::new(ip(1), FIRST_EPHEMERAL_PORT)
    );
    let err = t.listen(at(3)).await.err().unwrap();
    assert_eq!(err.kind(), io::ErrorKind::AddrNotAvailable);
    assert_eq!(net.stats().listeners, 2);
    drop(first);
    assert_eq!(net.stats().listeners, 1);
    let err = net.transport(ip(2)).dial(at(1)).await.err().unwrap();
    assert_eq!(err.kind(), io::ErrorKind::ConnectionRefused);
    assert!(t.listen(at(1)).await.is_ok());
}

#[tokio::test(start_paused = true)]
async fn dial_hangs_across_a_partition_and_a_new_one_succeeds_after_heal() {
    let net = SimNet::new(1, LinkParams::with_latency(10 * MS));
    let mut listener = listen(&net, 2).await;
    net.partition(ip(1), ip(2));
    assert!(net.is_partitioned(ip(2), ip(1)));
    let dial = net.transport(ip(1)).dial(at(2));
    assert!(timeout(Duration::from_secs(3600), dial).await.is_err());
    // Nothing reached the listener, nothing is left running.
    assert!(timeout(MS, listener.accept()).await.is_err());
    assert_eq!(net.stats().live_connections, 0);
    // A partition cut during the handshake also swallows it.
    let dial = tokio::spawn(net.transport(ip(3)).dial(at(2)));
    sleep(5 * MS).await;
    net.partition(ip(3), ip(2));
    sleep(Duration::from_secs(60)).await;
    assert!(!dial.is_finished());
    dial.abort();

    net.heal(ip(1), ip(2));
    let (mut out, mut inb, _) = connect(&net, 1, &mut listener).await;
    out.write_all(b"hi").await.unwrap();
    assert!(readable_within(&mut inb, 11 * MS).await);
}

#[tokio::test(start_paused = true)]
async fn partition_stalls_live_connections_without_resetting_them() {
    let net = SimNet::new(1, LinkParams::with_latency(10 * MS));
    let mut listener = listen(&net, 2).await;
    let (mut out, mut inb, _) = connect(&net, 1, &mut listener).await;
    net.partition(ip(1), ip(2));
    out.write_all(b"a").await.unwrap();
    inb.write_all(b"b").await.unwrap();
    assert!(!readable_within(&mut inb, Duration::from_secs(600)).await);
    assert!(!readable_within(&mut out, Duration::from_secs(1)).await);
    assert_eq!(net.stats().live_connections, 1);
    net.heal_all();
    assert!(readable_within(&mut inb, MS).await);
    assert!(readable_within(&mut out, MS).await);
}

#[tokio::test(start_paused = true)]
async fn partition_groups_cut_between_groups_only() {
    let net = SimNet::new(1, LinkParams::with_latency(MS));
    let mut listener = listen(&net, 1).await;
    net.partition_groups(&[&[ip(1), ip(2)], &[ip(3), ip(4)]])
        .unwrap();
    assert!(net.is_partitioned(ip(1), ip(3)));
    assert!(net.is_partitioned(ip(4), ip(2)));
    assert!(!net.is_partitioned(ip(3), ip(4)));
    assert!(!net.is_partitioned(ip(1), ip(5)));
    let (_o, _i, from) = connect(&net, 2, &mut listener).await;
    assert_eq!(from.ip(), ip(2));
    let dial = net.transport(ip(3)).dial(at(1));
    assert!(timeout(Duration::from_secs(60), dial).await.is_err());
    net.heal_all();
    let (_o, _i, from) = connect(&net, 3, &mut listener).await;
    assert_eq!(from.ip(), ip(3));
    assert_eq!(
        net.partition_groups(&[&[ip(1)], &[ip(2), ip(1)]]),
        Err(NetError::InTwoGroups(ip(1)))
    );
}

#[tokio::test(start_paused = true)]
async fn reset_ends_live_connections_of_the_pair_only() {
    let net = SimNet::new(1, LinkParams::with_latency(5 * MS));
    let mut listener = listen(&net, 2).await;
    let (mut out, mut inb, _) = connect(&net, 1, &mut listener).await;
    let (mut other_out, mut other_in, _) = connect(&net, 3, &mut listener).await;
    net.reset(ip(2), ip(1));
    sleep(MS).await;
    let mut buf = Vec::new();
    assert_eq!(out.read_to_end(&mut buf).await.unwrap(), 0);
    assert_eq!(inb.read_to_end(&mut buf).await.unwrap(), 0);
    assert!(out.write_all(b"x").await.is_err());
    other_out.write_all(b"y").await.unwrap();
    assert!(readable_within(&mut other_in, 6 * MS).await);
    assert_eq!(net.stats().live_connections, 1);
    let (mut again, mut again_in, _) = connect(&net, 1, &mut listener).await;
    again.write_all(b"z").await.unwrap();
    assert!(readable_within(&mut again_in, 6 * MS).await);
}

#[tokio::test(start_paused = true)]
async fn asymmetric_links_and_pair_state_apply_to_later_connections() {
    let net = SimNet::new(1, LinkParams::default());
    // Configured before any connection exists, and from the higher address's side.
    net.set_link_one_way(ip(2), ip(1), LinkParams::with_latency(40 * MS));
    net.set_link_one_way(ip(1), ip(2), LinkParams::with_latency(10 * MS));
    assert_eq!(net.link_params(ip(2), ip(1)).latency, 40 * MS);
    let mut listener = listen(&net, 2).await;
    let start = Instant::now();
    let (mut out, mut inb, _) = connect(&net, 1, &mut listener).await;
    assert_eq!(start.elapsed(), 50 * MS);
    let start = Instant::now();
    out.write_all(b"a").await.unwrap();
    assert!(readable_within(&mut inb, 11 * MS).await);
    assert!(start.elapsed() >= 10 * MS);
    let start = Instant::now();
    inb.write_all(b"b").await.unwrap();
    assert!(!readable_within(&mut out, 39 * MS).await);
    assert!(readable_within(&mut out, 2 * MS).await);
    assert!(start.elapsed() >= 40 * MS);

    // A stalled pair stalls connections made afterwards; dials still complete.
    net.stall(ip(1), ip(2));
    let (mut out, mut inb, _) = connect(&net, 1, &mut listener).await;
    out.write_all(b"c").await.unwrap();
    assert!(!readable_within(&mut inb, Duration::from_secs(1)).await);
    net.resume(ip(1), ip(2));
    assert!(readable_within(&mut inb, MS).await);
}

#[tokio::test(start_paused = true)]
async fn a_full_backlog_refuses_dials_and_an_unbound_listener_drops_its_queue() {
    let net = SimNet::new(1, LinkParams::default());
    let listener = listen(&net, 2).await;
    let t = net.transport(ip(1));
    let mut dialed = Vec::new();
    for _ in 0..BACKLOG {
        dialed.push(t.dial(at(2)).await.unwrap());
    }
    let err = t.dial(at(2)).await.err().unwrap();
    assert_eq!(err.kind(), io::ErrorKind::ConnectionRefused);
    drop(listener);
    sleep(MS).await;
    let mut buf = Vec::new();
    assert_eq!(dialed[0].read_to_end(&mut buf).await.unwrap(), 0);
    dialed.clear();
    sleep(MS).await;
    assert_eq!(net.stats().live_connections, 0);
}

#[test]
fn works_inside_a_local_set_on_a_paused_runtime_as_under_actix() {
    // The shape of `actix_rt::System::with_tokio_rt`: a current-thread runtime with a
    // paused clock, tasks spawned locally.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .unwrap();
    let local = tokio::task::LocalSet::new();
    let elapsed = local.block_on(&runtime, async {
        let net = SimNet::new(3, LinkParams::with_latency(Duration::from_secs(1)));
        let mut listener = listen(&net, 2).await;
        let start = Instant::now();
        let server = tokio::task::spawn_local(async move {
            let (mut stream, _) = listener.accept().await.unwrap();
            let mut buf = [0u8; 4];
            stream.read_exact(&mut buf).await.unwrap();
            stream.write_all(&buf).await.unwrap();
            stream
        });
        let mut client = net.transport(ip(1)).dial(at(2)).await.unwrap();
        client.write_all(b"echo").await.unwrap();
        let mut buf = [0u8; 4];
        client.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"echo");
        drop(server.await.unwrap());
        start.elapsed()
    });
    // Handshake round trip, then one more: 4 s of virtual time, no real waiting.
    assert_eq!(elapsed, Duration::from_secs(4));
}

/// Bytes and arrival times of a lossy, jittery exchange between two hosts.
async fn run(seed: u64) -> Vec<(u8, Duration)> {
    let params = LinkParams::with_latency(10 * MS)
        .jitter(20 * MS)
        .loss(200_000);
    let net = SimNet::new(seed, params);
    let mut listener = listen(&net, 2).await;
    let (mut out, mut inb, _) = connect(&net, 1, &mut listener).await;
    let start = Instant::now();
    let writer = tokio::spawn(async move {
        for i in 0..50u8 {
            out.write_all(&[i]).await.unwrap();
            sleep(3 * MS).await;
        }
        out
    });
    let mut seen = Vec::new();
    for _ in 0..50 {
        let mut b = [0u8; 1];
        inb.read_exact(&mut b).await.unwrap();
        seen.push((b[0], start.elapsed()));
    }
    drop(writer.await.unwrap());
    seen
}

#[tokio::test(start_paused = true)]
async fn a_run_is_a_function_of_the_seed() {
    let first = run(7).await;
    assert!(
        first
            .iter()
            .enumerate()
            .all(|(i, (b, _))| usize::from(*b) == i)
    );
    assert_eq!(first, run(7).await);
    assert_ne!(first, run(8).await);
}
