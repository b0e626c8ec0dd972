//! Tests of the parent module.

use super::*;
use tokio::time::{sleep, timeout};

const MS: Duration = Duration::from_millis(1);

fn pair(params: LinkParams) -> (LinkControl, LinkStream, LinkStream) {
    let control = LinkControl::new(params);
    let (a, b) = connect(&control, SimRng::new(1)).unwrap();
    (control, a, b)
}

/// Whether `stream` yields a byte within `wait`.
async fn readable_within(stream: &mut LinkStream, wait: Duration) -> bool {
    let mut byte = [0u8; 1];
    timeout(wait, stream.read_exact(&mut byte)).await.is_ok()
}

#[tokio::test(start_paused = true)]
async fn bytes_arrive_after_the_latency_in_both_directions() {
    let (control, mut a, mut b) = pair(LinkParams::with_latency(50 * MS));
    let start = Instant::now();
    a.write_all(b"hello").await.unwrap();
    let mut buf = [0u8; 5];
    b.read_exact(&mut buf).await.unwrap();
    assert_eq!(&buf, b"hello");
    let elapsed = start.elapsed();
    assert!(elapsed >= 50 * MS && elapsed < 51 * MS, "{elapsed:?}");

    let start = Instant::now();
    b.write_all(b"back").await.unwrap();
    let mut buf = [0u8; 4];
    a.read_exact(&mut buf).await.unwrap();
    assert_eq!(&buf, b"back");
    let elapsed = start.elapsed();
    assert!(elapsed >= 50 * MS && elapsed < 51 * MS, "{elapsed:?}");

    let stats = control.stats();
    assert_eq!(stats.forward.bytes, 5);
    assert_eq!(stats.backward.bytes, 4);
    assert_eq!(stats.forward.segments, 1);
    assert_eq!((stats.live, stats.opened), (1, 1));
}

#[tokio::test(start_paused = true)]
async fn ideal_link_delivers_without_advancing_time() {
    let (_control, mut a, mut b) = pair(LinkParams::default());
    let start = Instant::now();
    let data: Vec<u8> = (0..200_000u32).map(|i| i as u8).collect();
    let writer = tokio::spawn(async move {
        a.write_all(&data).await.unwrap();
        a
    });
    let mut got = vec![0u8; 200_000];
    b.read_exact(&mut got).await.unwrap();
    assert!(got.iter().enumerate().all(|(i, &x)| x == i as u8));
    assert_eq!(start.elapsed(), Duration::ZERO);
    drop(writer.await.unwrap());
}

#[tokio::test(start_paused = true)]
async fn jitter_varies_delays_but_keeps_order() {
    let params = LinkParams::with_latency(10 * MS).jitter(50 * MS);
    let (control, mut a, mut b) = pair(params);
    let start = Instant::now();
    let writer = tokio::spawn(async move {
        for i in 0..200u32 {
            a.write_all(&i.to_be_bytes()).await.unwrap();
            sleep(MS).await;
        }
        a
    });
    let mut delays = Vec::new();
    for i in 0..200u32 {
        let mut buf = [0u8; 4];
        b.read_exact(&mut buf).await.unwrap();
        assert_eq!(u32::from_be_bytes(buf), i, "out of order");
        // Chunk i was written at i ms.
        delays.push(start.elapsed() - i * MS);
    }
    drop(writer.await.unwrap());
    assert!(
        delays.iter().all(|d| *d >= 10 * MS && *d <= 62 * MS),
        "{delays:?}"
    );
    let (min, max) = (delays.iter().min().unwrap(), delays.iter().max().unwrap());
    assert!(
        *max - *min >= 20 * MS,
        "jitter had no effect: {min:?}..{max:?}"
    );
    assert_eq!(control.stats().forward.segments, 200);
}

#[tokio::test(start_paused = true)]
async fn one_mebibyte_at_one_mebibyte_per_second_takes_a_second() {
    let (control, mut a, mut b) = pair(LinkParams::default().bandwidth(1 << 20));
    let start = Instant::now();
    let writer = tokio::spawn(async move {
        a.write_all(&vec![7u8; 1 << 20]).await.unwrap();
        a
    });
    let mut got = vec![0u8; 1 << 20];
    b.read_exact(&mut got).await.unwrap();
    let elapsed = start.elapsed();
    assert!(
        elapsed >= Duration::from_secs(1) && elapsed < Duration::from_millis(1010),
        "{elapsed:?}"
    );
    assert!(got.iter().all(|&x| x == 7));
    assert_eq!(control.stats().forward.bytes, 1 << 20);
    drop(writer.await.unwrap());
}

#[tokio::test(start_paused = true)]
async fn in_flight_limit_bounds_throughput_over_latency() {
    // 64 KiB in flight over a 100 ms link: at most 640 KiB/s, so 1 MiB needs > 1.5 s.
    let params = LinkParams::with_latency(100 * MS).max_in_flight(64 * 1024);
    let (_control, mut a, mut b) = pair(params);
    let start = Instant::now();
    let writer = tokio::spawn(async move {
        a.write_all(&vec![1u8; 1 << 20]).await.unwrap();
        a
    });
    let mut got = vec![0u8; 1 << 20];
    b.read_exact(&mut got).await.unwrap();
    let elapsed = start.elapsed();
    assert!(
        elapsed >= Duration::from_millis(1500) && elapsed < Duration::from_millis(1800),
        "{elapsed:?}"
    );
    drop(writer.await.unwrap());
}

#[tokio::test(start_paused = true)]
async fn a_lost_segment_arrives_one_rto_late() {
    let (control, mut a, mut b) = pair(LinkParams::with_latency(10 * MS).loss(PPM));
    let start = Instant::now();
    a.write_all(b"x").await.unwrap();
    let mut buf = [0u8; 1];
    b.read_exact(&mut buf).await.unwrap();
    let elapsed = start.elapsed();
    assert!(elapsed >= 210 * MS && elapsed < 211 * MS, "{elapsed:?}");
    assert_eq!(control.stats().forward.retransmissions, 1);
}

/// Arrival times (since the start) of 100 one-byte segments written 1 ms apart.
async fn lossy_run(seed: u64) -> (Vec<Duration>, u64) {
    let control = LinkControl::new(LinkParams::with_latency(10 * MS).loss(300_000));
    let (mut a, mut b) = connect(&control, SimRng::new(seed)).unwrap();
    let start = Instant::now();
    let writer = tokio::spawn(async move {
        for i in 0..100u8 {
            a.write_all(&[i]).await.unwrap();
            sleep(MS).await;
        }
        a
    });
    let mut arrivals = Vec::new();
    for i in 0..100u8 {
        let mut buf = [0u8; 1];
        b.read_exact(&mut buf).await.unwrap();
        assert_eq!(buf[0], i);
        arrivals.push(start.elapsed());
    }
    drop(writer.await.unwrap());
    (arrivals, control.stats().forward.retransmissions)
}

#[tokio::test(start_paused = true)]
async fn loss_is_deterministic_per_seed() {
    let (first, lost) = lossy_run(42).await;
    assert!((10..=50).contains(&lost), "{lost} of 100 lost at 30%");
    // A loss holds back the later segments: all were written within 100 ms, less than
    // one RTO, so the last arrives after the first loss's retransmission.
    assert!(first[99] >= 210 * MS, "{:?}", first[99]);
    assert!(first.windows(2).all(|w| w[0] <= w[1]));
    let (again, lost_again) = lossy_run(42).await;
    assert_eq!((first.clone(), lost), (again, lost_again));
    let (other, _) = lossy_run(43).await;
    assert_ne!(first, other);
}

#[tokio::test(start_paused = true)]
async fn stall_holds_one_direction_until_resume() {
    let params = LinkParams::with_latency(5 * MS)
        .buffer(1024)
        .max_in_flight(1024);
    let (control, mut a, mut b) = pair(params);
    control.stall(Direction::Forward);
    assert!(control.is_stalled(Direction::Forward));
    a.write_all(b"x").await.unwrap();
    assert!(!readable_within(&mut b, Duration::from_secs(10)).await);
    // The other direction still flows.
    b.write_all(b"y").await.unwrap();
    assert!(readable_within(&mut a, 10 * MS).await);
    // The writer blocks once the link and its buffer are full.
    let big = vec![3u8; 10_000];
    assert!(
        timeout(Duration::from_secs(1), a.write_all(&big))
            .await
            .is_err()
    );

    control.resume(Direction::Forward);
    let resumed = Instant::now();
    let mut first = [0u8; 1];
    b.read_exact(&mut first).await.unwrap();
    assert_eq!(&first, b"x");
    // Bytes that waited past their time go at once.
    assert_eq!(resumed.elapsed(), Duration::ZERO);
    let writer = tokio::spawn(async move {
        a.write_all(b"end").await.unwrap();
        a
    });
    // The timed-out write_all had accepted some prefix of `big`; skip up to the marker.
    let mut tail = Vec::new();
    while !tail.ends_with(b"end") {
        let mut byte = [0u8; 1];
        b.read_exact(&mut byte).await.unwrap();
        tail.push(byte[0]);
    }
    assert!(
        tail.len() > 1024,
        "only {} bytes had been accepted",
        tail.len()
    );
    drop(writer.await.unwrap());
}

#[tokio::test(start_paused = true)]
async fn cut_stops_both_directions_until_heal() {
    let (control, mut a, mut b) = pair(LinkParams::with_latency(5 * MS));
    control.cut();
    assert!(control.is_cut());
    a.write_all(b"a").await.unwrap();
    b.write_all(b"b").await.unwrap();
    assert!(!readable_within(&mut b, Duration::from_secs(60)).await);
    assert!(!readable_within(&mut a, Duration::from_secs(60)).await);
    // A stall of one direction outlives the heal.
    control.stall(Direction::Backward);
    control.heal();
    assert!(readable_within(&mut b, MS).await);
    assert!(!readable_within(&mut a, Duration::from_secs(1)).await);
    control.resume(Direction::Backward);
    assert!(readable_within(&mut a, MS).await);
}

#[tokio::test(start_paused = true)]
async fn set_params_applies_to_later_segments() {
    let (control, mut a, mut b) = pair(LinkParams::with_latency(10 * MS));
    control.set_params_one_way(Direction::Forward, LinkParams::with_latency(100 * MS));
    assert_eq!(control.params(Direction::Forward).latency, 100 * MS);
    assert_eq!(control.params(Direction::Backward).latency, 10 * MS);
    let start = Instant::now();
    a.write_all(b"z").await.unwrap();
    assert!(!readable_within(&mut b, 99 * MS).await);
    assert!(readable_within(&mut b, 2 * MS).await);
    assert!(start.elapsed() >= 100 * MS);
}

#[tokio::test(start_paused = true)]
async fn reset_gives_eof_and_write_errors_on_both_sides() {
    let (control, mut a, mut b) = pair(LinkParams::with_latency(20 * MS));
    a.write_all(b"in flight").await.unwrap();
    sleep(MS).await;
    control.reset();
    sleep(MS).await;
    let mut buf = Vec::new();
    assert_eq!(a.read_to_end(&mut buf).await.unwrap(), 0);
    assert_eq!(b.read_to_end(&mut buf).await.unwrap(), 0, "{buf:?}");
    assert!(a.write_all(b"more").await.is_err());
    assert!(b.write_all(b"more").await.is_err());
    assert_eq!(control.stats().live, 0);
    assert_eq!(control.stats().forward.bytes, 0);

    // Connections made after the reset work.
    let (mut c, mut d) = connect(&control, SimRng::new(2)).unwrap();
    c.write_all(b"ok").await.unwrap();
    let mut got = [0u8; 2];
    d.read_exact(&mut got).await.unwrap();
    assert_eq!(&got, b"ok");
    assert_eq!(control.stats().live, 1);
}

#[tokio::test(start_paused = true)]
async fn dropping_an_end_delivers_what_it_wrote_then_eof() {
    let (control, mut a, mut b) = pair(LinkParams::with_latency(20 * MS));
    a.write_all(b"last words").await.unwrap();
    drop(a);
    let mut got = Vec::new();
    b.read_to_end(&mut got).await.unwrap();
    assert_eq!(got, b"last words");
    sleep(MS).await;
    assert!(b.write_all(b"anyone?").await.is_err());
    assert_eq!(control.stats().live, 0);
}

#[tokio::test(start_paused = true)]
async fn half_close_keeps_the_other_direction() {
    let (_control, mut a, mut b) = pair(LinkParams::with_latency(5 * MS));
    a.write_all(b"req").await.unwrap();
    a.shutdown().await.unwrap();
    let mut got = Vec::new();
    b.read_to_end(&mut got).await.unwrap();
    assert_eq!(got, b"req");
    b.write_all(b"resp").await.unwrap();
    drop(b);
    let mut got = Vec::new();
    a.read_to_end(&mut got).await.unwrap();
    assert_eq!(got, b"resp");
}

#[tokio::test(start_paused = true)]
async fn pumps_stop_when_both_ends_go_even_when_cut() {
    let (control, mut a, mut b) = pair(LinkParams::with_latency(5 * MS));
    control.cut();
    a.write_all(b"stuck").await.unwrap();
    b.write_all(b"stuck").await.unwrap();
    sleep(10 * MS).await;
    assert_eq!(control.stats().live, 1);
    drop(a);
    sleep(10 * MS).await;
    // The pump towards the dropped end stopped; the other still holds bytes for `b`.
    assert_eq!(control.stats().live, 1);
    drop(b);
    sleep(MS).await;
    assert_eq!(control.stats().live, 0);
}

#[test]
fn connect_outside_a_runtime_is_an_error() {
    let control = LinkControl::new(LinkParams::default());
    assert_eq!(
        connect(&control, SimRng::new(0)).err(),
        Some(LinkError::NoRuntime)
    );
}

#[test]
fn transmit_time_rounds_up() {
    let p = LinkParams::default().bandwidth(3);
    assert_eq!(p.transmit_time(1), Duration::from_nanos(333_333_334));
    assert_eq!(p.transmit_time(3), Duration::from_secs(1));
    assert_eq!(LinkParams::default().transmit_time(1 << 30), Duration::ZERO);
}
