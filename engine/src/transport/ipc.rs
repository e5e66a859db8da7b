//! `ipc://`: Unix domain stream sockets, on file system paths or (Linux) abstract names.
//!
//! A path-bound socket leaves a file behind that the kernel never removes. We remove the
//! files we created when the listener goes away, clear files left by dead processes when
//! binding, and take care never to remove a file that belongs to someone else.

use std::fs;
use std::io;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use socket2::{Domain, SockAddr, Socket, Type};
use tokio::net::{UnixListener, UnixStream};

use super::{not_connectable, BACKLOG};
use crate::endpoint::{IpcAddr, IPC_PATH_MAX};
use crate::error::{Code, Error, Result};

/// How long a probe of an existing socket file may take before we call its owner alive.
/// A live listener answers a local connect at once; only a wedged one takes this long,
/// and a wedged process still owns its address.
const PROBE_TIMEOUT: Duration = Duration::from_secs(1);

/// A listening Unix socket plus the file it owns, if any.
#[derive(Debug)]
pub(super) struct IpcListener {
    // Declared before `owned` so the socket closes before its file is removed.
    listener: UnixListener,
    #[expect(dead_code, reason = "held only so that its Drop removes the file")]
    owned: Option<OwnedFile>,
}

/// Identifies the socket file we created, so it is removed only while it is still ours.
/// Device and inode tell files apart; the modification time guards against the inode
/// number being recycled for a file someone created after ours was deleted (a socket
/// file's mtime is set when it is created and not touched by traffic or `chmod`).
#[derive(Debug)]
struct OwnedFile {
    path: PathBuf,
    dev: u64,
    ino: u64,
    mtime: (i64, i64),
}

impl OwnedFile {
    fn record(path: &Path) -> io::Result<OwnedFile> {
        let meta = fs::symlink_metadata(path)?;
        Ok(OwnedFile {
            path: path.to_owned(),
            dev: meta.dev(),
            ino: meta.ino(),
            mtime: (meta.mtime(), meta.mtime_nsec()),
        })
    }

    fn is_still_ours(&self) -> bool {
        match fs::symlink_metadata(&self.path) {
            Ok(meta) => {
                meta.file_type().is_socket()
                    && meta.dev() == self.dev
                    && meta.ino() == self.ino
                    && (meta.mtime(), meta.mtime_nsec()) == self.mtime
            }
            Err(_) => false,
        }
    }
}

impl Drop for OwnedFile {
    fn drop(&mut self) {
        // The check and the unlink are two steps, so a re-bind landing exactly between them
        // could still lose its file; the window is microseconds and there is no atomic
        // "unlink if inode" call to close it.
        if self.is_still_ours() {
            // Nothing useful to do if it fails: it is gone already or the directory became
            // read-only, and a leftover socket file is cleared by the next bind.
            let _ = fs::remove_file(&self.path);
        }
    }
}

impl IpcListener {
    /// Accepts one connection; the peer is named by its path if it bound one, else by our
    /// own endpoint (`own`), since clients normally connect unnamed.
    pub(super) async fn accept(&self, own: &str) -> io::Result<(UnixStream, String)> {
        let (stream, peer) = self.listener.accept().await?;
        let name = match peer.as_pathname() {
            Some(path) => format!("ipc://{}", path.display()),
            None => own.to_owned(),
        };
        Ok((stream, name))
    }
}

/// Binds and listens; returns the listener and its `ipc://…` endpoint text.
pub(super) async fn bind(ipc: &IpcAddr, addr: &str) -> Result<(IpcListener, String)> {
    match ipc {
        IpcAddr::Path(path) => {
            clear_stale(path, addr).await?;
            let listener = bind_path(path).map_err(|e| bind_error(&e, addr))?;
            Ok((listener, format!("ipc://{}", path.display())))
        }
        IpcAddr::Wildcard => bind_fresh(addr),
        IpcAddr::Abstract(name) => bind_abstract(name, addr),
    }
}

fn bind_error(err: &io::Error, addr: &str) -> Error {
    Error::from_io(err, "Cannot bind to", addr)
}

fn in_use(addr: &str, why: &str) -> Error {
    Error::new(Code::AddrInUse, format!("Cannot bind to {addr}: {why}"))
}

/// Makes way for binding `path`: nothing there is fine; a socket nobody listens on is a
/// leftover of a dead process and is removed; anything else is in use and left alone.
async fn clear_stale(path: &Path, addr: &str) -> Result<()> {
    let meta = match fs::symlink_metadata(path) {
        Ok(meta) => meta,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(bind_error(&e, addr)),
    };
    if !meta.file_type().is_socket() {
        return Err(in_use(addr, "the path exists and is not a socket"));
    }
    match tokio::time::timeout(PROBE_TIMEOUT, UnixStream::connect(path)).await {
        Ok(Ok(_probe)) => Err(in_use(addr, "another socket is listening there")),
        Ok(Err(e)) if e.kind() == io::ErrorKind::ConnectionRefused => match fs::remove_file(path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(bind_error(&e, addr)),
        },
        // Removed between our stat and our probe: the path is free.
        Ok(Err(e)) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        // EAGAIN means a live listener with a full backlog; anything else (EACCES, …)
        // means we cannot tell, and guessing "dead" would delete someone's socket.
        Ok(Err(e)) => Err(in_use(
            addr,
            &format!("the socket there cannot be probed ({e})"),
        )),
        Err(_) => Err(in_use(
            addr,
            "the socket there is not answering but still open",
        )),
    }
}

fn listen_on(at: &SockAddr) -> io::Result<UnixListener> {
    let socket = Socket::new(Domain::UNIX, Type::STREAM, None)?;
    socket.set_nonblocking(true)?;
    socket.bind(at)?;
    socket.listen(BACKLOG)?;
    UnixListener::from_std(socket.into())
}

fn bind_path(path: &Path) -> io::Result<IpcListener> {
    let listener = listen_on(&SockAddr::unix(path)?)?;
    // Without the identity we could not tell our file from a later one, so rather than
    // risk deleting someone else's, such a listener never removes its file.
    let owned = OwnedFile::record(path).ok();
    Ok(IpcListener { listener, owned })
}

/// `ipc://*`: a new path in the temporary directory, unique by process id, a process-wide
/// counter and the clock (the clock separates processes that reuse a pid).
fn bind_fresh(addr: &str) -> Result<(IpcListener, String)> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut last_error = None;
    for _ in 0..16 {
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let name = format!("zeropipe-{}-{n}-{nanos:08x}.sock", std::process::id());
        let mut path = std::env::temp_dir().join(&name);
        // A deep $TMPDIR can push the path past sun_path; /tmp always fits.
        if path.as_os_str().len() > IPC_PATH_MAX {
            path = Path::new("/tmp").join(&name);
        }
        if path.symlink_metadata().is_ok() {
            continue;
        }
        match bind_path(&path) {
            Ok(listener) => return Ok((listener, format!("ipc://{}", path.display()))),
            Err(e) if e.kind() == io::ErrorKind::AddrInUse => last_error = Some(e),
            Err(e) => return Err(bind_error(&e, addr)),
        }
    }
    let err = last_error.unwrap_or_else(|| io::Error::from(io::ErrorKind::AddrInUse));
    Err(bind_error(&err, addr))
}

#[cfg(target_os = "linux")]
fn abstract_sockaddr(name: &str) -> io::Result<SockAddr> {
    use std::ffi::OsStr;
    use std::os::unix::ffi::OsStrExt;
    // A leading NUL byte is how the kernel (and socket2) spell the abstract namespace.
    let mut bytes = Vec::with_capacity(name.len() + 1);
    bytes.push(0);
    bytes.extend_from_slice(name.as_bytes());
    SockAddr::unix(OsStr::from_bytes(&bytes))
}

#[cfg(target_os = "linux")]
fn bind_abstract(name: &str, addr: &str) -> Result<(IpcListener, String)> {
    let listener = abstract_sockaddr(name)
        .and_then(|at| listen_on(&at))
        .map_err(|e| bind_error(&e, addr))?;
    // Abstract names vanish with their last socket: nothing to clean up.
    Ok((
        IpcListener {
            listener,
            owned: None,
        },
        format!("ipc://@{name}"),
    ))
}

#[cfg(not(target_os = "linux"))]
fn bind_abstract(_name: &str, addr: &str) -> Result<(IpcListener, String)> {
    Err(Error::new(
        Code::ProtoNoSupport,
        format!("Abstract ipc sockets (\"ipc://@name\") exist only on Linux, in \"{addr}\""),
    ))
}

/// Connects to a path or an abstract name.
pub(super) async fn connect(ipc: &IpcAddr, addr: &str) -> io::Result<UnixStream> {
    match ipc {
        IpcAddr::Path(path) => UnixStream::connect(path).await,
        IpcAddr::Wildcard => Err(not_connectable(addr, "\"ipc://*\" names no socket")),
        #[cfg(target_os = "linux")]
        IpcAddr::Abstract(name) => {
            use std::os::linux::net::SocketAddrExt;
            let at = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes())?;
            UnixStream::connect_addr(&at.into()).await
        }
        #[cfg(not(target_os = "linux"))]
        IpcAddr::Abstract(_) => Err(io::Error::new(
            io::ErrorKind::Unsupported,
            format!("abstract ipc sockets exist only on Linux: {addr}"),
        )),
    }
}
