//! The node environment (upstream `skynet_env`): config keys and SETENV values.
//!
//! Values are immutable once set and never removed, so the C ABI can hand out pointers to them
//! that stay valid for the life of the process (they are leaked on purpose).

use parking_lot::RwLock;
use std::collections::HashMap;
use std::ffi::{CStr, CString};
use std::sync::OnceLock;

pub struct Env {
    map: RwLock<HashMap<Box<str>, &'static CStr>>,
}

static ENV: OnceLock<Env> = OnceLock::new();

/// The process environment.
pub fn env() -> &'static Env {
    ENV.get_or_init(|| Env {
        map: RwLock::new(HashMap::new()),
    })
}

impl Env {
    pub fn get(&self, key: &str) -> Option<&'static CStr> {
        self.map.read().get(key).copied()
    }

    /// The value as UTF-8 text (lossy).
    pub fn get_str(&self, key: &str) -> Option<String> {
        self.get(key).map(|v| v.to_string_lossy().into_owned())
    }

    /// Sets a new key. A key is set once: a second set is refused (upstream asserts) and the
    /// first value stays. A value is cut at its first NUL, as C would see it.
    pub fn set(&self, key: &str, value: &str) -> Result<(), String> {
        let mut map = self.map.write();
        if map.contains_key(key) {
            return Err(format!("error: env key '{key}' is already set"));
        }
        let cut = value.split('\0').next().unwrap_or("");
        let v: &'static CStr = Box::leak(CString::new(cut).unwrap_or_default().into_boxed_c_str());
        map.insert(key.into(), v);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_once_and_stable_pointer() {
        let e = Env {
            map: RwLock::new(HashMap::new()),
        };
        e.set("a", "1").unwrap();
        let p = e.get("a").unwrap().as_ptr();
        assert!(e.set("a", "2").is_err());
        e.set("b", "x\0y").unwrap();
        assert_eq!(e.get("a").unwrap().as_ptr(), p);
        assert_eq!(e.get_str("a").as_deref(), Some("1"));
        assert_eq!(e.get_str("b").as_deref(), Some("x"));
        assert!(e.get("c").is_none());
    }
}
