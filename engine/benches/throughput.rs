//! Engine-only PUSH -> PULL throughput, zeropipe next to zmq.rs (the `zeromq` crate), over
//! tcp loopback and ipc, without Node in the way.
//!
//! Both libraries get the same shape: a fresh 2-worker multi-thread tokio runtime per run,
//! PULL binds, PUSH connects, one warm-up message (so the handshake is not timed), then one
//! task sends N messages with the library's async send while another receives N with its
//! async recv. The clock runs from just before the first send to the last receive.
//! Payloads are one prebuilt `Bytes` cloned per message, so the run measures the engines and
//! not the allocation of payloads.
//!
//! Rows: `zeropipe` (`recv().await` per message), `zeropipe (batch recv)` (`try_recv_batch`
//! with a `recv().await` fallback, as the Node binding drains) and `zmq.rs`. Rounds
//! alternate between the rows so that machine noise is spread over all of them.
//!
//! Environment:
//! - `ROUNDS` (default 3): alternating rounds per case.
//! - `SMOKE=1`: tiny message counts and one round, to check that everything runs.
//! - `CASE=tcp:16` (comma-separated, transport and/or size; `tcp`, `ipc:65536` also work):
//!   run only the matching cases.
//! - `LIBS=zeropipe,batch,zmq.rs`: run only these rows (e.g. `LIBS=zeropipe` under perf).
//! - `SCALE` (default 1.0): multiplies every message count.
//!
//! The process allocator is mimalloc, as in the Node addon (src/lib.rs). Building with
//! `BENCH_ALLOC=system` (read at compile time; cargo rebuilds when it changes) uses the
//! system allocator instead, which matters for the engine's large-message receive path.

use std::alloc::{GlobalAlloc, Layout, System};
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use zeromq::{Socket as _, SocketRecv, SocketSend, ZmqMessage};
use zeropipe_engine::{Message, Socket, SocketOptions, SocketType};

/// Dispatches to the allocator chosen at build time; the choice is a constant, so each call
/// compiles down to the one allocator.
struct BenchAlloc;

fn system_alloc() -> bool {
    matches!(option_env!("BENCH_ALLOC"), Some("system"))
}

fn allocator_name() -> &'static str {
    if system_alloc() {
        "system allocator"
    } else {
        "mimalloc"
    }
}

// SAFETY: forwards every call unchanged to one allocator, the same one for the whole run.
unsafe impl GlobalAlloc for BenchAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if system_alloc() {
            System.alloc(layout)
        } else {
            mimalloc::MiMalloc.alloc(layout)
        }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if system_alloc() {
            System.dealloc(ptr, layout)
        } else {
            mimalloc::MiMalloc.dealloc(ptr, layout)
        }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if system_alloc() {
            System.alloc_zeroed(layout)
        } else {
            mimalloc::MiMalloc.alloc_zeroed(layout)
        }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if system_alloc() {
            System.realloc(ptr, layout, new_size)
        } else {
            mimalloc::MiMalloc.realloc(ptr, layout, new_size)
        }
    }
}

#[global_allocator]
static GLOBAL: BenchAlloc = BenchAlloc;

const SIZES: [usize; 4] = [16, 1024, 64 * 1024, 1024 * 1024];
/// What the Node binding asks for per `tryReceive` (RECEIVE_BATCH in index.js).
const RECV_BATCH: usize = 256;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Transport {
    Tcp,
    Ipc,
}

impl Transport {
    fn name(self) -> &'static str {
        match self {
            Transport::Tcp => "tcp",
            Transport::Ipc => "ipc",
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Lib {
    Ours,
    OursBatch,
    Zmqrs,
}

impl Lib {
    fn name(self) -> &'static str {
        match self {
            Lib::Ours => "zeropipe",
            Lib::OursBatch => "zeropipe (batch recv)",
            Lib::Zmqrs => "zmq.rs",
        }
    }

    fn key(self) -> &'static str {
        match self {
            Lib::Ours => "zeropipe",
            Lib::OursBatch => "batch",
            Lib::Zmqrs => "zmq.rs",
        }
    }
}

struct Config {
    rounds: usize,
    smoke: bool,
    scale: f64,
    cases: Vec<(Transport, usize)>,
    libs: Vec<Lib>,
}

fn config() -> Config {
    let smoke = std::env::var("SMOKE").map(|v| v == "1").unwrap_or(false);
    let rounds = if smoke {
        1
    } else {
        std::env::var("ROUNDS")
            .ok()
            .and_then(|v| v.parse().ok())
            .filter(|&r: &usize| r > 0)
            .unwrap_or(3)
    };
    let scale = std::env::var("SCALE")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|&s: &f64| s > 0.0)
        .unwrap_or(1.0);

    let mut cases = Vec::new();
    for t in [Transport::Tcp, Transport::Ipc] {
        for s in SIZES {
            cases.push((t, s));
        }
    }
    if let Ok(filter) = std::env::var("CASE") {
        let wanted: Vec<(Option<Transport>, Option<usize>)> = filter
            .split(',')
            .filter(|f| !f.is_empty())
            .map(|f| {
                let mut parts = f.split(':');
                let first = parts.next().unwrap_or("");
                let (t, size) = match first {
                    "tcp" => (Some(Transport::Tcp), parts.next()),
                    "ipc" => (Some(Transport::Ipc), parts.next()),
                    _ => (None, Some(first)),
                };
                let size =
                    size.map(|s| s.parse::<usize>().expect("CASE size must be a byte count"));
                (t, size)
            })
            .collect();
        cases.retain(|&(t, s)| {
            wanted
                .iter()
                .any(|&(wt, ws)| wt.is_none_or(|w| w == t) && ws.is_none_or(|w| w == s))
        });
        // A size outside the default list is still a valid single case.
        if cases.is_empty() {
            for (wt, ws) in &wanted {
                if let Some(size) = ws {
                    for t in [Transport::Tcp, Transport::Ipc] {
                        if wt.is_none_or(|w| w == t) {
                            cases.push((t, *size));
                        }
                    }
                }
            }
        }
    }

    let mut libs = vec![Lib::Ours, Lib::OursBatch, Lib::Zmqrs];
    if let Ok(filter) = std::env::var("LIBS") {
        let wanted: Vec<&str> = filter.split(',').collect();
        libs.retain(|l| wanted.contains(&l.key()));
    }
    Config {
        rounds,
        smoke,
        scale,
        cases,
        libs,
    }
}

/// Messages per run, from a payload budget per transport (ipc moves bytes about twice as
/// fast as tcp loopback here) with a cap on the count for small messages and a floor for
/// the large ones; aims at roughly 0.5-1 s per run.
fn message_count(cfg: &Config, t: Transport, size: usize) -> usize {
    if cfg.smoke {
        return (20_000_000 / size.max(1000)).clamp(20, 5_000);
    }
    let (budget, cap) = match t {
        Transport::Tcp => (600_000_000, 1_000_000),
        Transport::Ipc => (1_200_000_000, 2_000_000),
    };
    let n = (budget / size).clamp(500, cap);
    ((n as f64 * cfg.scale) as usize).max(1)
}

static IPC_SEQ: AtomicUsize = AtomicUsize::new(0);

/// The bind address, and for ipc the file to clean up after the run.
fn bind_address(t: Transport, lib: Lib) -> (String, Option<PathBuf>) {
    match t {
        Transport::Tcp => match lib {
            Lib::Zmqrs => ("tcp://127.0.0.1:0".to_string(), None),
            _ => ("tcp://127.0.0.1:*".to_string(), None),
        },
        Transport::Ipc => {
            let seq = IPC_SEQ.fetch_add(1, Ordering::Relaxed);
            let path =
                std::env::temp_dir().join(format!("zp-bench-{}-{seq}.sock", std::process::id()));
            (format!("ipc://{}", path.display()), Some(path))
        }
    }
}

/// One run: its own runtime and sockets; returns the time from the first send to the last
/// receive.
fn run_once(lib: Lib, t: Transport, size: usize, n: usize) -> Duration {
    // A fresh runtime per run: nothing a previous run left behind (tasks, timers, lingering
    // connections) can steal time from this one.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("build tokio runtime");
    let (addr, ipc_file) = bind_address(t, lib);
    let payload = Bytes::from(vec![7u8; size]);
    let elapsed = rt.block_on(async {
        match lib {
            Lib::Ours => run_ours(&addr, payload, n, false).await,
            Lib::OursBatch => run_ours(&addr, payload, n, true).await,
            Lib::Zmqrs => run_zmqrs(&addr, payload, n).await,
        }
    });
    rt.shutdown_timeout(Duration::from_secs(5));
    if let Some(path) = ipc_file {
        let _ = std::fs::remove_file(path);
    }
    elapsed
}

fn our_message(payload: &Bytes) -> Message {
    let mut m = Message::with_capacity(1);
    m.push(payload.clone());
    m
}

async fn run_ours(addr: &str, payload: Bytes, n: usize, batch: bool) -> Duration {
    let rt = tokio::runtime::Handle::current();
    let pull = Arc::new(
        Socket::new(SocketType::Pull, SocketOptions::default(), rt.clone()).expect("create PULL"),
    );
    let push =
        Arc::new(Socket::new(SocketType::Push, SocketOptions::default(), rt).expect("create PUSH"));
    let endpoint = pull.bind(addr).await.expect("bind PULL");
    push.connect(&endpoint).expect("connect PUSH");

    push.send(our_message(&payload))
        .await
        .expect("warm-up send");
    pull.recv().await.expect("warm-up receive");

    let size = payload.len();
    let t0 = Instant::now();
    let consumer = {
        let pull = pull.clone();
        tokio::spawn(async move {
            let mut got = 0usize;
            let mut bytes = 0usize;
            if batch {
                let mut buf = Vec::with_capacity(RECV_BATCH);
                while got < n {
                    buf.clear();
                    let k = pull
                        .try_recv_batch(&mut buf, RECV_BATCH.min(n - got))
                        .expect("try_recv_batch");
                    if k == 0 {
                        bytes += pull.recv().await.expect("receive").byte_len();
                        got += 1;
                    } else {
                        bytes += buf.iter().map(Message::byte_len).sum::<usize>();
                        got += k;
                    }
                }
            } else {
                while got < n {
                    bytes += pull.recv().await.expect("receive").byte_len();
                    got += 1;
                }
            }
            (Instant::now(), bytes)
        })
    };
    let producer = {
        let push = push.clone();
        tokio::spawn(async move {
            for _ in 0..n {
                push.send(our_message(&payload)).await.expect("send");
            }
        })
    };
    producer.await.expect("producer task");
    let (t1, bytes) = consumer.await.expect("consumer task");
    assert_eq!(
        bytes,
        n * size,
        "zeropipe delivered the wrong number of bytes"
    );

    push.close().await;
    pull.close().await;
    t1 - t0
}

async fn run_zmqrs(addr: &str, payload: Bytes, n: usize) -> Duration {
    let mut pull = zeromq::PullSocket::new();
    let endpoint = pull.bind(addr).await.expect("zmq.rs bind PULL").to_string();
    let mut push = zeromq::PushSocket::new();
    push.connect(&endpoint).await.expect("zmq.rs connect PUSH");

    push.send(ZmqMessage::from(payload.clone()))
        .await
        .expect("zmq.rs warm-up send");
    pull.recv().await.expect("zmq.rs warm-up receive");

    let size = payload.len();
    let t0 = Instant::now();
    let consumer = tokio::spawn(async move {
        let mut bytes = 0usize;
        for _ in 0..n {
            let m = pull.recv().await.expect("zmq.rs receive");
            bytes += m.iter().map(Bytes::len).sum::<usize>();
        }
        (pull, Instant::now(), bytes)
    });
    let producer = tokio::spawn(async move {
        for _ in 0..n {
            push.send(ZmqMessage::from(payload.clone()))
                .await
                .expect("zmq.rs send");
        }
        push
    });
    let push = producer.await.expect("zmq.rs producer task");
    let (pull, t1, bytes) = consumer.await.expect("zmq.rs consumer task");
    assert_eq!(
        bytes,
        n * size,
        "zmq.rs delivered the wrong number of bytes"
    );

    // PUSH has no binds, so dropping it is its whole shutdown; PULL's close waits for
    // its listener to stop.
    drop(push);
    let errors = pull.close().await;
    if !errors.is_empty() {
        eprintln!("zmq.rs close reported: {errors:?}");
    }
    t1 - t0
}

fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".to_string())
}

fn median(xs: &[f64]) -> f64 {
    let mut v = xs.to_vec();
    v.sort_by(|a, b| a.total_cmp(b));
    let m = v.len() / 2;
    if v.len() % 2 == 1 {
        v[m]
    } else {
        (v[m - 1] + v[m]) / 2.0
    }
}

fn min_max(xs: &[f64]) -> (f64, f64) {
    xs.iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &x| {
            (lo.min(x), hi.max(x))
        })
}

fn fmt_rate(x: f64) -> String {
    if x >= 1e6 {
        format!("{:.2} M", x / 1e6)
    } else if x >= 1e3 {
        format!("{:.1} k", x / 1e3)
    } else {
        format!("{x:.0}")
    }
}

fn fmt_size(size: usize) -> String {
    if size >= 1 << 20 && size.is_multiple_of(1 << 20) {
        format!("{} MiB", size >> 20)
    } else if size >= 1 << 10 && size.is_multiple_of(1 << 10) {
        format!("{} KiB", size >> 10)
    } else {
        format!("{size} B")
    }
}

fn main() {
    let cfg = config();
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(0);
    println!(
        "{} | {cores} cores | tokio multi-thread, 2 workers | {} | {} alternating round(s) per case{}",
        cpu_model(),
        allocator_name(),
        cfg.rounds,
        if cfg.smoke { " | SMOKE" } else { "" }
    );
    println!(
        "{:<4} {:>7} {:>8}  {:<22} {:>11} {:>21} {:>10} {:>19} {:>7}",
        "tr", "size", "N", "library", "msg/s", "(min-max)", "MB/s", "(min-max)", "vs zmq.rs"
    );

    for &(t, size) in &cfg.cases {
        let n = message_count(&cfg, t, size);
        let mut rates: Vec<Vec<f64>> = vec![Vec::new(); cfg.libs.len()];
        for _ in 0..cfg.rounds {
            for (i, &lib) in cfg.libs.iter().enumerate() {
                let elapsed = run_once(lib, t, size, n);
                rates[i].push(n as f64 / elapsed.as_secs_f64());
            }
        }
        let zmqrs_median = cfg
            .libs
            .iter()
            .position(|&l| l == Lib::Zmqrs)
            .map(|i| median(&rates[i]));
        for (i, &lib) in cfg.libs.iter().enumerate() {
            let med = median(&rates[i]);
            let (lo, hi) = min_max(&rates[i]);
            let mb = |x: f64| x * size as f64 / 1e6;
            let ratio = match (lib, zmqrs_median) {
                (Lib::Zmqrs, _) | (_, None) => String::new(),
                (_, Some(z)) => format!("{:.2}x", med / z),
            };
            println!(
                "{:<4} {:>7} {:>8}  {:<22} {:>11} {:>21} {:>10.1} {:>19} {:>7}",
                t.name(),
                fmt_size(size),
                n,
                lib.name(),
                fmt_rate(med),
                format!("({} - {})", fmt_rate(lo), fmt_rate(hi)),
                mb(med),
                format!("({:.1} - {:.1})", mb(lo), mb(hi)),
                ratio
            );
        }
    }
}
