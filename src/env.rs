//! Each N-API environment's sockets (the main thread's, and each worker thread's), and what
//! happens to them when it ends: what their sends resolved for is flushed, and every socket
//! closes within its linger, blocking that thread as libzmq's context termination does — so
//! a thread or process that ends normally loses nothing a peer could take.

use std::collections::HashMap;
use std::sync::{LazyLock, Mutex, MutexGuard, Weak};

use napi::bindgen_prelude::*;
use napi_derive::napi;
use zeropipe_engine as engine;

use crate::batch::SendStage;
use crate::runtime::runtime;

/// A socket as its environment's teardown sees it: the socket, and for a PUSH the stage
/// whose committed messages must not be lost.
pub(crate) struct Registered {
    pub(crate) socket: Weak<engine::Socket>,
    pub(crate) stage: Option<Weak<SendStage>>,
}

/// The sockets of each live environment, by env address. One cleanup hook per environment
/// (a hook per socket could never be removed safely, so each socket ever created would have
/// leaked one).
static ENV_SOCKETS: LazyLock<Mutex<HashMap<usize, Vec<Registered>>>> =
    LazyLock::new(|| Mutex::new(HashMap::new()));

fn env_sockets() -> MutexGuard<'static, HashMap<usize, Vec<Registered>>> {
    ENV_SOCKETS.lock().unwrap_or_else(|e| e.into_inner())
}

/// Adds a socket to its environment's list, installing the environment's cleanup hook with
/// the first one.
pub(crate) fn register(env: &Env, entry: Registered) -> Result<()> {
    let key = env.raw() as usize;
    {
        let mut map = env_sockets();
        if let Some(list) = map.get_mut(&key) {
            // Forget collected sockets now and then, so the list tracks live ones.
            if list.len() >= 64 && list.len().is_power_of_two() {
                list.retain(|r| r.socket.strong_count() > 0);
            }
            list.push(entry);
            return Ok(());
        }
        map.insert(key, vec![entry]);
    }
    // Runs on the environment's own thread once its JS has stopped (worker.terminate(),
    // the end of a worker or of the main script).
    let hooked = env.add_env_cleanup_hook(key, |key| {
        let sockets = env_sockets().remove(&key).unwrap_or_default();
        linger_all(&sockets);
    });
    if let Err(e) = hooked {
        // Without its hook the entry would never be cleaned up; the next socket retries.
        env_sockets().remove(&key);
        return Err(e);
    }
    Ok(())
}

/// Flushes what each socket's sends resolved for, then closes them all, each within its
/// linger, blocking this thread until they are done.
fn linger_all(sockets: &[Registered]) {
    let Ok(rt) = runtime() else { return };
    let mut waiting = Vec::new();
    for r in sockets {
        let Some(socket) = r.socket.upgrade() else {
            continue;
        };
        if let Some(stage) = r.stage.as_ref().and_then(Weak::upgrade) {
            // A stage JS left malformed has nothing valid left to deliver.
            let _ = stage.drain(&socket, 0);
        }
        socket.set_waker(None);
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        rt.spawn(async move {
            socket.close().await;
            let _ = tx.send(());
        });
        waiting.push(rx);
    }
    for rx in waiting {
        // An error means the close task is gone (the runtime is shutting down): nothing
        // left to wait for.
        let _ = rx.recv();
    }
}

/// Flushes and closes every socket of this environment, waiting for each within its
/// linger: the JS layer calls it on `process.on('exit')`, where the event loop no longer
/// runs, so that `process.exit()` and the end of a script deliver what was sent.
#[napi]
pub fn linger_all_sockets(env: Env) {
    let key = env.raw() as usize;
    let sockets = env_sockets()
        .get_mut(&key)
        .map(std::mem::take)
        .unwrap_or_default();
    linger_all(&sockets);
    #[cfg(feature = "stage-trace")]
    crate::trace::dump();
}
