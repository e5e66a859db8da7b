//! A socket's endpoints: what it is bound to (with each listener's accept loop) and what it
//! connects to (with each connector's persistent pipe).

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;

use super::{lock, Inner};
use crate::connection::{Connection, PipeSource};
use crate::endpoint::{self, Endpoint};
use crate::error::{Code, Error, Result};
use crate::events::EventKind;
use crate::handshake::SocketType;
use crate::inproc;
use crate::pipe::Pipe;
use crate::shutdown::{Shutdown, ShutdownTrigger};
use crate::transport::Listener;

#[derive(Default)]
pub(super) struct Endpoints {
    pub(super) binds: Vec<BindEntry>,
    pub(super) connects: Vec<ConnectEntry>,
}

pub(super) struct BindEntry {
    requested: String,
    resolved: String,
    pub(super) trigger: ShutdownTrigger,
    /// Drops the connections accepted through this endpoint: on unbind, as libzmq (whose
    /// sessions are children of the listener), but not on close, where they must linger.
    accepted: ShutdownTrigger,
    inproc: bool,
    /// The accept loop; awaited by unbind/close so the port or path is really released
    /// (no connection accepted, rebinding works) once they resolve.
    pub(super) task: Option<tokio::task::JoinHandle<()>>,
}

pub(super) struct ConnectEntry {
    address: String,
    pub(super) trigger: ShutdownTrigger,
    /// The pipe that outlives reconnects (libzmq creates it at connect time); `None` for a
    /// PUSH with `immediate`, whose pipes exist only while a connection does.
    pub(super) pipe: Option<Arc<Pipe>>,
}

/// Binds to `addr`; returns the resolved endpoint (real port, real ipc path).
pub(super) async fn bind(inner: &Arc<Inner>, addr: &str) -> Result<String> {
    let ep = endpoint::parse(addr)?;
    inner.check_open()?;
    let resolved = match &ep {
        Endpoint::Inproc(name) => {
            inproc::bind(inner, name)?;
            let (trigger, _) = ShutdownTrigger::new();
            lock(&inner.endpoints).binds.push(BindEntry {
                requested: addr.to_string(),
                resolved: addr.to_string(),
                trigger,
                accepted: ShutdownTrigger::new().0,
                inproc: true,
                task: None,
            });
            addr.to_string()
        }
        _ => {
            let listener = match Listener::bind(&ep, addr).await {
                Ok(l) => l,
                Err(e) => {
                    inner.event(EventKind::BindError, addr, None, Some(e.clone()));
                    return Err(e);
                }
            };
            let resolved = listener.endpoint().to_string();
            let (trigger, shutdown) = ShutdownTrigger::new();
            let (accepted, accepted_shutdown) = ShutdownTrigger::new();
            let mut eps = lock(&inner.endpoints);
            // close() may have run while we were binding.
            if inner.is_closed() {
                return Err(Error::closed());
            }
            let task = inner.rt.spawn(accept_loop(
                inner.clone(),
                listener,
                shutdown,
                accepted_shutdown,
            ));
            eps.binds.push(BindEntry {
                requested: addr.to_string(),
                resolved: resolved.clone(),
                trigger,
                accepted,
                inproc: false,
                task: Some(task),
            });
            resolved
        }
    };
    *lock(&inner.last_endpoint) = Some(resolved.clone());
    inner.event(EventKind::Bind, &resolved, None, None);
    Ok(resolved)
}

/// Stops listening on `addr` (the address as bound, or as resolved).
pub(super) async fn unbind(inner: &Arc<Inner>, addr: &str) -> Result<()> {
    endpoint::parse(addr)?;
    inner.check_open()?;
    let entry = {
        let mut eps = lock(&inner.endpoints);
        let pos = eps
            .binds
            .iter()
            .position(|b| b.requested == addr || b.resolved == addr);
        match pos {
            Some(i) => eps.binds.remove(i),
            None => return Err(Error::new(Code::NoEnt, format!("Not bound to {addr}"))),
        }
    };
    entry.trigger.fire();
    entry.accepted.fire();
    if let Some(task) = entry.task {
        // A panicked accept loop has nothing left to release; unbind still succeeds.
        let _ = task.await;
    }
    if entry.inproc {
        inproc::unbind(inner, &entry.resolved);
    }
    inner.event(EventKind::Unbind, &entry.resolved, None, None);
    Ok(())
}

/// Connects to `addr`; the connection is made (and remade) in the background.
pub(super) fn connect(inner: &Arc<Inner>, addr: &str) -> Result<()> {
    let ep = endpoint::parse(addr)?;
    endpoint::validate_for_connect(&ep, addr)?;
    inner.check_open()?;
    if let Endpoint::Inproc(name) = &ep {
        let pipe = inproc::connect(inner, name)?;
        let (trigger, _) = ShutdownTrigger::new();
        lock(&inner.endpoints).connects.push(ConnectEntry {
            address: addr.to_string(),
            trigger,
            pipe: Some(pipe),
        });
        return Ok(());
    }
    let opts = inner.options();
    let conn_notify = Arc::new(Notify::new());
    // PULL always keeps its pipe across reconnects; PUSH does unless `immediate`, in
    // which case messages may only queue for peers that are really there.
    let persistent = inner.kind == SocketType::Pull || !opts.immediate;
    let pipe = persistent.then(|| {
        let p = inner.new_pipe(&opts, conn_notify.clone());
        inner.attach(p.clone());
        p
    });
    let (trigger, shutdown) = ShutdownTrigger::new();
    lock(&inner.endpoints).connects.push(ConnectEntry {
        address: addr.to_string(),
        trigger,
        pipe: pipe.clone(),
    });
    let source = match pipe {
        Some(pipe) => PipeSource::Persistent {
            pipe,
            notify: conn_notify,
        },
        None => PipeSource::Fresh,
    };
    inner.rt.spawn(crate::connector::run(
        inner.clone(),
        ep,
        addr.to_string(),
        source,
        shutdown,
    ));
    Ok(())
}

/// Stops connecting to `addr` and closes that connection.
pub(super) fn disconnect(inner: &Arc<Inner>, addr: &str) -> Result<()> {
    let ep = endpoint::parse(addr)?;
    inner.check_open()?;
    let entry = {
        let mut eps = lock(&inner.endpoints);
        match eps.connects.iter().position(|c| c.address == addr) {
            Some(i) => eps.connects.remove(i),
            None => return Err(Error::new(Code::NoEnt, format!("Not connected to {addr}"))),
        }
    };
    entry.trigger.fire();
    if let Some(pipe) = entry.pipe {
        if matches!(ep, Endpoint::Inproc(_)) {
            inner.leave_inproc_pipe(&pipe);
        } else {
            inner.release_pipe(&pipe);
        }
    }
    Ok(())
}

async fn accept_loop(
    inner: Arc<Inner>,
    listener: Listener,
    mut shutdown: Shutdown,
    unbound: Shutdown,
) {
    loop {
        tokio::select! {
            _ = shutdown.wait() => break,
            r = listener.accept() => match r {
                Ok((stream, _peer)) => {
                    inner.event(EventKind::Accept, listener.endpoint(), None, None);
                    let stop = Shutdown::either(inner.conn_shutdown(), unbound.clone());
                    let conn = Connection::new(inner.clone(), listener.endpoint().to_string());
                    inner.rt.spawn(async move {
                        conn.run(stream, PipeSource::Fresh, stop).await;
                    });
                }
                Err(e) => {
                    let err = Error::from_io(&e, "accept on", listener.endpoint());
                    inner.event(EventKind::AcceptError, listener.endpoint(), None, Some(err));
                    // Out of file descriptors and the like: back off instead of spinning.
                    tokio::select! {
                        _ = shutdown.wait() => break,
                        _ = tokio::time::sleep(Duration::from_millis(100)) => {}
                    }
                }
            }
        }
    }
    let address = listener.endpoint().to_string();
    listener.close();
    // ZMQ_EVENT_CLOSED: the listening socket is gone (unbind or close).
    inner.event(EventKind::Close, &address, None, None);
}

impl Inner {
    /// Whether a message orphaned now could still leave: only through a pipe attached
    /// later, which with accepting stopped means a connect made with `immediate` (the
    /// others keep their pipe attached, which would have taken the orphans already).
    pub(super) fn orphans_can_leave(&self) -> bool {
        lock(&self.endpoints)
            .connects
            .iter()
            .any(|c| c.pipe.is_none())
    }
}
