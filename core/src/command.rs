//! The text command interface (upstream `skynet_command`).
//!
//! Results are formatted exactly as upstream: handles from REG/QUERY/MONITOR as `:%x`, LAUNCH
//! as `:%08X`, numbers in decimal. `None` is C's NULL.

use crate::env::env;
use crate::log::ServiceLog;
use crate::server::{parse_hex, Context, Node};
use std::ffi::CStr;
use std::sync::atomic::Ordering;

/// A command's answer.
#[derive(Debug, PartialEq, Eq)]
pub enum CommandResult {
    /// Text to be copied into the context's result buffer.
    Text(String),
    /// An env value: a pointer that stays valid for the life of the process.
    Env(&'static CStr),
}

impl CommandResult {
    pub fn as_bytes(&self) -> &[u8] {
        match self {
            CommandResult::Text(s) => s.as_bytes(),
            CommandResult::Env(c) => c.to_bytes(),
        }
    }
}

fn text(s: String) -> Option<CommandResult> {
    Some(CommandResult::Text(s))
}

/// Runs one command for `ctx`. Unknown commands answer `None`.
pub fn command(
    node: &Node,
    ctx: &Context,
    cmd: &str,
    param: Option<&str>,
) -> Option<CommandResult> {
    let p = param.unwrap_or("");
    match cmd {
        "TIMEOUT" => {
            let ti = strtol(p, 10) as i32;
            let session = ctx.new_session();
            node.timer.timeout(node, ctx.handle(), ti, session);
            text(session.to_string())
        }
        "REG" => match p {
            "" => text(format!(":{:x}", ctx.handle())),
            _ => match p.strip_prefix('.') {
                Some(name) => node
                    .handles
                    .bind_name(name, ctx.handle())
                    .then(|| CommandResult::Text(name.to_owned())),
                None => {
                    ctx.error(format!("error: Can't register global name {p} in C"));
                    None
                }
            },
        },
        "QUERY" => p
            .strip_prefix('.')
            .and_then(|name| node.handles.find_name(name))
            .map(|h| CommandResult::Text(format!(":{h:x}"))),
        "NAME" => cmd_name(node, ctx, p),
        "EXIT" => {
            node.exit_service(ctx, 0);
            None
        }
        "KILL" => {
            let h = to_handle(node, ctx, p);
            if h != 0 {
                node.exit_service(ctx, h);
            }
            None
        }
        "LAUNCH" => {
            let (module, args) = split_launch(p);
            node.launch(module, args)
                .map(|h| CommandResult::Text(format!(":{h:08X}")))
        }
        "GETENV" => env().get(p).map(CommandResult::Env),
        "SETENV" => {
            if let Some((key, value)) = p.split_once(' ') {
                if let Err(e) = env().set(key, value) {
                    ctx.error(e);
                }
            }
            None
        }
        "STARTTIME" => text(node.timer.starttime().to_string()),
        "ABORT" => {
            node.abort();
            None
        }
        "MONITOR" => {
            if p.is_empty() {
                match node.monitor_exit.load(Ordering::Relaxed) {
                    0 => None,
                    h => text(format!(":{h:x}")),
                }
            } else {
                let h = to_handle(node, ctx, p);
                node.monitor_exit.store(h, Ordering::Relaxed);
                None
            }
        }
        "STAT" => text(stat(ctx, p)),
        "QUEUELIMIT" => queue_limit(ctx, p),
        "LOGON" => {
            logon(node, ctx, p);
            None
        }
        "LOGOFF" => {
            logoff(node, ctx, p);
            None
        }
        "SIGNAL" => {
            let (addr, rest) = p.split_once(' ').unwrap_or((p, ""));
            let h = to_handle(node, ctx, addr);
            if let Some(target) = node.grab(h) {
                let sig = if rest.is_empty() {
                    0
                } else {
                    strtol(rest, 0) as i32
                };
                target.signal(sig);
            }
            None
        }
        _ => None,
    }
}

/// LAUNCH's parameter: the module is the text before the first blank (space, tab, CR, LF); the
/// arguments are the rest after that one delimiter, cut at the first CR or LF. No delimiter
/// means no arguments (NULL), which is not the same as empty arguments.
pub fn split_launch(p: &str) -> (&str, Option<&str>) {
    match p.find([' ', '\t', '\r', '\n']) {
        Some(i) => {
            let rest = &p[i + 1..];
            let rest = rest.find(['\r', '\n']).map_or(rest, |j| &rest[..j]);
            (&p[..i], Some(rest))
        }
        None => (p, None),
    }
}

fn cmd_name(node: &Node, ctx: &Context, p: &str) -> Option<CommandResult> {
    let mut words = p.split_ascii_whitespace();
    let (name, addr) = (words.next()?, words.next()?);
    let handle = parse_hex(addr.strip_prefix(':')?);
    if handle == 0 {
        return None;
    }
    match name.strip_prefix('.') {
        Some(n) => node
            .handles
            .bind_name(n, handle)
            .then(|| CommandResult::Text(n.to_owned())),
        None => {
            ctx.error(format!("error: Can't set global name {name} in C"));
            None
        }
    }
}

/// `:hex` or `.name` to a handle; anything else is logged and gives 0.
fn to_handle(node: &Node, ctx: &Context, p: &str) -> u32 {
    if let Some(hex) = p.strip_prefix(':') {
        parse_hex(hex)
    } else if let Some(name) = p.strip_prefix('.') {
        node.handles.find_name(name).unwrap_or(0)
    } else {
        ctx.error(format!("error: Can't convert {p} to handle"));
        0
    }
}

fn stat(ctx: &Context, what: &str) -> String {
    match what {
        "mqlen" => ctx.queue().len().to_string(),
        "endless" => if ctx.take_endless() { "1" } else { "0" }.to_owned(),
        "cpu" => format!("{:.6}", ctx.cpu_cost_us() as f64 / 1e6),
        "time" => match ctx.current_cpu_us() {
            Some(us) => format!("{:.6}", us as f64 / 1e6),
            None => "0".to_owned(),
        },
        "message" => ctx.message_count().to_string(),
        _ => String::new(),
    }
}

/// `QUEUELIMIT [messages [bytes]]`: sets the calling service's queue limits (0 = unlimited; a
/// missing `bytes` keeps the current one) and answers the limits now in force as
/// `"messages bytes"`. A bad parameter is logged, changes nothing and answers NULL.
fn queue_limit(ctx: &Context, p: &str) -> Option<CommandResult> {
    let mut limits = ctx.queue().limits();
    let mut words = p.split_ascii_whitespace();
    let parsed = (|| {
        if let Some(m) = words.next() {
            limits.messages = m.parse::<usize>().ok()?;
        }
        if let Some(b) = words.next() {
            limits.bytes = b.parse::<usize>().ok()?;
        }
        words.next().is_none().then_some(limits)
    })();
    match parsed {
        Some(l) => {
            ctx.queue().set_limits(l);
            text(format!("{} {}", l.messages, l.bytes))
        }
        None => {
            ctx.error(format!(
                "error: QUEUELIMIT wants \"[messages [bytes]]\" (0 = unlimited), got \"{p}\""
            ));
            None
        }
    }
}

fn logon(node: &Node, ctx: &Context, p: &str) {
    let Some(target) = node.grab(to_handle(node, ctx, p)) else {
        return;
    };
    let Some(logpath) = env().get_str("logpath") else {
        return;
    };
    let mut slot = target.service_log().lock();
    if slot.is_some() {
        return;
    }
    let (path, log) = ServiceLog::open(
        &logpath,
        target.handle(),
        node.timer.now(),
        node.timer.starttime(),
    );
    match log {
        Some(l) => {
            ctx.error(format!("Open log file {path}"));
            *slot = Some(l);
            target.set_log_on(true);
        }
        None => ctx.error(format!("Open log file {path} fail")),
    }
}

fn logoff(node: &Node, ctx: &Context, p: &str) {
    let Some(target) = node.grab(to_handle(node, ctx, p)) else {
        return;
    };
    let log = target.service_log().lock().take();
    target.set_log_on(false);
    if let Some(log) = log {
        ctx.error(format!("Close log file :{:08x}", target.handle()));
        log.close(node.timer.now());
    }
}

/// C `strtol(s, NULL, base)` for base 10 or 0 (0x.. hex, 0.. octal): leading blanks, a sign,
/// the longest run of digits; nothing parsed gives 0.
pub fn strtol(s: &str, base: u32) -> i64 {
    let s = s.trim_start();
    let (neg, s) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    let (radix, digits) = match base {
        0 if s.starts_with("0x") || s.starts_with("0X") => (16, &s[2..]),
        0 if s.starts_with('0') => (8, s),
        0 => (10, s),
        b => (b, s),
    };
    let mut v: i64 = 0;
    for c in digits.chars() {
        match c.to_digit(radix) {
            Some(d) => {
                v = v
                    .saturating_mul(i64::from(radix))
                    .saturating_add(i64::from(d))
            }
            None => break,
        }
    }
    if neg {
        -v
    } else {
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn launch_param_split() {
        assert_eq!(
            split_launch("snlua bootstrap"),
            ("snlua", Some("bootstrap"))
        );
        assert_eq!(split_launch("logger"), ("logger", None));
        assert_eq!(split_launch("m "), ("m", Some("")));
        assert_eq!(split_launch("m  a b\r\nx"), ("m", Some(" a b")));
        assert_eq!(split_launch("m\ta"), ("m", Some("a")));
    }

    #[test]
    fn strtol_like_c() {
        assert_eq!(strtol("  42xyz", 10), 42);
        assert_eq!(strtol("-5", 10), -5);
        assert_eq!(strtol("", 10), 0);
        assert_eq!(strtol("0x1f", 0), 31);
        assert_eq!(strtol("010", 0), 8);
        assert_eq!(strtol(" 9", 0), 9);
    }
}
