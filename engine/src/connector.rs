//! The connect side's loop: connect, run the connection, and reconnect with backoff
//! (`reconnectInterval`, `reconnectMaxInterval`) until the endpoint or the socket goes.

use std::sync::Arc;
use std::time::Duration;

use crate::connection::{Connection, Ended, PipeSource};
use crate::endpoint::Endpoint;
use crate::error::Error;
use crate::events::EventKind;
use crate::options::millis;
use crate::shutdown::Shutdown;
use crate::socket::Inner;
use crate::transport;

/// Connects to `ep`, runs the connection, and reconnects until `shutdown` fires (this
/// endpoint disconnected, or the socket closed).
pub(crate) async fn run(
    inner: Arc<Inner>,
    ep: Endpoint,
    address: String,
    source: PipeSource,
    mut shutdown: Shutdown,
) {
    let opts = inner.options();
    let base = opts.reconnect_interval;
    let mut interval = base.max(0) as u64;
    let conn_shutdown = inner.conn_shutdown();
    let connect_timeout = millis(opts.connect_timeout).filter(|d| !d.is_zero());
    loop {
        let attempt = tokio::select! {
            _ = shutdown.wait() => return,
            r = transport::connect(&ep, &address, connect_timeout) => r,
        };
        match attempt {
            Ok(stream) => {
                inner.event(EventKind::Connect, &address, None, None);
                let conn = Connection::new(inner.clone(), address.clone());
                let stop = Shutdown::either(shutdown.clone(), conn_shutdown.clone());
                match conn.run(stream, source.clone(), stop).await {
                    Ended::AfterHandshake => interval = base.max(0) as u64,
                    // The refusal was reported (`handshake:error:auth`); the endpoint stays
                    // connected in name, as libzmq's does, until disconnect() or close().
                    Ended::Denied => return,
                    Ended::BeforeHandshake => {}
                }
            }
            Err(e) => {
                let err = Error::from_io(&e, "connect to", &address);
                inner.event(EventKind::ConnectDelay, &address, None, Some(err));
            }
        }
        // A closing PUSH keeps reconnecting while it lingers (as libzmq does), so what it
        // queued for a peer that is briefly down still gets there; it stops once close()
        // ends its connections.
        if base < 0 || shutdown.is_fired() || conn_shutdown.is_fired() {
            return;
        }
        inner.event(EventKind::ConnectRetry, &address, Some(interval), None);
        tokio::select! {
            _ = shutdown.wait() => return,
            _ = tokio::time::sleep(Duration::from_millis(interval)) => {}
        }
        // As libzmq: a maximum not above the base interval means no backoff.
        if opts.reconnect_max_interval > base {
            interval = (interval.max(1) * 2).min(opts.reconnect_max_interval as u64);
        }
    }
}
