//! Accepting a connection with no file descriptor left reports `accept:error` with
//! EMFILE, and accepting resumes once descriptors are back. Alone in its binary: it lowers
//! the whole process's descriptor limit.

mod common;

use std::time::Duration;

use zeropipe_engine::{Code, EventKind, SocketType};

use common::*;

#[cfg(target_os = "linux")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accepting_without_descriptors_left_reports_emfile() {
    let pull = sock(SocketType::Pull);
    pull.enable_events();
    let ep = pull.bind("tcp://127.0.0.1:*").await.unwrap();
    // The client's descriptor exists before the limit drops and connecting needs no new
    // one; accepting the connection does.
    let addr: std::net::SocketAddr = ep.trim_start_matches("tcp://").parse().unwrap();
    let client = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    // The limit bounds descriptor numbers: cap it just above the highest one in use, then
    // fill the free numbers below it, so that no descriptor is left.
    let highest = std::fs::read_dir("/proc/self/fd")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u64>().ok())
        .max()
        .unwrap();
    let mut old = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    let mut fillers = Vec::new();
    // SAFETY: getrlimit/setrlimit read and write one rlimit struct we own; dup of stdin
    // makes descriptors this test owns and closes below.
    unsafe {
        assert_eq!(libc::getrlimit(libc::RLIMIT_NOFILE, &mut old), 0);
        let low = libc::rlimit {
            rlim_cur: highest + 1,
            rlim_max: old.rlim_max,
        };
        assert_eq!(libc::setrlimit(libc::RLIMIT_NOFILE, &low), 0);
        loop {
            let fd = libc::dup(0);
            if fd < 0 {
                break;
            }
            fillers.push(fd);
        }
    }
    client.connect(&addr.into()).unwrap();
    let events = tokio::time::timeout(
        Duration::from_secs(10),
        wait_for_events(&pull, EventKind::AcceptError, 1, Duration::from_secs(10)),
    )
    .await;
    // SAFETY: as above.
    unsafe {
        libc::setrlimit(libc::RLIMIT_NOFILE, &old);
        for fd in fillers {
            libc::close(fd);
        }
    }
    let events = events.expect("no accept:error event");
    let err = events
        .iter()
        .find(|e| e.kind == EventKind::AcceptError)
        .and_then(|e| e.error.clone())
        .unwrap();
    assert_eq!(err.code, Code::MFile, "{err:?}");
    assert_eq!(err.code.as_str(), "EMFILE");
    // Once descriptors are back, the waiting connection is accepted.
    wait_for_events(&pull, EventKind::Accept, 1, Duration::from_secs(10)).await;
    drop(client);
    pull.close().await;
}
