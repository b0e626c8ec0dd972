//! Noise transport benchmarks: handshakes per second, and encrypted throughput over loopback
//! TCP compared with snow's in-memory encrypt+decrypt of the same frames in the same run.
//!
//! Run: `cargo bench -p spacetime-actors --bench transport`. Both sessions run on one thread,
//! like the in-memory baseline (which encrypts and decrypts on one thread), so the ratio of
//! `loopback_frames` to `in_memory` isolates what sockets and framing cost; `loopback_messages`
//! adds encoding and canonical decoding of the message.

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use spacetime::wire::{Headers, MAX_NOISE_PLAINTEXT, Message, encode_frame};
use spacetime::{BoundedVec, Genesis};
use spacetime_actors::net::{NOISE_PARAMS, PROLOGUE, Role, Session, StaticKey, handshake};
use tokio::net::{TcpListener, TcpStream};
use tokio::runtime::Runtime;

fn runtime() -> Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap_or_else(|e| panic!("runtime: {e}"))
}

async fn pair(a: &StaticKey, b: &StaticKey) -> (Session, Session) {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap_or_else(|e| panic!("bind: {e}"));
    let addr = listener
        .local_addr()
        .unwrap_or_else(|e| panic!("addr: {e}"));
    let connect = async {
        let stream = TcpStream::connect(addr)
            .await
            .unwrap_or_else(|e| panic!("connect: {e}"));
        handshake(
            stream,
            a,
            Role::Initiator,
            Duration::from_secs(5),
            spacetime::NodeRng::from_u64(1),
        )
        .await
    };
    let accept = async {
        let (stream, _) = listener
            .accept()
            .await
            .unwrap_or_else(|e| panic!("accept: {e}"));
        handshake(
            stream,
            b,
            Role::Responder,
            Duration::from_secs(5),
            spacetime::NodeRng::from_u64(2),
        )
        .await
    };
    let (x, y) = tokio::join!(connect, accept);
    (
        x.unwrap_or_else(|e| panic!("{e}")),
        y.unwrap_or_else(|e| panic!("{e}")),
    )
}

fn headers_message(count: usize) -> Message {
    let header = Genesis::builtin("dev")
        .unwrap_or_else(|e| panic!("{e}"))
        .block
        .header;
    Message::Headers(Headers {
        headers: BoundedVec::try_from_vec(vec![header; count]).unwrap_or_default(),
    })
}

/// An in-memory snow session pair.
fn memory_pair() -> (snow::TransportState, snow::TransportState) {
    let build = |initiator: bool| {
        let b = snow::Builder::new(NOISE_PARAMS.parse().unwrap_or_else(|e| panic!("{e}")));
        let kp = b.generate_keypair().unwrap_or_else(|e| panic!("{e}"));
        let b = b
            .local_private_key(&kp.private)
            .unwrap_or_else(|e| panic!("{e}"));
        let b = b.prologue(PROLOGUE).unwrap_or_else(|e| panic!("{e}"));
        if initiator {
            b.build_initiator()
        } else {
            b.build_responder()
        }
        .unwrap_or_else(|e| panic!("{e}"))
    };
    let (mut i, mut r) = (build(true), build(false));
    let (mut buf, mut out) = (vec![0u8; 65535], vec![0u8; 65535]);
    let n = i
        .write_message(&[], &mut buf)
        .unwrap_or_else(|e| panic!("{e}"));
    r.read_message(&buf[..n], &mut out)
        .unwrap_or_else(|e| panic!("{e}"));
    let n = r
        .write_message(&[], &mut buf)
        .unwrap_or_else(|e| panic!("{e}"));
    i.read_message(&buf[..n], &mut out)
        .unwrap_or_else(|e| panic!("{e}"));
    let n = i
        .write_message(&[], &mut buf)
        .unwrap_or_else(|e| panic!("{e}"));
    r.read_message(&buf[..n], &mut out)
        .unwrap_or_else(|e| panic!("{e}"));
    (
        i.into_transport_mode().unwrap_or_else(|e| panic!("{e}")),
        r.into_transport_mode().unwrap_or_else(|e| panic!("{e}")),
    )
}

fn handshakes(c: &mut Criterion) {
    let rt = runtime();
    let (a, b) = (
        StaticKey::generate().unwrap_or_else(|e| panic!("{e}")),
        StaticKey::generate().unwrap_or_else(|e| panic!("{e}")),
    );
    let mut g = c.benchmark_group("noise_handshake");
    g.throughput(Throughput::Elements(1));
    g.bench_function("loopback_tcp", |bch| bch.iter(|| rt.block_on(pair(&a, &b))));
    g.bench_function("in_memory", |bch| bch.iter(memory_pair));
    g.finish();
}

fn throughput(c: &mut Criterion) {
    let rt = runtime();
    let (a, b) = (
        StaticKey::generate().unwrap_or_else(|e| panic!("{e}")),
        StaticKey::generate().unwrap_or_else(|e| panic!("{e}")),
    );
    let (mut tx, mut rx) = rt.block_on(pair(&a, &b));
    let (mut mi, mut mr) = memory_pair();
    let mut g = c.benchmark_group("noise_throughput");
    for count in [4usize, 256, 2000] {
        let message = headers_message(count);
        let frame = encode_frame(&message);
        let payload = frame.len() - 4;
        // Overhead on the wire beyond the payload, measured on the socket.
        let before = tx.traffic().bytes_out;
        rt.block_on(async {
            tx.send(&message).await.unwrap_or_else(|e| panic!("{e}"));
            rx.recv().await.unwrap_or_else(|e| panic!("{e}"))
        });
        let wire = tx.traffic().bytes_out - before;
        eprintln!(
            "overhead: payload {payload} B -> {wire} B on the wire ({} B extra)",
            wire as usize - payload
        );
        // A burst of about 256 kB per iteration: sustained throughput, not round-trip latency.
        let burst = (256 * 1024 / frame.len()).max(1);
        g.throughput(Throughput::Bytes((burst * frame.len()) as u64));
        // Transport alone: encrypt, socket, decrypt, deframe (what the cipher limits).
        g.bench_function(format!("loopback_frames_{payload}B"), |bch| {
            bch.iter_custom(|iters| {
                rt.block_on(async {
                    let start = Instant::now();
                    for _ in 0..iters {
                        let send = async {
                            // Queue the burst and write it at once, as a peer draining its
                            // outgoing queue does.
                            for _ in 0..burst {
                                tx.queue_frame(black_box(&frame))
                                    .unwrap_or_else(|e| panic!("{e}"));
                            }
                            tx.flush().await.unwrap_or_else(|e| panic!("{e}"));
                        };
                        let recv = async {
                            for _ in 0..burst {
                                black_box(rx.recv_frame().await.unwrap_or_else(|e| panic!("{e}")));
                            }
                        };
                        tokio::join!(send, recv);
                    }
                    start.elapsed()
                })
            })
        });
        // The full message path: encode, transport, canonical decode.
        g.bench_function(format!("loopback_messages_{payload}B"), |bch| {
            bch.iter_custom(|iters| {
                rt.block_on(async {
                    let start = Instant::now();
                    for _ in 0..iters {
                        let send = async {
                            for _ in 0..burst {
                                tx.send(black_box(&message))
                                    .await
                                    .unwrap_or_else(|e| panic!("{e}"));
                            }
                        };
                        let recv = async {
                            for _ in 0..burst {
                                black_box(rx.recv().await.unwrap_or_else(|e| panic!("{e}")));
                            }
                        };
                        tokio::join!(send, recv);
                    }
                    start.elapsed()
                })
            })
        });
        let (mut ct, mut pt) = (vec![0u8; 65535], vec![0u8; 65535]);
        g.bench_function(format!("in_memory_{payload}B"), |bch| {
            bch.iter(|| {
                for _ in 0..burst {
                    for chunk in frame.chunks(MAX_NOISE_PLAINTEXT) {
                        let n = mi
                            .write_message(chunk, &mut ct)
                            .unwrap_or_else(|e| panic!("{e}"));
                        black_box(
                            mr.read_message(&ct[..n], &mut pt)
                                .unwrap_or_else(|e| panic!("{e}")),
                        );
                    }
                }
            })
        });
    }
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().measurement_time(Duration::from_secs(3)).warm_up_time(Duration::from_secs(1));
    targets = handshakes, throughput
}
criterion_main!(benches);
