//! Daemon mode (upstream `skynet_daemon`): detach, record the pid in a locked pid file.

use nix::fcntl::{Flock, FlockArg};
use nix::sys::signal::kill;
use nix::unistd::{getpid, Pid};
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, Write};
use std::os::fd::AsFd;
use std::sync::OnceLock;

/// Holds the pid file's lock for the life of the process.
static LOCK: OnceLock<Flock<File>> = OnceLock::new();

fn running_pid(pidfile: &str) -> Option<i32> {
    let mut s = String::new();
    File::open(pidfile).ok()?.read_to_string(&mut s).ok()?;
    let pid: i32 = s.trim().parse().ok()?;
    if pid <= 0 || pid == getpid().as_raw() {
        return None;
    }
    kill(Pid::from_raw(pid), None).ok().map(|_| pid)
}

/// Detaches into the background and writes the pid file. Must run before any thread starts.
pub fn init(pidfile: &str) -> Result<(), String> {
    if let Some(pid) = running_pid(pidfile) {
        return Err(format!("Skynet is already running, pid = {pid}."));
    }
    nix::unistd::daemon(true, true).map_err(|e| format!("daemon: {e}"))?;
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(pidfile)
        .map_err(|e| format!("Can't create pidfile [{pidfile}]: {e}"))?;
    let mut lock = Flock::lock(file, FlockArg::LockExclusiveNonblock)
        .map_err(|(_, e)| format!("Can't lock pidfile [{pidfile}]: {e}"))?;
    let pid = getpid().as_raw();
    lock.set_len(0).map_err(|e| e.to_string())?;
    lock.rewind().map_err(|e| e.to_string())?;
    writeln!(lock, "{pid}").map_err(|e| format!("Can't write pidfile [{pidfile}]: {e}"))?;
    lock.flush().map_err(|e| e.to_string())?;
    let _ = LOCK.set(lock);
    redirect_stdio()
}

fn redirect_stdio() -> Result<(), String> {
    let null = OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/null")
        .map_err(|e| format!("Unable to open /dev/null: {e}"))?;
    let fd = null.as_fd();
    nix::unistd::dup2_stdin(fd).map_err(|e| e.to_string())?;
    nix::unistd::dup2_stdout(fd).map_err(|e| e.to_string())?;
    nix::unistd::dup2_stderr(fd).map_err(|e| e.to_string())?;
    Ok(())
}

/// Removes the pid file at exit.
pub fn exit(pidfile: &str) {
    let _ = std::fs::remove_file(pidfile);
}
