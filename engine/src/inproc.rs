//! `inproc://`: sockets of the same process joined by one shared pipe.
//!
//! A PUSH and a PULL share a single bounded queue (capacity = the PUSH's send HWM plus the
//! PULL's receive HWM, as libzmq sums them), so a message moves between them without a
//! copy, a syscall or a protocol frame. Connecting before the name is bound is allowed: the
//! connector's pipe exists at once (messages can queue) and is handed to the binder when it
//! appears.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex, MutexGuard, OnceLock, Weak};

use crate::error::{Code, Error, Result};
use crate::events::EventKind;
use crate::handshake::SocketType;
use crate::pipe::{Pipe, Wake};
use crate::socket::Inner;

struct PendingConnect {
    connector: Weak<Inner>,
    pipe: Arc<Pipe>,
    binder_side: Arc<LateWake>,
}

#[derive(Default)]
struct Registry {
    bound: HashMap<String, Weak<Inner>>,
    pending: HashMap<String, Vec<PendingConnect>>,
}

static REGISTRY: LazyLock<Mutex<Registry>> = LazyLock::new(|| Mutex::new(Registry::default()));

fn registry() -> MutexGuard<'static, Registry> {
    REGISTRY.lock().unwrap_or_else(|e| e.into_inner())
}

/// The wake target of a binder that does not exist yet.
#[derive(Default)]
struct LateWake(OnceLock<Arc<dyn Wake>>);

impl Wake for LateWake {
    fn wake(&self, pipe: &Arc<Pipe>) {
        if let Some(w) = self.0.get() {
            w.wake(pipe);
        }
    }
}

fn hwm_of(sock: &Inner) -> usize {
    let o = sock.options();
    match sock.kind() {
        SocketType::Push => o.send_high_water_mark as usize,
        SocketType::Pull => o.receive_high_water_mark as usize,
    }
}

/// libzmq sums both sides' marks for inproc; 0 on either side means unlimited.
fn joint_hwm(a: usize, b: usize) -> usize {
    if a == 0 || b == 0 {
        0
    } else {
        a.saturating_add(b)
    }
}

fn live(w: &Weak<Inner>) -> Option<Arc<Inner>> {
    w.upgrade().filter(|s| !s.is_closed())
}

fn incompatible(a: &Inner, b: &Inner, name: &str) -> Error {
    Error::new(
        Code::Inval,
        format!(
            "inproc://{name}: a {} socket cannot talk to a {} socket",
            a.kind().as_str(),
            b.kind().as_str()
        ),
    )
}

/// Builds the pipe from whichever side pushes to whichever pulls.
fn link(a: &Arc<Inner>, b_side: Arc<dyn Wake>, b_hwm: usize) -> Arc<Pipe> {
    let hwm = joint_hwm(hwm_of(a), b_hwm);
    match a.kind() {
        SocketType::Push => Pipe::new_inproc(hwm, b_side, a.side()),
        SocketType::Pull => Pipe::new_inproc(hwm, a.side(), b_side),
    }
}

pub(crate) fn bind(inner: &Arc<Inner>, name: &str) -> Result<()> {
    let pending = {
        let mut reg = registry();
        if reg.bound.get(name).and_then(live).is_some() {
            return Err(Error::new(
                Code::AddrInUse,
                format!("inproc://{name} is already bound"),
            ));
        }
        reg.bound.insert(name.to_string(), Arc::downgrade(inner));
        reg.pending.remove(name).unwrap_or_default()
    };
    let address = format!("inproc://{name}");
    for p in pending {
        let Some(conn) = live(&p.connector) else {
            continue;
        };
        if !inner.kind().accepts(conn.kind().as_str()) {
            let err = incompatible(inner, &conn, name);
            inner.event(
                EventKind::HandshakeErrorProtocol,
                &address,
                None,
                Some(err.clone()),
            );
            conn.event(EventKind::HandshakeErrorProtocol, &address, None, Some(err));
            conn.release_pipe(&p.pipe);
            continue;
        }
        let _ = p.binder_side.0.set(inner.side());
        // The pipe was sized with a guess for the binder's mark; now it is known.
        p.pipe.set_hwm(joint_hwm(hwm_of(&conn), hwm_of(inner)));
        inner.attach(p.pipe.clone());
        // The connector's side may have been waiting for room or data all along.
        p.binder_side.wake(&p.pipe);
        inner.event(EventKind::Accept, &address, None, None);
        inner.peer_changed(&p.pipe, &address, true, None);
        conn.event(EventKind::Connect, &address, None, None);
        conn.peer_changed(&p.pipe, &address, true, None);
    }
    Ok(())
}

pub(crate) fn connect(inner: &Arc<Inner>, name: &str) -> Result<Arc<Pipe>> {
    let address = format!("inproc://{name}");
    let mut reg = registry();
    match reg.bound.get(name).and_then(live) {
        Some(binder) => {
            drop(reg);
            if !inner.kind().accepts(binder.kind().as_str()) {
                return Err(incompatible(inner, &binder, name));
            }
            let pipe = link(inner, binder.side(), hwm_of(&binder));
            binder.attach(pipe.clone());
            inner.attach(pipe.clone());
            binder.event(EventKind::Accept, &address, None, None);
            binder.peer_changed(&pipe, &address, true, None);
            inner.event(EventKind::Connect, &address, None, None);
            inner.peer_changed(&pipe, &address, true, None);
            Ok(pipe)
        }
        None => {
            let late = Arc::new(LateWake::default());
            // The binder's mark is unknown until it binds; assume libzmq's default.
            let pipe = link(inner, late.clone(), 1000);
            reg.pending
                .entry(name.to_string())
                .or_default()
                .push(PendingConnect {
                    connector: Arc::downgrade(inner),
                    pipe: pipe.clone(),
                    binder_side: late,
                });
            drop(reg);
            inner.attach(pipe.clone());
            Ok(pipe)
        }
    }
}

pub(crate) fn unbind(inner: &Arc<Inner>, address: &str) {
    let name = address.strip_prefix("inproc://").unwrap_or(address);
    let mut reg = registry();
    let ours = reg
        .bound
        .get(name)
        .map(|w| std::ptr::eq(w.as_ptr(), Arc::as_ptr(inner)))
        .unwrap_or(false);
    if ours {
        reg.bound.remove(name);
    }
}

/// Forgets every name bound by, and every pending connect of, a closing socket.
pub(crate) fn socket_closing(inner: &Inner) {
    let me = inner as *const Inner;
    let mut reg = registry();
    reg.bound
        .retain(|_, w| w.as_ptr() != me && w.strong_count() > 0);
    for list in reg.pending.values_mut() {
        list.retain(|p| p.connector.as_ptr() != me && p.connector.strong_count() > 0);
    }
    reg.pending.retain(|_, l| !l.is_empty());
}
