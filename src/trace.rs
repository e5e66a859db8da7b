//! Per-stage timestamps of the receive path (feature `stage-trace`, see the engine's
//! `trace.rs`): one record per receive batch taken by JS, written with the engine's write
//! stamps to `$ZEROPIPE_TRACE_FILE.<pid>` when the environment's sockets are closed. For
//! latency measurements only; absent from normal builds.

use std::io::Write;
use std::sync::atomic::Ordering;
use std::sync::Mutex;

use zeropipe_engine::trace;

/// Messages in the batch, then the latest read, pipe push and waker call before it, the
/// entry into `tryReceive` and its return (CLOCK_MONOTONIC ns).
static RECORDS: Mutex<Vec<[u64; 6]>> = Mutex::new(Vec::new());

/// Records a batch of `n` messages that `tryReceive` entered at `entered`.
pub(crate) fn batch(n: usize, entered: u64) {
    let rec = [
        n as u64,
        trace::READ.load(Ordering::Relaxed),
        trace::PUSH.load(Ordering::Relaxed),
        trace::WAKE.load(Ordering::Relaxed),
        entered,
        trace::now_ns(),
    ];
    RECORDS.lock().unwrap_or_else(|e| e.into_inner()).push(rec);
}

/// Writes the records (`batch n read push wake entered returned`) and write stamps
/// (`write t`), one a line, if `ZEROPIPE_TRACE_FILE` is set.
pub(crate) fn dump() {
    let Ok(base) = std::env::var("ZEROPIPE_TRACE_FILE") else {
        return;
    };
    let records = std::mem::take(&mut *RECORDS.lock().unwrap_or_else(|e| e.into_inner()));
    let writes = std::mem::take(&mut *trace::WRITES.lock().unwrap_or_else(|e| e.into_inner()));
    if records.is_empty() && writes.is_empty() {
        return;
    }
    let mut out = String::new();
    for r in &records {
        out.push_str(&format!(
            "batch {} {} {} {} {} {}\n",
            r[0], r[1], r[2], r[3], r[4], r[5]
        ));
    }
    for w in &writes {
        out.push_str(&format!("write {w}\n"));
    }
    let path = format!("{base}.{}", std::process::id());
    if let Ok(mut f) = std::fs::File::create(path) {
        let _ = f.write_all(out.as_bytes());
    }
}
