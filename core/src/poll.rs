//! A thin readiness-poll layer over epoll (upstream `socket_epoll.h`) and a wake-up eventfd.
//!
//! Level-triggered, like upstream: a descriptor stays reported while it is readable (or
//! writable, with write interest on). Every registration carries a 64-bit token that comes back
//! with its events; the socket server uses the socket id.

use nix::sys::epoll::{Epoll, EpollCreateFlags, EpollEvent, EpollFlags, EpollTimeout};
use nix::sys::eventfd::{EfdFlags, EventFd};
use std::io;
use std::os::fd::AsFd;

/// One readiness report.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PollEvent {
    pub token: u64,
    /// Readable (EPOLLIN).
    pub read: bool,
    /// Writable (EPOLLOUT).
    pub write: bool,
    /// EPOLLERR.
    pub error: bool,
    /// EPOLLHUP: both directions are shut down (or the connection was reset).
    pub hup: bool,
}

/// An epoll instance.
pub struct Poller {
    epoll: Epoll,
    buf: Vec<EpollEvent>,
}

fn flags(read: bool, write: bool) -> EpollFlags {
    let mut f = EpollFlags::empty();
    if read {
        f |= EpollFlags::EPOLLIN;
    }
    if write {
        f |= EpollFlags::EPOLLOUT;
    }
    f
}

impl Poller {
    /// A poller reporting at most `batch` events per wait.
    pub fn new(batch: usize) -> io::Result<Poller> {
        Ok(Poller {
            epoll: Epoll::new(EpollCreateFlags::EPOLL_CLOEXEC)?,
            buf: vec![EpollEvent::empty(); batch.max(1)],
        })
    }

    /// Registers `fd` with read and/or write interest (errors and hang-ups are always reported).
    pub fn add(&self, fd: impl AsFd, token: u64, read: bool, write: bool) -> io::Result<()> {
        Ok(self
            .epoll
            .add(fd, EpollEvent::new(flags(read, write), token))?)
    }

    /// Changes the interest of a registered `fd`.
    pub fn modify(&self, fd: impl AsFd, token: u64, read: bool, write: bool) -> io::Result<()> {
        let mut ev = EpollEvent::new(flags(read, write), token);
        Ok(self.epoll.modify(fd, &mut ev)?)
    }

    /// Unregisters `fd` (needed before closing a descriptor that has duplicates elsewhere: epoll
    /// forgets a registration only when the last descriptor of the open file goes).
    pub fn delete(&self, fd: impl AsFd) -> io::Result<()> {
        Ok(self.epoll.delete(fd)?)
    }

    /// Waits for events (for ever if `timeout_ms` is `None`) and appends them to `out`.
    /// An interrupted wait returns no events.
    pub fn wait(&mut self, out: &mut Vec<PollEvent>, timeout_ms: Option<u16>) -> io::Result<()> {
        let timeout = match timeout_ms {
            None => EpollTimeout::NONE,
            Some(ms) => EpollTimeout::from(ms),
        };
        let n = match self.epoll.wait(&mut self.buf, timeout) {
            Ok(n) => n,
            Err(nix::errno::Errno::EINTR) => 0,
            Err(e) => return Err(e.into()),
        };
        out.extend(self.buf[..n].iter().map(|e| {
            let f = e.events();
            PollEvent {
                token: e.data(),
                read: f.contains(EpollFlags::EPOLLIN),
                write: f.contains(EpollFlags::EPOLLOUT),
                error: f.contains(EpollFlags::EPOLLERR),
                hup: f.contains(EpollFlags::EPOLLHUP),
            }
        }));
        Ok(())
    }
}

/// A wake-up descriptor: other threads `wake` it, the polling thread registers it and `reset`s
/// it after waking.
pub struct Waker {
    fd: EventFd,
}

impl Waker {
    pub fn new() -> io::Result<Waker> {
        Ok(Waker {
            fd: EventFd::from_value_and_flags(0, EfdFlags::EFD_CLOEXEC | EfdFlags::EFD_NONBLOCK)?,
        })
    }

    /// Makes the descriptor readable.
    pub fn wake(&self) {
        // Only fails if the counter would overflow (it is then readable anyway).
        let _ = self.fd.write(1);
    }

    /// Makes the descriptor unreadable again.
    pub fn reset(&self) {
        let _ = self.fd.read();
    }
}

impl AsFd for Waker {
    fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waker_wakes_and_resets() {
        let mut p = Poller::new(8).unwrap();
        let w = Waker::new().unwrap();
        p.add(&w, 7, true, false).unwrap();
        let mut ev = Vec::new();
        p.wait(&mut ev, Some(0)).unwrap();
        assert!(ev.is_empty());
        w.wake();
        w.wake();
        p.wait(&mut ev, Some(1000)).unwrap();
        assert_eq!(ev.len(), 1);
        assert_eq!(ev[0].token, 7);
        assert!(ev[0].read && !ev[0].write);
        w.reset();
        ev.clear();
        p.wait(&mut ev, Some(0)).unwrap();
        assert!(ev.is_empty(), "reset makes it quiet again");
    }

    #[test]
    fn write_interest_is_reported_and_can_be_turned_off() {
        let mut p = Poller::new(8).unwrap();
        let (a, _b) = std::os::unix::net::UnixStream::pair().unwrap();
        p.add(&a, 1, false, true).unwrap();
        let mut ev = Vec::new();
        p.wait(&mut ev, Some(1000)).unwrap();
        assert_eq!(ev.len(), 1);
        assert!(ev[0].write && !ev[0].read);
        p.modify(&a, 1, false, false).unwrap();
        ev.clear();
        p.wait(&mut ev, Some(0)).unwrap();
        assert!(ev.is_empty());
        p.delete(&a).unwrap();
    }
}
