//! Loading C service modules (`.so` built against skynet.h) through `cpath`.
//!
//! Each `?` template is tried in order with `dlopen(RTLD_NOW | RTLD_GLOBAL)`, as upstream does;
//! the symbol prefix is the module name after its last `.`. A loaded library is never closed.
//! Under `load_manifest` a module file that exists must match the manifest (see
//! `skynet_core::manifest`), else LAUNCH fails with the refusal line. Only the module file itself
//! is checked, not the shared libraries it links against.
//!
//! Modules linked into the process itself (libskynet's `skynet_module_register_static`) are
//! kept in a registry until the node starts, then added as built-ins.

use crate::abi::{context_ptr, skynet::skynet_context};
use libloading::os::unix::{Library, Symbol, RTLD_GLOBAL, RTLD_NOW};
use parking_lot::Mutex;
use skynet_core::manifest::{self, canonical};
use skynet_core::module::{Instance, Module, ModuleLoader, Modules};
use skynet_core::Context;
use std::ffi::{c_char, c_int, c_void, CString};
use std::path::Path;
use std::sync::Arc;

pub(crate) type CreateFn = unsafe extern "C" fn() -> *mut c_void;
pub(crate) type InitFn =
    unsafe extern "C" fn(*mut c_void, *mut skynet_context, *const c_char) -> c_int;
pub(crate) type ReleaseFn = unsafe extern "C" fn(*mut c_void);
pub(crate) type SignalFn = unsafe extern "C" fn(*mut c_void, c_int);

#[derive(Clone, Copy)]
pub(crate) struct Api {
    pub create: Option<CreateFn>,
    pub init: InitFn,
    pub release: Option<ReleaseFn>,
    pub signal: Option<SignalFn>,
}

struct CModule {
    api: Api,
    /// Keeps the library mapped (modules are never unloaded); `None` for a static module.
    _lib: Option<Library>,
}

/// Modules registered by the process before the node starts; `None` once it has.
static STATIC: Mutex<Option<Vec<(String, Api)>>> = Mutex::new(Some(Vec::new()));

/// Registers a module linked into the process. Refused once the node has started, or for a
/// name LAUNCH could not ask for (empty, with a blank, or refused by the name rules).
pub(crate) fn add_static(name: &str, api: Api) -> Result<(), String> {
    if name.is_empty() || name.contains(char::is_whitespace) {
        return Err(format!(
            "static module name {name:?} is empty or has a blank"
        ));
    }
    skynet_core::module::check_name(name)?;
    match STATIC.lock().as_mut() {
        Some(list) => {
            list.retain(|(n, _)| n != name);
            list.push((name.to_owned(), api));
            Ok(())
        }
        None => Err(format!(
            "static module {name}: registered after the node started"
        )),
    }
}

/// Adds the static modules to `modules` as built-ins (they win over ours of the same name)
/// and closes the registry.
pub(crate) fn register_static(modules: &mut Modules) {
    for (name, api) in STATIC.lock().take().unwrap_or_default() {
        modules.add_builtin(&name, Arc::new(CModule { api, _lib: None }));
    }
}

struct CInstance {
    api: Api,
    inst: *mut c_void,
}

// SAFETY: the instance pointer is the module's; upstream's contract makes init/release run on
// one thread at a time and requires `_signal` to be thread-safe.
unsafe impl Send for CInstance {}
// SAFETY: as above.
unsafe impl Sync for CInstance {}

impl Module for CModule {
    fn create(&self) -> Option<Box<dyn Instance>> {
        let inst = match self.api.create {
            // SAFETY: the module's own constructor, no arguments.
            Some(f) => unsafe { f() },
            // No `_create`: upstream uses an all-ones pointer as the instance.
            None => usize::MAX as *mut c_void,
        };
        if inst.is_null() {
            return None;
        }
        Some(Box::new(CInstance {
            api: self.api,
            inst,
        }))
    }
}

impl Instance for CInstance {
    fn init(&self, ctx: &Arc<Context>, parm: Option<&str>) -> bool {
        let parm = parm.map(|p| CString::new(p.replace('\0', "")).unwrap_or_default());
        let p = parm.as_ref().map_or(std::ptr::null(), |c| c.as_ptr());
        // SAFETY: the module's `_init` with its instance, the live context and a C string.
        unsafe { (self.api.init)(self.inst, context_ptr(ctx), p) == 0 }
    }

    fn signal(&self, sig: i32) {
        if let Some(f) = self.api.signal {
            // SAFETY: the module's `_signal`, which upstream requires to be thread-safe.
            unsafe { f(self.inst, sig) }
        }
    }
}

impl Drop for CInstance {
    fn drop(&mut self) {
        if let Some(f) = self.api.release {
            // SAFETY: the module's `_release`, called once, after the last callback.
            unsafe { f(self.inst) }
        }
    }
}

/// The `cpath` loader.
pub struct CLoader;

fn symbol<T: Copy>(lib: &Library, name: &str) -> Option<T> {
    let c = CString::new(name).ok()?;
    // SAFETY: the symbol is used with the type skynet.h's module contract gives it.
    let s: Symbol<T> = unsafe { lib.get(c.as_bytes_with_nul()) }.ok()?;
    Some(*s)
}

impl ModuleLoader for CLoader {
    fn load(&self, name: &str, cpath: &str) -> Result<Arc<dyn Module>, String> {
        let mut errors = Vec::new();
        for template in cpath.split(';').filter(|t| !t.is_empty()) {
            let path = template.replacen('?', name, 1);
            // Under `load_manifest`, an existing file is hashed first and then opened by its
            // canonical path, the one the manifest check used; a missing one is a miss, as
            // dlopen's.
            let open_path = match manifest::current() {
                Some(m) if Path::new(&path).exists() => {
                    let file = Path::new(&path);
                    if let Err(why) = m.read_checked(file) {
                        return Err(m.refusal_line("C module", file, &why));
                    }
                    canonical(file).into_os_string()
                }
                Some(_) => {
                    errors.push(format!("{path}: No such file or directory"));
                    continue;
                }
                None => path.clone().into(),
            };
            // SAFETY: loading a module runs its constructors; that is what LAUNCH asks for.
            let lib = match unsafe { Library::open(Some(&open_path), RTLD_NOW | RTLD_GLOBAL) } {
                Ok(l) => l,
                Err(e) => {
                    // libloading keeps dlerror()'s text in the error's source.
                    let why = std::error::Error::source(&e)
                        .map_or_else(|| e.to_string(), |s| s.to_string());
                    errors.push(why);
                    continue;
                }
            };
            let prefix = name.rsplit('.').next().unwrap_or(name);
            let Some(init) = symbol::<InitFn>(&lib, &format!("{prefix}_init")) else {
                return Err(format!(
                    "error: C service {path} has no {prefix}_init function"
                ));
            };
            let api = Api {
                create: symbol(&lib, &format!("{prefix}_create")),
                init,
                release: symbol(&lib, &format!("{prefix}_release")),
                signal: symbol(&lib, &format!("{prefix}_signal")),
            };
            return Ok(Arc::new(CModule {
                api,
                _lib: Some(lib),
            }));
        }
        if errors.is_empty() {
            errors.push("cpath is empty".to_owned());
        }
        Err(format!(
            "error: try open {name} failed : {}",
            errors.join("; ")
        ))
    }
}
