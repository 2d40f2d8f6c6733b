//! Loading of the skynet config file (upstream: `load_config` and `_init_env` in skynet_main.c).
//!
//! The config file is Lua source run in a throwaway Lua state with a fresh table as `_ENV`;
//! every global it assigns becomes a config key. `$NAME` in the raw text is replaced by the
//! environment variable NAME before compiling, and `include "file"` pulls in another file that
//! writes into the same table.

use mlua::{Lua, LuaString, Table, Value};

/// One config error: Display prints one line naming the file (and the key, where one is at fault).
#[derive(Debug)]
pub struct ConfigError {
    pub message: String,
}

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for ConfigError {}

fn error(message: String) -> ConfigError {
    ConfigError { message }
}

/// Runs with the config file name as its argument and returns the result table, or nil and a
/// message. Everything runs under pcall so a failure yields Lua's own one-line message (with
/// file:line) rather than a traceback. Path handling follows upstream exactly: the current path
/// starts as "./", a relative include's directory is appended to it, an absolute one replaces it,
/// and it is restored once the include is done.
const LOADER: &str = r#"
local config_name = ...
local result = {}
local sep = package.config:sub(1, 1)
local current_path = "." .. sep

local function include(filename)
	local last_path = current_path
	local path, name = filename:match("(.*" .. sep .. ")(.*)$")
	if not path then
		name = filename
	elseif path:sub(1, 1) == sep then
		current_path = path
	else
		current_path = current_path .. path
	end
	local fullname = current_path .. name
	local f, err = io.open(fullname)
	if not f then
		error("cannot open " .. err, 0)
	end
	local code, rerr = f:read("a")
	f:close()
	if not code then
		error("cannot read " .. fullname .. ": " .. tostring(rerr), 0)
	end
	code = code:gsub("%$([%w_%d]+)", function(var)
		return os.getenv(var) or error(filename .. ": os.getenv() failed: " .. var, 0)
	end)
	local chunk, lerr = load(code, "@" .. filename, "t", result)
	if not chunk then
		error(lerr, 0) -- as is: it already names file:line
	end
	chunk()
	current_path = last_path
end

local ok, err = pcall(function()
	setmetatable(result, { __index = { include = include } })
	include(config_name)
	-- drop the metatable so `include` is not visible as a key
	setmetatable(result, nil)
end)
if not ok then
	return nil, tostring(err)
end
return result
"#;

/// Loads `path`, returns every global the config assigned, as (key, value-string) pairs, sorted by key.
pub fn load(path: &str) -> Result<Vec<(String, String)>, ConfigError> {
    // Lua::new's safe library set (all but `debug`) is enough: the config's `_ENV` is the bare
    // result table, so only our loader (and string methods) can reach the libraries anyway.
    let lua = Lua::new();
    let lua_err = |e: mlua::Error| error(format!("{path}: {e}"));
    let (table, message): (Option<Table>, Option<LuaString>) = lua
        .load(LOADER)
        .set_name("=[skynet config]")
        .call(path)
        .map_err(lua_err)?;
    let table = match (table, message) {
        (Some(table), _) => table,
        (None, message) => {
            let message = message.map_or_else(|| "unknown error".into(), |m| m.to_string_lossy());
            return Err(error(message));
        }
    };

    // Collect first: converting numbers needs the Lua state while `pairs` holds it.
    let pairs = table
        .pairs::<Value, Value>()
        .collect::<mlua::Result<Vec<_>>>()
        .map_err(lua_err)?;
    let mut out = Vec::with_capacity(pairs.len());
    for (key, value) in pairs {
        let key = match key {
            Value::String(s) => c_text(&s).ok_or_else(|| {
                error(format!(
                    "{path}: Invalid config table (key {:?} is not valid UTF-8 or contains NUL)",
                    s.to_string_lossy()
                ))
            })?,
            other => {
                return Err(error(format!(
                    "{path}: Invalid config table (a {} key; keys must be strings)",
                    type_name(&other)
                )))
            }
        };
        let invalid = |what: &str| {
            error(format!(
                "{path}: invalid config value for key '{key}' ({what}; expected string, number or boolean)"
            ))
        };
        let value = match value {
            Value::Boolean(b) => b.to_string(),
            // Lua's own number formatting, so `2.0` stays "2.0" and `8` stays "8".
            v @ (Value::Integer(_) | Value::Number(_)) => lua
                .coerce_string(v)
                .map_err(lua_err)?
                .map(|s| s.to_string_lossy())
                .ok_or_else(|| invalid("a number"))?,
            // The value ends up as a C string, so reject what it cannot carry.
            Value::String(s) => {
                c_text(&s).ok_or_else(|| invalid("a string not valid UTF-8 or containing NUL"))?
            }
            other => return Err(invalid(&format!("a {}", type_name(&other)))),
        };
        out.push((key, value));
    }
    out.sort();
    Ok(out)
}

/// The string as Rust text, if it is UTF-8 without NUL bytes.
fn c_text(s: &LuaString) -> Option<String> {
    let bytes = s.as_bytes();
    if bytes.contains(&0) {
        return None;
    }
    std::str::from_utf8(&bytes).ok().map(str::to_owned)
}

/// The name Lua's `type()` would give.
fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Integer(_) => "number",
        Value::LightUserData(_) => "userdata",
        other => other.type_name(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;
    use std::path::PathBuf;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// A fresh directory under the system temp dir, removed on drop.
    struct TempDir(PathBuf);

    impl TempDir {
        fn new() -> Self {
            static N: AtomicUsize = AtomicUsize::new(0);
            let dir = std::env::temp_dir().join(format!(
                "skynet-config-test-{}-{}",
                std::process::id(),
                N.fetch_add(1, Ordering::Relaxed)
            ));
            fs::create_dir_all(&dir).unwrap();
            TempDir(dir)
        }

        /// Writes `rel` (creating parent dirs) and returns its absolute path.
        fn write(&self, rel: &str, text: &str) -> String {
            let p = self.0.join(rel);
            fs::create_dir_all(p.parent().unwrap()).unwrap();
            fs::write(&p, text).unwrap();
            p.to_str().unwrap().to_owned()
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    fn kv(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn plain_keys_of_each_type() {
        let d = TempDir::new();
        let p = d.write(
            "config",
            "thread = 8\nratio = 2.0\nbig = 1e100\nname = \"snlua bootstrap\"\n\
             profile = false\ndaemon = true\nlocal hidden = {}\n",
        );
        assert_eq!(
            load(&p).unwrap(),
            kv(&[
                ("big", "1e+100"),
                ("daemon", "true"),
                ("name", "snlua bootstrap"),
                ("profile", "false"),
                ("ratio", "2.0"),
                ("thread", "8"),
            ])
        );
    }

    #[test]
    fn env_holds_only_the_config() {
        // As upstream: the libraries are loaded, but `_ENV` is the bare result table, so only
        // the string metatable reaches them; globals such as `print` are not visible.
        let d = TempDir::new();
        let p = d.write(
            "config",
            "s = ('%d-%s'):format(3, 'ab')\nno_print = print == nil\nno_string = string == nil\n",
        );
        assert_eq!(
            load(&p).unwrap(),
            kv(&[("no_print", "true"), ("no_string", "true"), ("s", "3-ab")])
        );
    }

    #[test]
    fn env_var_expansion() {
        // PATH is always set; tests avoid set_var since Lua reads the environment via libc
        // while other test threads run.
        let path = std::env::var("PATH").unwrap();
        let d = TempDir::new();
        let p = d.write(
            "config",
            "lua_path = \"$PATH;x\"\ncost = \"$ 5\"\n-- $PATH in a comment\n",
        );
        assert_eq!(
            load(&p).unwrap(),
            kv(&[("cost", "$ 5"), ("lua_path", &format!("{path};x"))])
        );
    }

    #[test]
    fn missing_env_var() {
        let d = TempDir::new();
        let p = d.write("config", "x = \"$SKYNET_CFG_TEST_SURELY_UNSET_42\"\n");
        let e = load(&p).unwrap_err().to_string();
        assert_eq!(
            e,
            format!("{p}: os.getenv() failed: SKYNET_CFG_TEST_SURELY_UNSET_42")
        );
        // In an included file, the error names that file as it was given to include.
        d.write("sub/inc.lua", "y = $SKYNET_CFG_TEST_SURELY_UNSET_42\n");
        let p = d.write("top", "include 'sub/inc.lua'\n");
        assert_eq!(
            load(&p).unwrap_err().to_string(),
            "sub/inc.lua: os.getenv() failed: SKYNET_CFG_TEST_SURELY_UNSET_42"
        );
    }

    #[test]
    fn include_relative_nested_and_absolute() {
        let d = TempDir::new();
        let abs = d.write("elsewhere/abs.lua", "abs = 'yes'\nshared = 'abs'\n");
        // sub/inner.lua is found relative to sub/, where mid.lua lives.
        d.write("sub/mid.lua", "mid = 1\ninclude 'inner.lua'\n");
        d.write("sub/inner.lua", "inner = 2\ninclude 'deeper/leaf.lua'\n");
        d.write("sub/deeper/leaf.lua", "leaf = 3\n");
        // After sub/mid.lua returns, the current path is the top dir again.
        d.write("sibling.lua", "sibling = 4\n");
        let p = d.write(
            "config",
            &format!(
                "shared = 'top'\ninclude 'sub/mid.lua'\ninclude 'sibling.lua'\ninclude '{abs}'\n"
            ),
        );
        assert_eq!(
            load(&p).unwrap(),
            kv(&[
                ("abs", "yes"),
                ("inner", "2"),
                ("leaf", "3"),
                ("mid", "1"),
                ("shared", "abs"),
                ("sibling", "4"),
            ])
        );
    }

    #[test]
    fn include_relative_to_working_directory() {
        // A bare file name is looked up in "./", as upstream does. Use a path relative to the
        // process's working directory to exercise the "current path .. dir" branch at top level.
        let d = TempDir::new();
        let p = d.write("config", "x = 1\n");
        let cwd = std::env::current_dir().unwrap();
        let depth = cwd.components().count() - 1;
        let rel = format!("{}{}", "../".repeat(depth), p.trim_start_matches('/'));
        assert_eq!(load(&rel).unwrap(), kv(&[("x", "1")]));
    }

    #[test]
    fn missing_include_names_the_file() {
        let d = TempDir::new();
        let p = d.write("config", "include 'nope.lua'\n");
        let e = load(&p).unwrap_err().to_string();
        assert!(e.contains("nope.lua"), "{e}");
        assert!(e.contains("No such file"), "{e}");
    }

    #[test]
    fn table_value_names_the_key() {
        let d = TempDir::new();
        let p = d.write("config", "ok = 1\nfoo = {}\n");
        assert_eq!(
            load(&p).unwrap_err().to_string(),
            format!(
                "{p}: invalid config value for key 'foo' (a table; expected string, number or boolean)"
            )
        );
        let p = d.write("config2", "bar = function() end\n");
        let e = load(&p).unwrap_err().to_string();
        assert!(e.contains("key 'bar' (a function;"), "{e}");
    }

    #[test]
    fn string_with_nul_is_rejected() {
        let d = TempDir::new();
        let p = d.write("config", "x = 'a\\0b'\n");
        let e = load(&p).unwrap_err().to_string();
        assert!(
            e.starts_with(&format!("{p}: invalid config value for key 'x'")),
            "{e}"
        );
    }

    #[test]
    fn syntax_error() {
        let d = TempDir::new();
        let p = d.write("config", "a = 1\nb = = 2\n");
        let e = load(&p).unwrap_err().to_string();
        assert!(e.starts_with(&format!("{p}:2:")), "{e}");
        assert!(!e.contains('\n'), "{e}");
    }

    #[test]
    fn runtime_error() {
        let d = TempDir::new();
        let p = d.write("config", "a = 1\nlocal t = nil\nx = t.field\n");
        assert_eq!(
            load(&p).unwrap_err().to_string(),
            format!("{p}:3: attempt to index a nil value (local 't')")
        );
    }

    #[test]
    fn missing_file() {
        let d = TempDir::new();
        let p = d.0.join("absent").to_str().unwrap().to_owned();
        let e = load(&p).unwrap_err().to_string();
        assert_eq!(e, format!("cannot open {p}: No such file or directory"));
    }

    #[test]
    fn non_string_key() {
        let d = TempDir::new();
        let p = d.write("config", "_ENV[1] = 'x'\n");
        let e = load(&p).unwrap_err().to_string();
        assert!(e.starts_with(&format!("{p}: Invalid config table")), "{e}");
    }

    #[test]
    fn include_is_not_a_key() {
        let d = TempDir::new();
        let p = d.write("config", "x = include ~= nil\n");
        assert_eq!(load(&p).unwrap(), kv(&[("x", "true")]));
    }
}
