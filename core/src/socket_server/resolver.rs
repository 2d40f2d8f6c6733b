//! Host-name lookups for `connect`, done on a thread of their own: a slow or failing name
//! server never holds up the socket thread's I/O. Literal addresses need no lookup and are
//! handled by the socket thread at once.

use crate::poll::{Poller, Waker};
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::{mpsc, Arc};

/// Resolves `host:port` (blocking), as [`super::address::resolve`] does.
pub(super) type Lookup = Arc<dyn Fn(&str, i32) -> io::Result<Vec<SocketAddr>> + Send + Sync>;

/// True if connecting to `host:port` needs a (possibly slow) name lookup: the host is a name,
/// not an IP literal, and the port is valid (an invalid one fails without a lookup).
pub(super) fn needs_lookup(host: &str, port: i32) -> bool {
    !host.is_empty() && host.parse::<IpAddr>().is_err() && u16::try_from(port).is_ok()
}

/// A finished lookup for the connection `id`.
pub(super) struct Resolved {
    pub(super) id: i32,
    pub(super) addrs: io::Result<Vec<SocketAddr>>,
}

struct Job {
    id: i32,
    host: String,
    port: i32,
}

/// The socket thread's side of the lookup thread: it queues jobs, and takes the results once
/// the waker (registered in the socket thread's epoll) fires. The thread starts with the
/// first lookup and ends once this side is dropped and its current lookup returns.
pub(super) struct Resolver {
    lookup: Lookup,
    waker: Arc<Waker>,
    jobs: Option<mpsc::Sender<Job>>,
    done_tx: mpsc::Sender<Resolved>,
    done: mpsc::Receiver<Resolved>,
}

impl Resolver {
    /// Registers the resolver's waker in `poll` under `token`.
    pub(super) fn new(lookup: Lookup, poll: &Poller, token: u64) -> io::Result<Resolver> {
        let waker = Waker::new()?;
        poll.add(&waker, token, true, false)?;
        let (done_tx, done) = mpsc::channel();
        Ok(Resolver {
            lookup,
            waker: Arc::new(waker),
            jobs: None,
            done_tx,
            done,
        })
    }

    /// Looks `host:port` up for the connection `id`; the result comes back through
    /// [`Resolver::take`] after the waker fired. Lookups are answered in order.
    pub(super) fn start(&mut self, id: i32, host: String, port: i32) {
        let job = Job { id, host, port };
        let job = match &self.jobs {
            Some(jobs) => match jobs.send(job) {
                Ok(()) => return,
                Err(mpsc::SendError(job)) => job,
            },
            None => job,
        };
        match self.spawn() {
            Some(jobs) => {
                // A new thread always takes its first job.
                let _ = jobs.send(job);
                self.jobs = Some(jobs);
            }
            None => {
                // No thread: look up here rather than lose the connection.
                let addrs = (self.lookup)(&job.host, job.port);
                let _ = self.done_tx.send(Resolved { id: job.id, addrs });
                self.waker.wake();
            }
        }
    }

    fn spawn(&self) -> Option<mpsc::Sender<Job>> {
        let (tx, rx) = mpsc::channel::<Job>();
        let lookup = self.lookup.clone();
        let waker = self.waker.clone();
        let done = self.done_tx.clone();
        std::thread::Builder::new()
            .name("socket-resolver".into())
            .spawn(move || {
                for job in rx {
                    let addrs = lookup(&job.host, job.port);
                    if done.send(Resolved { id: job.id, addrs }).is_err() {
                        return;
                    }
                    waker.wake();
                }
            })
            .ok()
            .map(|_| tx)
    }

    /// The lookups finished since the last call.
    pub(super) fn take(&self) -> Vec<Resolved> {
        self.waker.reset();
        self.done.try_iter().collect()
    }
}
