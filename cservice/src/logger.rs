//! The `logger` service (upstream `service_logger`).
//!
//! Parameter: a file path (opened for append) or nothing for stdout. Each PTYPE_TEXT message
//! becomes `[:<source %08x>] <text>\n`; in a file the line is prefixed with the local time
//! `dd/mm/yy HH:MM:SS.cc `. A PTYPE_SYSTEM message (sent on SIGHUP) reopens the file, so log
//! rotation works by renaming the file and sending SIGHUP.

use skynet_core::localtime::localtime;
use skynet_core::module::{Instance, Module};
use skynet_core::{node, ptype, Context, Message};
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::sync::Arc;

pub struct LoggerModule;

impl Module for LoggerModule {
    fn create(&self) -> Option<Box<dyn Instance>> {
        Some(Box::new(LoggerInstance))
    }
}

struct LoggerInstance;

enum Output {
    Stdout,
    File { path: String, file: File },
}

struct Logger {
    out: Output,
    line: Vec<u8>,
}

fn open(path: &str) -> io::Result<File> {
    OpenOptions::new().append(true).create(true).open(path)
}

impl Instance for LoggerInstance {
    fn init(&self, ctx: &Arc<Context>, parm: Option<&str>) -> bool {
        let out = match parm.filter(|p| !p.is_empty()) {
            None => Output::Stdout,
            Some(path) => match open(path) {
                Ok(file) => Output::File {
                    path: path.to_owned(),
                    file,
                },
                Err(e) => {
                    eprintln!("logger: can't open log file {path}: {e}");
                    return false;
                }
            },
        };
        let mut logger = Logger {
            out,
            line: Vec::with_capacity(256),
        };
        ctx.set_callback(Some(Box::new(move |_: &Context, msg: Message| {
            logger.handle(msg)
        })));
        true
    }
}

/// `dd/mm/yy HH:MM:SS.cc ` for a skynet time (`starttime` seconds + `now` centiseconds).
pub fn timestamp(starttime: u32, now: u64) -> String {
    let t = localtime(i64::from(starttime) + (now / 100) as i64);
    format!(
        "{:02}/{:02}/{:02} {:02}:{:02}:{:02}.{:02} ",
        t.day,
        t.month,
        t.year.rem_euclid(100),
        t.hour,
        t.minute,
        t.second,
        now % 100
    )
}

impl Logger {
    fn handle(&mut self, msg: Message) {
        match msg.ty as i32 {
            ptype::SYSTEM => self.reopen(),
            ptype::TEXT => self.write(msg.source, msg.data.as_slice()),
            _ => {}
        }
    }

    fn reopen(&mut self) {
        if let Output::File { path, file } = &mut self.out {
            match open(path) {
                Ok(f) => *file = f,
                Err(e) => eprintln!("logger: can't reopen log file {path}: {e}"),
            }
        }
    }

    fn write(&mut self, source: u32, text: &[u8]) {
        self.line.clear();
        if let Output::File { .. } = self.out {
            let timer = &node().timer;
            self.line
                .extend_from_slice(timestamp(timer.starttime(), timer.now()).as_bytes());
        }
        let _ = write!(self.line, "[:{source:08x}] ");
        self.line.extend_from_slice(text);
        self.line.push(b'\n');
        // One write per line, flushed at once, as upstream's fflush after every line.
        let _ = match &mut self.out {
            Output::Stdout => {
                let mut out = io::stdout().lock();
                out.write_all(&self.line).and_then(|_| out.flush())
            }
            Output::File { file, .. } => file.write_all(&self.line),
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamp_shape() {
        let s = timestamp(1_700_000_000, 1234);
        // dd/mm/yy HH:MM:SS.cc followed by a space
        assert_eq!(s.len(), 21);
        assert_eq!(&s[2..3], "/");
        assert_eq!(&s[5..6], "/");
        assert!(s.ends_with(".34 "));
    }
}
