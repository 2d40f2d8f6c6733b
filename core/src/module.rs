//! Service modules (upstream `skynet_module`): what LAUNCH instantiates.
//!
//! A module is either built in (Rust, registered by name at start-up) or loaded from a shared
//! object found through `cpath` by a [`ModuleLoader`] (the C loader lives in the `ffi` crate,
//! where `dlopen` and the C calling convention belong).
//!
//! Lookup order for a name: modules already loaded; then, unless the name is listed in the
//! `cpath_first` config key (or that key is `*`), the built-ins; then `cpath`; then the
//! built-ins again for names listed in `cpath_first`. So a stale `cservice/` directory never
//! shadows the built-in snlua/logger/gate/harbor, and a deployment that wants its own
//! `logger.so` says `cpath_first = "logger"`.

use crate::server::Context;
use parking_lot::RwLock;
use std::collections::HashMap;
use std::sync::Arc;

/// Longest service or module name LAUNCH accepts, in bytes.
pub const MAX_NAME_LEN: usize = 255;

/// Why `name` may not be used as a service or module name, if it may not. Names are put into
/// the `?` of the config's path templates (`cpath`, `luaservice`), so they must not leave the
/// directories those templates name: no `..` segment, no leading `/` (templates may be
/// absolute, names may not), no NUL byte (a C path would end there, dropping the template's
/// suffix), and not longer than [`MAX_NAME_LEN`]. A relative name with `/` in it is fine.
/// Upstream does not check names at all.
pub fn name_problem(name: &str) -> Option<&'static str> {
    if name.len() > MAX_NAME_LEN {
        Some("is longer than 255 bytes")
    } else if name.contains('\0') {
        Some("has a NUL byte")
    } else if name.starts_with('/') {
        Some("is an absolute path")
    } else if name.split('/').any(|segment| segment == "..") {
        Some("has a \"..\" segment")
    } else {
        None
    }
}

/// Checks a service or module name (see [`name_problem`]); the error is the line to log,
/// naming the service (its first 64 characters, escaped) and the reason.
pub fn check_name(name: &str) -> Result<(), String> {
    match name_problem(name) {
        None => Ok(()),
        Some(why) => {
            let mut shown: String = name.chars().take(64).collect();
            if shown.len() < name.len() {
                shown.push_str("...");
            }
            Err(format!("LAUNCH refused: service name {shown:?} {why}"))
        }
    }
}

/// A service type.
pub trait Module: Send + Sync {
    /// Creates an instance (upstream `_create`); `None` makes the launch fail silently.
    fn create(&self) -> Option<Box<dyn Instance>>;
}

/// A service instance. Dropping it is upstream's `_release`.
pub trait Instance: Send + Sync {
    /// Upstream `_init`, run on the launching thread; messages sent to `ctx` meanwhile are
    /// queued. Returns false when init failed.
    fn init(&self, ctx: &Arc<Context>, parm: Option<&str>) -> bool;
    /// Upstream `_signal`: runs on the thread issuing SIGNAL, concurrently with callbacks.
    fn signal(&self, _sig: i32) {}
    /// `cpu_limit`: interrupts the handler running now (from the monitor thread, concurrently
    /// with it). True if the instance can do so (snlua); the default cannot.
    fn interrupt(&self) -> bool {
        false
    }
    /// Whether [`Instance::interrupt`] can work (without interrupting anything).
    fn can_interrupt(&self) -> bool {
        false
    }
}

/// Finds and loads modules that are not built in.
pub trait ModuleLoader: Send + Sync {
    /// Loads `name` through the `;`-separated `?` templates of `cpath`. The error text names
    /// every path tried and the loader's reason.
    fn load(&self, name: &str, cpath: &str) -> Result<Arc<dyn Module>, String>;
}

/// Where to look for a module name before the built-ins.
#[derive(Clone, Debug, Default)]
pub enum CpathFirst {
    #[default]
    None,
    All,
    Names(Vec<String>),
}

impl CpathFirst {
    /// Parses the `cpath_first` config value: `*`, or names separated by `;`, `,` or blanks.
    pub fn parse(s: &str) -> CpathFirst {
        let names: Vec<String> = s
            .split([';', ',', ' ', '\t'])
            .filter(|n| !n.is_empty())
            .map(str::to_owned)
            .collect();
        if names.iter().any(|n| n == "*") {
            CpathFirst::All
        } else if names.is_empty() {
            CpathFirst::None
        } else {
            CpathFirst::Names(names)
        }
    }

    fn contains(&self, name: &str) -> bool {
        match self {
            CpathFirst::None => false,
            CpathFirst::All => true,
            CpathFirst::Names(v) => v.iter().any(|n| n == name),
        }
    }
}

/// The module registry.
pub struct Modules {
    cpath: String,
    cpath_first: CpathFirst,
    builtins: HashMap<String, Arc<dyn Module>>,
    loader: Option<Box<dyn ModuleLoader>>,
    loaded: RwLock<HashMap<String, Arc<dyn Module>>>,
}

impl Modules {
    pub fn new(cpath: &str, cpath_first: CpathFirst) -> Modules {
        Modules {
            cpath: cpath.to_owned(),
            cpath_first,
            builtins: HashMap::new(),
            loader: None,
            loaded: RwLock::new(HashMap::new()),
        }
    }

    /// Checks a `cpath` value: every non-empty template needs a `?`.
    pub fn validate_cpath(cpath: &str) -> Result<(), String> {
        match cpath.split(';').find(|t| !t.is_empty() && !t.contains('?')) {
            Some(t) => Err(format!(
                "Invalid C service path: template '{t}' in cpath has no '?'"
            )),
            None => Ok(()),
        }
    }

    pub fn add_builtin(&mut self, name: &str, module: Arc<dyn Module>) {
        self.builtins.insert(name.to_owned(), module);
    }

    pub fn set_loader(&mut self, loader: Box<dyn ModuleLoader>) {
        self.loader = Some(loader);
    }

    pub fn is_builtin(&self, name: &str) -> bool {
        self.builtins.contains_key(name)
    }

    /// Finds a module; the error explains why it could not be loaded.
    pub fn query(&self, name: &str) -> Result<Arc<dyn Module>, String> {
        check_name(name)?;
        if let Some(m) = self.loaded.read().get(name) {
            return Ok(m.clone());
        }
        let prefer_so = self.cpath_first.contains(name);
        let builtin = self.builtins.get(name).cloned();
        let module = match (&builtin, prefer_so) {
            (Some(b), false) => b.clone(),
            _ => match (self.load_so(name), builtin) {
                (Ok(m), _) => m,
                // A module file the manifest refused is not replaced by the built-in.
                (Err(e), _) if e.starts_with(crate::manifest::REFUSED) => return Err(e),
                (Err(_), Some(b)) => b,
                (Err(e), None) => return Err(e),
            },
        };
        let mut loaded = self.loaded.write();
        Ok(loaded.entry(name.to_owned()).or_insert(module).clone())
    }

    fn load_so(&self, name: &str) -> Result<Arc<dyn Module>, String> {
        match &self.loader {
            Some(l) => l.load(name, &self.cpath),
            None => Err(format!("try open {name} failed : no module loader")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Dummy;
    impl Module for Dummy {
        fn create(&self) -> Option<Box<dyn Instance>> {
            None
        }
    }
    struct Loader;
    impl ModuleLoader for Loader {
        fn load(&self, name: &str, _: &str) -> Result<Arc<dyn Module>, String> {
            if name == "onlyso" || name == "both" {
                Ok(Arc::new(Dummy))
            } else {
                Err(format!("try open {name} failed"))
            }
        }
    }

    fn registry(first: &str) -> (Modules, Arc<dyn Module>) {
        let mut m = Modules::new("./?.so", CpathFirst::parse(first));
        let b: Arc<dyn Module> = Arc::new(Dummy);
        m.add_builtin("both", b.clone());
        m.add_builtin("onlybuiltin", b.clone());
        m.set_loader(Box::new(Loader));
        (m, b)
    }

    #[test]
    fn builtins_win_unless_listed() {
        let (m, b) = registry("");
        assert!(Arc::ptr_eq(&m.query("both").unwrap(), &b));
        assert!(m.query("onlyso").is_ok());
        assert!(m.query("missing").err().unwrap().contains("missing"));
        let (m, b) = registry("both");
        assert!(!Arc::ptr_eq(&m.query("both").unwrap(), &b));
        assert!(Arc::ptr_eq(&m.query("onlybuiltin").unwrap(), &b));
        let (m, b) = registry("*");
        assert!(!Arc::ptr_eq(&m.query("both").unwrap(), &b));
    }

    #[test]
    fn names_stay_relative() {
        for ok in [
            "snlua",
            "foo.bar",
            "snax/xxx",
            "a/b/c",
            "./t_child",
            "...",
            "a..b",
            "..a/b..",
            "",
        ] {
            assert_eq!(name_problem(ok), None, "{ok:?}");
        }
        assert_eq!(name_problem(&"a".repeat(255)), None);
        let cases = [
            ("..", "has a \"..\" segment"),
            ("../x", "has a \"..\" segment"),
            ("a/../b", "has a \"..\" segment"),
            ("a/..", "has a \"..\" segment"),
            ("a//../b", "has a \"..\" segment"),
            ("/tmp/x", "is an absolute path"),
            ("/", "is an absolute path"),
            ("a\0b", "has a NUL byte"),
            ("\0", "has a NUL byte"),
        ];
        for (bad, why) in cases {
            assert_eq!(name_problem(bad), Some(why), "{bad:?}");
        }
        assert_eq!(
            name_problem(&"a".repeat(256)),
            Some("is longer than 255 bytes")
        );
        assert_eq!(
            check_name("../x").unwrap_err(),
            r#"LAUNCH refused: service name "../x" has a ".." segment"#
        );
        assert_eq!(
            check_name("a\0b").unwrap_err(),
            r#"LAUNCH refused: service name "a\0b" has a NUL byte"#
        );
        let long = check_name(&"é".repeat(200)).unwrap_err();
        assert_eq!(
            long,
            format!(
                "LAUNCH refused: service name \"{}...\" is longer than 255 bytes",
                "é".repeat(64)
            )
        );
    }

    #[test]
    fn query_refuses_bad_names_before_any_lookup() {
        let (mut m, _) = registry("*");
        m.add_builtin("../both", Arc::new(Dummy));
        for bad in ["../both", "/both", "both\0", &"b".repeat(300)] {
            assert!(m.query(bad).err().unwrap().starts_with("LAUNCH refused"));
        }
        assert!(m.query("both").is_ok());
    }

    #[test]
    fn cpath_templates_need_question_mark() {
        assert!(Modules::validate_cpath("./a/?.so;;./b/?.so").is_ok());
        assert!(Modules::validate_cpath("./a/?.so;./b/x.so")
            .unwrap_err()
            .contains("./b/x.so"));
    }
}
