use std::pin::pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll, Waker};

use metrics_util::debugging::{DebugValue, DebuggingRecorder};

use super::*;

const MB: u64 = 1_000_000;

/// A clock the test moves by hand (what a sleep of the returned wait would do).
#[derive(Debug, Default)]
struct ManualClock(AtomicU64);

impl ManualClock {
    fn advance(&self, by: Duration) {
        let ms = u64::try_from(by.as_millis()).unwrap();
        self.0.fetch_add(ms, Ordering::Relaxed);
    }
}

impl Clock for ManualClock {
    fn now_ms(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

fn poll_once(f: impl Future<Output = ()>) -> Poll<()> {
    pin!(f).poll(&mut Context::from_waker(Waker::noop()))
}

#[test]
fn zero_and_absent_limits_are_unlimited() {
    assert_eq!(
        BandwidthLimits::new(None, Some(0)),
        BandwidthLimits::default()
    );
    let l = BandwidthLimits::new(Some(MB), Some(0));
    assert_eq!(l.download_bytes_per_sec, Some(MB));
    assert_eq!(l.upload_bytes_per_sec, None);
}

#[test]
fn one_mb_per_second_spreads_five_mb_over_the_seconds_after_the_burst() {
    let clock = Arc::new(ManualClock::default());
    let bw = Bandwidth::new(BandwidthLimits::new(Some(MB), None), clock.clone());
    let mut received = 0;
    while received < 5 * MB {
        // Frames of up to 16 KiB, each followed by the wait `downloaded` sleeps.
        let n = 16_384.min(5 * MB - received);
        received += n;
        clock.advance(bw.charge(Flow::Download, n));
    }
    // The first second's worth is the burst; the other 4 MB take 4 s.
    let elapsed = clock.now_ms();
    assert!((4_000..=4_001).contains(&elapsed), "{elapsed}");
    // Upload is unlimited and independent.
    assert_eq!(bw.charge(Flow::Upload, u64::MAX), Duration::ZERO);
    assert_eq!(bw.limits().upload_bytes_per_sec, None);
}

#[test]
fn sessions_share_one_budget() {
    let clock = Arc::new(ManualClock::default());
    let bw = Bandwidth::new(BandwidthLimits::new(None, Some(MB)), clock.clone());
    assert_eq!(bw.charge(Flow::Upload, MB / 2), Duration::ZERO, "session a");
    assert_eq!(bw.charge(Flow::Upload, MB / 2), Duration::ZERO, "session b");
    // Both now wait for the debt of a third write, whoever made it.
    assert_eq!(
        bw.charge(Flow::Upload, MB / 4),
        Duration::from_millis(250),
        "a"
    );
    assert_eq!(
        bw.charge(Flow::Upload, MB / 4),
        Duration::from_millis(500),
        "b"
    );
    clock.advance(Duration::from_millis(500));
    assert_eq!(bw.charge(Flow::Upload, 0), Duration::ZERO);
}

#[test]
fn unlimited_and_within_budget_return_at_once() {
    // Polled once with no runtime: a future that slept would panic or be pending.
    let bw = Bandwidth::new(BandwidthLimits::default(), Arc::new(ManualClock::default()));
    assert_eq!(poll_once(bw.downloaded(u64::MAX)), Poll::Ready(()));
    assert_eq!(poll_once(bw.uploaded(u64::MAX)), Poll::Ready(()));
    let limits = BandwidthLimits::new(Some(MB), Some(MB));
    let bw = Bandwidth::new(limits, Arc::new(ManualClock::default()));
    assert_eq!(poll_once(bw.downloaded(MB)), Poll::Ready(()));
    assert_eq!(poll_once(bw.uploaded(MB)), Poll::Ready(()));
}

#[tokio::test]
async fn over_budget_sleeps_on_tokio_time() {
    let clock = Arc::new(crate::clock::NodeClock::starting_at(1_000));
    let limits = BandwidthLimits::new(Some(MIN_RATE_BYTES_PER_SEC), None);
    let bw = Bandwidth::new(limits, clock);
    bw.downloaded(MIN_RATE_BYTES_PER_SEC).await;
    assert_eq!(poll_once(bw.uploaded(MB)), Poll::Ready(()));
    // 6,554 bytes over at 65,536 bytes/s: 100 ms.
    let start = std::time::Instant::now();
    assert_eq!(poll_once(bw.downloaded(6_554)), Poll::Pending);
    bw.downloaded(0).await;
    assert!(
        start.elapsed() >= Duration::from_millis(95),
        "{:?}",
        start.elapsed()
    );
}

#[test]
fn metrics_report_the_limits_and_the_time_throttled() {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    metrics::with_local_recorder(&recorder, || {
        let clock = Arc::new(ManualClock::default());
        let bw = Bandwidth::new(BandwidthLimits::new(Some(MB), None), clock);
        assert_eq!(bw.charge(Flow::Download, 2 * MB), Duration::from_secs(1));
        assert_eq!(
            bw.charge(Flow::Download, MB / 2),
            Duration::from_millis(1_500)
        );
        assert_eq!(bw.charge(Flow::Upload, 10 * MB), Duration::ZERO);
    });
    let snapshot = snapshotter.snapshot().into_vec();
    let value = |name: &str, direction: &str| {
        snapshot
            .iter()
            .find(|(k, _, _, _)| {
                k.key().name() == name
                    && k.key()
                        .labels()
                        .any(|l| l.key() == "direction" && l.value() == direction)
            })
            .map(|(_, _, _, v)| match v {
                DebugValue::Gauge(g) => g.into_inner(),
                DebugValue::Counter(c) => *c as f64,
                DebugValue::Histogram(_) => panic!("{name} is a histogram"),
            })
    };
    assert_eq!(value(BANDWIDTH_LIMIT, "download"), Some(MB as f64));
    assert_eq!(value(BANDWIDTH_LIMIT, "upload"), Some(0.0));
    assert_eq!(value(THROTTLED_MS, "download"), Some(2_500.0));
    assert_eq!(value(THROTTLED_MS, "upload"), None);
}
