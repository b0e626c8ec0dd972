//! One simulated connection: two in-memory byte pipes with TCP-like behaviour.
//!
//! [`connect`] makes a connection out of two `tokio::io::duplex` pairs, one per node, and two
//! pump tasks, one per direction. A pump reads what one node wrote (from the far end of that
//! node's duplex) in segments of at most [`LinkParams::segment`] bytes, computes each
//! segment's delivery time on the tokio clock and writes it, when due, into the other node's
//! duplex. Delivery time of a segment read at `now`:
//!
//! ```text
//! start = max(now, when the previous segment finished transmitting)
//! sent  = start + len / bandwidth                     (0 when bandwidth is unlimited)
//! due   = sent + latency + jitter draw in 0..=jitter  (+ rto if the loss draw hits)
//! due   = max(due, due of the previous segment)       (in order, as TCP)
//! ```
//!
//! A pump holds at most [`LinkParams::max_in_flight`] bytes; beyond that it stops reading and
//! the sender's duplex fills, so the sender's writes block: backpressure, as a full TCP window.
//!
//! A [`LinkControl`] steers every connection made with it (the simulator shares one between
//! all connections of a pair of hosts): parameters per direction, stall and resume per
//! direction, cut and heal (both directions), reset, and counters. A stalled or cut direction
//! keeps its bytes; they are delivered on resume (at once if their time has passed).
//!
//! Ends: a node that drops its [`LinkStream`] makes the pump towards it stop at once (nothing
//! left to deliver to) and the pump from it deliver what it holds, then signal end of file to
//! the other node. Once both pumps have stopped, the other node's writes fail with
//! `BrokenPipe`. [`LinkControl::reset`] stops both pumps of every connection at once: each node
//! reads end of file (after what its own buffer held) and its writes fail, as after a TCP RST.
//! Pumps never outlive both ends.
//!
//! Jitter and loss draws come from the [`SimRng`] given to [`connect`] (one forked stream per
//! direction), so a run is a pure function of its seed.

use std::collections::VecDeque;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{
    AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, DuplexStream, ReadBuf, ReadHalf, WriteHalf,
};
use tokio::sync::watch;
use tokio::time::{Instant, sleep_until};

use crate::rng::SimRng;

/// Loss probabilities are parts of this many (parts per million).
pub const PPM: u32 = 1_000_000;

/// Default retransmission timeout: the delay a lost segment adds, as TCP's minimum RTO.
pub const DEFAULT_RTO: Duration = Duration::from_millis(200);

/// Default capacity of each pipe of a node's duplex, like a socket buffer.
pub const DEFAULT_BUFFER: usize = 64 * 1024;

/// Default bytes a pump holds in flight before it applies backpressure.
pub const DEFAULT_MAX_IN_FLIGHT: usize = 256 * 1024;

/// Default largest segment, the unit of jitter and loss: an Ethernet TCP MSS.
pub const DEFAULT_SEGMENT: usize = 1460;

/// How far ahead a delivery time saturates when a duration would overflow the clock.
const FAR_FUTURE: Duration = Duration::from_secs(100 * 365 * 86_400);

/// Why a connection could not be made.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum LinkError {
    /// [`connect`] was called outside a Tokio runtime, so its pumps cannot be spawned.
    #[error("simulated links need a Tokio runtime to run their pumps")]
    NoRuntime,
}

/// Behaviour of one direction of a link; `Default` is an ideal link (no delay, unlimited).
///
/// Zero `buffer`, `max_in_flight` or `segment` count as one byte.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LinkParams {
    /// One-way propagation delay.
    pub latency: Duration,
    /// Extra delay per segment, uniform in `0..=jitter`; delivery stays in order.
    pub jitter: Duration,
    /// Bytes per second, segments serialised on the wire; 0 means unlimited.
    pub bandwidth: u64,
    /// Probability a segment is lost, in parts per million ([`PPM`]); a lost segment is
    /// delivered `rto` later and holds back the segments after it (TCP never loses bytes).
    pub loss: u32,
    /// Retransmission timeout: what a lost segment costs.
    pub rto: Duration,
    /// Capacity of each pipe of the sending node's duplex (fixed when a connection is made).
    pub buffer: usize,
    /// Bytes a pump holds (read, not yet delivered) before the sender's writes back up.
    pub max_in_flight: usize,
    /// Largest segment a pump reads at once: the unit of jitter and loss.
    pub segment: usize,
}

impl Default for LinkParams {
    fn default() -> Self {
        Self::with_latency(Duration::ZERO)
    }
}

impl LinkParams {
    /// An otherwise ideal link with this one-way latency.
    pub const fn with_latency(latency: Duration) -> Self {
        Self {
            latency,
            jitter: Duration::ZERO,
            bandwidth: 0,
            loss: 0,
            rto: DEFAULT_RTO,
            buffer: DEFAULT_BUFFER,
            max_in_flight: DEFAULT_MAX_IN_FLIGHT,
            segment: DEFAULT_SEGMENT,
        }
    }

    /// The same parameters with this jitter.
    pub const fn jitter(mut self, jitter: Duration) -> Self {
        self.jitter = jitter;
        self
    }

    /// The same parameters with this bandwidth in bytes per second (0 = unlimited).
    pub const fn bandwidth(mut self, bytes_per_sec: u64) -> Self {
        self.bandwidth = bytes_per_sec;
        self
    }

    /// The same parameters with this loss probability in parts per million.
    pub const fn loss(mut self, ppm: u32) -> Self {
        self.loss = ppm;
        self
    }

    /// The same parameters with this retransmission timeout.
    pub const fn rto(mut self, rto: Duration) -> Self {
        self.rto = rto;
        self
    }

    /// The same parameters with this duplex buffer capacity.
    pub const fn buffer(mut self, bytes: usize) -> Self {
        self.buffer = bytes;
        self
    }

    /// The same parameters with this in-flight limit.
    pub const fn max_in_flight(mut self, bytes: usize) -> Self {
        self.max_in_flight = bytes;
        self
    }

    /// The same parameters with this largest segment.
    pub const fn segment(mut self, bytes: usize) -> Self {
        self.segment = bytes;
        self
    }

    /// Time to put `len` bytes on the wire at this bandwidth, rounded up to a nanosecond.
    fn transmit_time(&self, len: usize) -> Duration {
        if self.bandwidth == 0 {
            return Duration::ZERO;
        }
        let nanos = (len as u128 * 1_000_000_000).div_ceil(u128::from(self.bandwidth));
        Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX))
    }
}

/// A direction of a connection: `Forward` carries what the first end of [`connect`] writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Direction {
    /// From the first end (the dialer, for a connection [`connect`] made) to the second.
    Forward,
    /// From the second end to the first.
    Backward,
}

impl Direction {
    /// Both directions, `Forward` first.
    pub const BOTH: [Direction; 2] = [Direction::Forward, Direction::Backward];

    /// The other direction.
    pub const fn reverse(self) -> Self {
        match self {
            Direction::Forward => Direction::Backward,
            Direction::Backward => Direction::Forward,
        }
    }

    /// Index into per-direction arrays.
    const fn index(self) -> usize {
        match self {
            Direction::Forward => 0,
            Direction::Backward => 1,
        }
    }
}

/// Counters of one direction, summed over the connections of a [`LinkControl`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DirectionStats {
    /// Bytes delivered to the receiving node.
    pub bytes: u64,
    /// Segments delivered in full.
    pub segments: u64,
    /// Segments lost once and delivered one retransmission timeout late.
    pub retransmissions: u64,
}

/// Counters of a [`LinkControl`]: both directions and its connections.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LinkStats {
    /// What travelled `Forward`.
    pub forward: DirectionStats,
    /// What travelled `Backward`.
    pub backward: DirectionStats,
    /// Connections with a pump still running.
    pub live: usize,
    /// Connections ever made.
    pub opened: u64,
}

impl LinkStats {
    /// The counters of one direction.
    pub const fn direction(&self, dir: Direction) -> DirectionStats {
        match dir {
            Direction::Forward => self.forward,
            Direction::Backward => self.backward,
        }
    }

    /// Bytes delivered in both directions.
    pub const fn bytes(&self) -> u64 {
        self.forward.bytes + self.backward.bytes
    }
}

/// What the pumps of a control watch.
#[derive(Clone, Copy, Debug)]
struct ControlState {
    /// Parameters per direction.
    params: [LinkParams; 2],
    /// Directions stalled one by one.
    stalled: [bool; 2],
    /// Both directions cut (a partition), independent of `stalled`.
    cut: bool,
    /// Bumped by every reset; a pump born under an older generation stops.
    generation: u64,
}

/// Atomic counters of one direction.
#[derive(Debug, Default)]
struct Counters {
    bytes: AtomicU64,
    segments: AtomicU64,
    retransmissions: AtomicU64,
}

/// State shared by a control's handles and pumps.
#[derive(Debug)]
struct Shared {
    state: watch::Sender<ControlState>,
    counters: [Counters; 2],
    live: AtomicUsize,
    opened: AtomicU64,
}

/// Steers the connections made with it: parameters, stalls, cuts, resets and counters.
///
/// Cheap to clone (all clones steer the same connections) and `Send + Sync`. Changes reach
/// live connections at once: parameters apply to segments read after the change.
#[derive(Clone, Debug)]
pub struct LinkControl {
    shared: Arc<Shared>,
}

impl LinkControl {
    /// A control with the same parameters in both directions.
    pub fn new(params: LinkParams) -> Self {
        Self::asymmetric(params, params)
    }

    /// A control with different parameters per direction.
    pub fn asymmetric(forward: LinkParams, backward: LinkParams) -> Self {
        let (state, _) = watch::channel(ControlState {
            params: [forward, backward],
            stalled: [false; 2],
            cut: false,
            generation: 0,
        });
        Self {
            shared: Arc::new(Shared {
                state,
                counters: Default::default(),
                live: AtomicUsize::new(0),
                opened: AtomicU64::new(0),
            }),
        }
    }

    /// The parameters of one direction.
    pub fn params(&self, dir: Direction) -> LinkParams {
        self.shared.state.borrow().params[dir.index()]
    }

    /// Sets the parameters of both directions (for segments read from now on).
    pub fn set_params(&self, params: LinkParams) {
        self.modify(|s| s.params = [params; 2]);
    }

    /// Sets the parameters of one direction (for segments read from now on).
    pub fn set_params_one_way(&self, dir: Direction, params: LinkParams) {
        self.modify(|s| s.params[dir.index()] = params);
    }

    /// Stops delivering in one direction; bytes wait, writers block once buffers fill.
    pub fn stall(&self, dir: Direction) {
        self.modify(|s| s.stalled[dir.index()] = true);
    }

    /// Delivers again in one direction (what waited and is due goes at once).
    pub fn resume(&self, dir: Direction) {
        self.modify(|s| s.stalled[dir.index()] = false);
    }

    /// Whether one direction is stalled by [`stall`](Self::stall) (a cut is separate).
    pub fn is_stalled(&self, dir: Direction) -> bool {
        self.shared.state.borrow().stalled[dir.index()]
    }

    /// Partitions: stops delivering in both directions until [`heal`](Self::heal).
    pub fn cut(&self) {
        self.modify(|s| s.cut = true);
    }

    /// Ends a [`cut`](Self::cut); directions stalled one by one stay stalled.
    pub fn heal(&self) {
        self.modify(|s| s.cut = false);
    }

    /// Whether the link is cut.
    pub fn is_cut(&self) -> bool {
        self.shared.state.borrow().cut
    }

    /// Resets every live connection, as a TCP RST: bytes in flight are dropped, each node
    /// reads end of file and its writes fail. Connections made afterwards are unaffected.
    pub fn reset(&self) {
        self.modify(|s| s.generation += 1);
    }

    /// The counters so far.
    pub fn stats(&self) -> LinkStats {
        let dir = |d: Direction| {
            let c = &self.shared.counters[d.index()];
            DirectionStats {
                bytes: c.bytes.load(Ordering::Relaxed),
                segments: c.segments.load(Ordering::Relaxed),
                retransmissions: c.retransmissions.load(Ordering::Relaxed),
            }
        };
        LinkStats {
            forward: dir(Direction::Forward),
            backward: dir(Direction::Backward),
            live: self.shared.live.load(Ordering::Relaxed),
            opened: self.shared.opened.load(Ordering::Relaxed),
        }
    }

    /// Applies `f` to the state and wakes the pumps if it changed anything.
    fn modify(&self, f: impl FnOnce(&mut ControlState)) {
        self.shared.state.send_if_modified(|s| {
            let before = (s.params, s.stalled, s.cut, s.generation);
            f(s);
            before != (s.params, s.stalled, s.cut, s.generation)
        });
    }
}

/// One node's end of a simulated connection: an ordered, reliable byte stream.
///
/// Dropping it tells the link at once that this node is gone.
#[derive(Debug)]
pub struct LinkStream {
    inner: DuplexStream,
    /// 0 for the first end of [`connect`], 1 for the second.
    side: usize,
    /// Which ends are gone; its receivers are the pumps.
    closed: Arc<watch::Sender<[bool; 2]>>,
}

impl Drop for LinkStream {
    fn drop(&mut self) {
        let side = self.side;
        self.closed.send_modify(|c| c[side] = true);
    }
}

impl AsyncRead for LinkStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for LinkStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// Makes a connection governed by `control` and returns its two ends: what the first end
/// writes travels [`Direction::Forward`] to the second.
///
/// Spawns the two pumps on the current Tokio runtime (a current-thread runtime with a paused
/// clock in the simulator). The first end's duplex has the `Forward` buffer size, the second
/// end's the `Backward` one.
pub fn connect(
    control: &LinkControl,
    mut rng: SimRng,
) -> Result<(LinkStream, LinkStream), LinkError> {
    let runtime = tokio::runtime::Handle::try_current().map_err(|_| LinkError::NoRuntime)?;
    let state = *control.shared.state.borrow();
    let (a_node, a_far) = tokio::io::duplex(state.params[0].buffer.max(1));
    let (b_node, b_far) = tokio::io::duplex(state.params[1].buffer.max(1));
    let (a_read, a_write) = tokio::io::split(a_far);
    let (b_read, b_write) = tokio::io::split(b_far);
    let (closed, _) = watch::channel([false; 2]);
    let closed = Arc::new(closed);

    control.shared.live.fetch_add(1, Ordering::Relaxed);
    control.shared.opened.fetch_add(1, Ordering::Relaxed);
    let live = Arc::new(LiveToken(Arc::clone(&control.shared)));
    let pumps = [
        (Direction::Forward, a_read, b_write),
        (Direction::Backward, b_read, a_write),
    ];
    for (dir, src, dst) in pumps {
        let pump = Pump {
            dir,
            src,
            dst,
            rng: rng.fork(dir.index() as u64),
            control: control.shared.state.subscribe(),
            closed: closed.subscribe(),
            generation: state.generation,
            live: Arc::clone(&live),
        };
        runtime.spawn(pump.run());
    }
    let end = |inner, side| LinkStream {
        inner,
        side,
        closed: Arc::clone(&closed),
    };
    Ok((end(a_node, 0), end(b_node, 1)))
}

/// Counts a connection live while either of its pumps runs.
#[derive(Debug)]
struct LiveToken(Arc<Shared>);

impl Drop for LiveToken {
    fn drop(&mut self) {
        self.0.live.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A segment in flight.
#[derive(Debug)]
struct Segment {
    data: Vec<u8>,
    /// Bytes of `data` already written to the receiving node.
    delivered: usize,
    due: Instant,
}

/// One direction of a connection.
struct Pump {
    dir: Direction,
    /// The far end of the sending node's duplex.
    src: ReadHalf<DuplexStream>,
    /// The far end of the receiving node's duplex.
    dst: WriteHalf<DuplexStream>,
    rng: SimRng,
    control: watch::Receiver<ControlState>,
    closed: watch::Receiver<[bool; 2]>,
    generation: u64,
    live: Arc<LiveToken>,
}

impl Pump {
    /// Carries segments until a reset, the receiving node leaves, or the sending node's end
    /// of file has been delivered.
    async fn run(self) {
        let Pump {
            dir,
            mut src,
            mut dst,
            mut rng,
            mut control,
            mut closed,
            generation,
            live,
        } = self;
        let i = dir.index();
        // The receiving node is side 1 for Forward, side 0 for Backward.
        let receiver = 1 - i;
        let counters = &live.0.counters[i];
        let mut queue: VecDeque<Segment> = VecDeque::new();
        let mut queued = 0usize;
        let mut wire_free = Instant::now();
        let mut last_due = wire_free;
        let mut src_open = true;
        let mut buf = Vec::new();
        loop {
            let (params, delivering) = {
                let s = control.borrow_and_update();
                if s.generation != generation {
                    return;
                }
                (s.params[i], !s.cut && !s.stalled[i])
            };
            if closed.borrow_and_update()[receiver] {
                return;
            }
            if !src_open && queue.is_empty() {
                // The sender's end of file, after everything it wrote.
                let _ = dst.shutdown().await;
                return;
            }
            let now = Instant::now();
            let due = queue.front().map(|s| s.due);
            let ready = delivering && due.is_some_and(|d| d <= now);
            let wake = due.filter(|&d| delivering && d > now);
            let can_read = src_open && queued < params.max_in_flight.max(1);
            buf.resize(params.segment.max(1), 0);
            let head: &[u8] = queue.front().map_or(&[][..], |s| &s.data[s.delivered..]);
            tokio::select! {
                biased;
                changed = control.changed() => {
                    if changed.is_err() {
                        return;
                    }
                }
                changed = closed.changed() => {
                    if changed.is_err() {
                        // Both ends are gone.
                        return;
                    }
                }
                written = dst.write(head), if ready => match written {
                    Ok(n) if n > 0 => {
                        counters.bytes.fetch_add(n as u64, Ordering::Relaxed);
                        if let Some(seg) = queue.front_mut() {
                            seg.delivered += n;
                            if seg.delivered == seg.data.len() {
                                queued -= seg.data.len();
                                queue.pop_front();
                                counters.segments.fetch_add(1, Ordering::Relaxed);
                            }
                        }
                    }
                    // The receiving node is gone.
                    _ => return,
                },
                () = sleep_until(wake.unwrap_or(now)), if wake.is_some() => {}
                read = src.read(&mut buf), if can_read => match read {
                    Ok(n) if n > 0 => {
                        let now = Instant::now();
                        let start = now.max(wire_free);
                        wire_free = later(start, params.transmit_time(n));
                        let jitter_nanos = u64::try_from(params.jitter.as_nanos()).unwrap_or(u64::MAX);
                        // Both draws happen for every segment, so tuning one parameter does
                        // not shift the other's stream.
                        let jitter = Duration::from_nanos(rng.below(jitter_nanos.saturating_add(1)));
                        let lost = rng.chance(params.loss, PPM);
                        let mut due = later(later(wire_free, params.latency), jitter);
                        if lost {
                            due = later(due, params.rto);
                            counters.retransmissions.fetch_add(1, Ordering::Relaxed);
                        }
                        let due = due.max(last_due);
                        last_due = due;
                        queue.push_back(Segment { data: buf[..n].to_vec(), delivered: 0, due });
                        queued += n;
                    }
                    // The sending node closed its write side or is gone.
                    _ => src_open = false,
                },
            }
        }
    }
}

/// `t + d`, saturating far in the future instead of overflowing the clock.
fn later(t: Instant, d: Duration) -> Instant {
    t.checked_add(d)
        .or_else(|| t.checked_add(FAR_FUTURE))
        .unwrap_or(t)
}

#[cfg(test)]
mod tests;
