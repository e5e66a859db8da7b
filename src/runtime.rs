//! The engine's I/O runtime, shared by every socket of the process (and every worker thread).
//!
//! One I/O thread by default, as libzmq's `ZMQ_IO_THREADS`: with two, one-way latency
//! between two processes at 10 000 msg/s went from p99 0.7-0.8 ms to 3.4-3.7 ms (threads
//! queueing for the CPU: each process had three busy threads on two cores) for no steady
//! gain in throughput. That one thread runs a current-thread runtime (its simpler scheduler
//! measured slightly lower latency than a one-worker multi-thread runtime: p50 88 against
//! 90 µs, p99 0.5-0.8 against 1.3-1.9 ms). `ZEROPIPE_IO_THREADS` (1 to 64) changes the count
//! for the whole process.

use std::sync::{LazyLock, OnceLock};

use tokio::runtime::Runtime;
use zeropipe_engine as engine;

const DEFAULT_IO_THREADS: usize = 1;
const MAX_IO_THREADS: usize = 64;

static RUNTIME: LazyLock<Result<Runtime, engine::Error>> = LazyLock::new(|| {
    let threads = match std::env::var("ZEROPIPE_IO_THREADS") {
        Err(_) => DEFAULT_IO_THREADS,
        Ok(v) => match v.trim().parse::<usize>() {
            Ok(n) if (1..=MAX_IO_THREADS).contains(&n) => n,
            _ => {
                return Err(engine::Error::new(
                    engine::Code::Inval,
                    format!(
                    "ZEROPIPE_IO_THREADS must be an integer from 1 to {MAX_IO_THREADS}, got {v:?}"
                ),
                ))
            }
        },
    };
    let fail = |e: std::io::Error| engine::Error::from_io(&e, "cannot start", "the I/O runtime");
    if threads > 1 {
        return tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads)
            .thread_name("zeropipe-io")
            .enable_all()
            .build()
            .map_err(fail);
    }
    // Driven by its own thread, started once the runtime is in place (see `runtime()`).
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(fail)
});

/// The thread that drives a one-thread runtime; started with the first socket.
static DRIVER: OnceLock<Result<(), engine::Error>> = OnceLock::new();

/// The runtime, started on first use.
pub(crate) fn runtime() -> Result<&'static Runtime, engine::Error> {
    let rt: &'static Runtime = RUNTIME.as_ref().map_err(Clone::clone)?;
    if rt.handle().runtime_flavor() == tokio::runtime::RuntimeFlavor::CurrentThread {
        // Only `Runtime::block_on` drives a current-thread runtime's I/O and timers.
        DRIVER
            .get_or_init(|| {
                std::thread::Builder::new()
                    .name("zeropipe-io".into())
                    .spawn(move || rt.block_on(std::future::pending::<()>()))
                    .map(|_| ())
                    .map_err(|e| engine::Error::from_io(&e, "cannot start", "the I/O thread"))
            })
            .clone()?;
    }
    Ok(rt)
}
