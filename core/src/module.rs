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
        if let Some(m) = self.loaded.read().get(name) {
            return Ok(m.clone());
        }
        let prefer_so = self.cpath_first.contains(name);
        let builtin = self.builtins.get(name).cloned();
        let module = match (&builtin, prefer_so) {
            (Some(b), false) => b.clone(),
            _ => match (self.load_so(name), builtin) {
                (Ok(m), _) => m,
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
    fn cpath_templates_need_question_mark() {
        assert!(Modules::validate_cpath("./a/?.so;;./b/?.so").is_ok());
        assert!(Modules::validate_cpath("./a/?.so;./b/x.so")
            .unwrap_err()
            .contains("./b/x.so"));
    }
}
