//! Shutdown as a type: a trigger held by the socket and a cloneable listener held by every
//! task it must stop (listeners, connectors, connections). A dropped trigger counts as fired,
//! so a task can never outlive the socket that owns it by accident.

use tokio::sync::watch;

pub struct ShutdownTrigger {
    tx: watch::Sender<bool>,
}

#[derive(Clone)]
pub struct Shutdown {
    rx: watch::Receiver<bool>,
}

impl ShutdownTrigger {
    pub fn new() -> (ShutdownTrigger, Shutdown) {
        let (tx, rx) = watch::channel(false);
        (ShutdownTrigger { tx }, Shutdown { rx })
    }

    pub fn fire(&self) {
        self.tx.send_replace(true);
    }

    pub fn subscribe(&self) -> Shutdown {
        Shutdown {
            rx: self.tx.subscribe(),
        }
    }
}

impl Shutdown {
    pub fn is_fired(&self) -> bool {
        *self.rx.borrow()
    }

    /// Resolves once either `a` or `b` fires (a connection stops when its socket closes or
    /// when its own endpoint goes).
    pub async fn either(mut a: Shutdown, mut b: Shutdown) {
        tokio::select! {
            _ = a.wait() => {},
            _ = b.wait() => {},
        }
    }

    /// Resolves once the trigger fires or is dropped.
    pub async fn wait(&mut self) {
        while !*self.rx.borrow_and_update() {
            if self.rx.changed().await.is_err() {
                return;
            }
        }
    }
}
