//! Verified loading (`load_manifest`): the SHA-256 of every file the node loads code from.
//!
//! The manifest is the output of `sha256sum`: one `HASH  PATH` line per file (64 hex digits,
//! a space, then a space or `*`, then the path; a line starting with `\` has an escaped path,
//! `\\` and `\n`, as `sha256sum` writes names holding those). Blank lines are skipped; any
//! other malformed line makes the manifest unreadable, and the node does not start.
//!
//! Path rule: a relative path in the manifest is taken relative to the manifest's own
//! directory (so `cd DIR && sha256sum ... > DIR/manifest` and `sha256sum -c` from that
//! directory agree with the node, wherever it is started); an absolute one as is. Both are
//! canonicalised (symbolic links, `.` and `..` resolved) when the manifest is read. A file
//! the node loads is canonicalised the same way (relative to the working directory, as the
//! loaders open it) and looked up by that path.
//!
//! The manifest is read once, at start; editing it later changes nothing until a restart.

use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::path::{Component, Path, PathBuf};
use std::sync::OnceLock;

/// How every refusal line starts.
pub const REFUSED: &str = "load_manifest: refused ";

/// The parsed manifest: canonical path -> SHA-256.
#[derive(Debug)]
pub struct Manifest {
    file: String,
    entries: HashMap<PathBuf, [u8; 32]>,
}

/// Why a file may not be loaded.
#[derive(Debug, PartialEq, Eq)]
pub enum Refusal {
    /// The file could not be read (it exists: the caller checked).
    Unreadable(String),
    NotListed,
    Mismatch,
}

impl Manifest {
    /// Reads and parses the manifest at `file`. The error is the whole line to print.
    pub fn load(file: &str) -> Result<Manifest, String> {
        let text = std::fs::read(file)
            .map_err(|e| format!("load_manifest: cannot read the manifest '{file}': {e}"))?;
        let text = String::from_utf8(text)
            .map_err(|_| format!("load_manifest: the manifest '{file}' is not UTF-8 text"))?;
        let base = match Path::new(file).parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        Manifest::parse(file, &text, &base)
    }

    /// Parses manifest text; relative paths are taken relative to `base`.
    pub fn parse(file: &str, text: &str, base: &Path) -> Result<Manifest, String> {
        let mut entries = HashMap::new();
        for (i, line) in text.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            let bad = |why: &str| format!("load_manifest: {file}:{}: {why}", i + 1);
            let (escaped, line) = match line.strip_prefix('\\') {
                Some(rest) => (true, rest),
                None => (false, line),
            };
            let (hex, rest) = line
                .split_at_checked(64)
                .ok_or_else(|| bad("expected a SHA-256 (64 hex digits), two spaces and a path"))?;
            let hash = parse_hex(hex).ok_or_else(|| bad("the hash is not 64 hex digits"))?;
            let path = rest
                .strip_prefix("  ")
                .or_else(|| rest.strip_prefix(" *"))
                .ok_or_else(|| bad("expected two spaces (or \" *\") between hash and path"))?;
            if path.is_empty() {
                return Err(bad("the path is empty"));
            }
            let path = if escaped {
                unescape(path).ok_or_else(|| bad("a bad escape in the path"))?
            } else {
                path.to_owned()
            };
            let full = base.join(&path);
            entries.insert(canonical(&full), hash);
        }
        Ok(Manifest {
            file: file.to_owned(),
            entries,
        })
    }

    /// The manifest's file name, as configured.
    pub fn file(&self) -> &str {
        &self.file
    }

    /// Number of files listed.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Checks that `content`, read from `path`, is listed with its hash.
    pub fn check(&self, path: &Path, content: &[u8]) -> Result<(), Refusal> {
        match self.entries.get(&canonical(path)) {
            None => Err(Refusal::NotListed),
            Some(want) if *want == <[u8; 32]>::from(Sha256::digest(content)) => Ok(()),
            Some(_) => Err(Refusal::Mismatch),
        }
    }

    /// Reads `path` and checks it; the content is what was hashed, so a caller that loads from
    /// it loads exactly the verified bytes.
    pub fn read_checked(&self, path: &Path) -> Result<Vec<u8>, Refusal> {
        let content = std::fs::read(path).map_err(|e| Refusal::Unreadable(e.to_string()))?;
        self.check(path, &content)?;
        Ok(content)
    }

    /// Every listed file that is missing or whose content no longer matches, one line each
    /// (sorted by path): what `sha256sum -c` would complain about.
    pub fn verify_all(&self) -> Vec<String> {
        let mut paths: Vec<_> = self.entries.keys().collect();
        paths.sort();
        let mut out = Vec::new();
        for path in paths {
            match std::fs::read(path) {
                Err(e) => out.push(format!(
                    "load_manifest: {} listed in {} cannot be read: {e}",
                    path.display(),
                    self.file
                )),
                Ok(content) => {
                    if self.check(path, &content) == Err(Refusal::Mismatch) {
                        out.push(format!(
                            "load_manifest: {}: its SHA-256 does not match the manifest {}",
                            path.display(),
                            self.file
                        ));
                    }
                }
            }
        }
        out
    }

    /// The log line for a refused file.
    pub fn refusal_line(&self, what: &str, path: &Path, why: &Refusal) -> String {
        let reason = match why {
            Refusal::Unreadable(e) => format!("cannot read it: {e}"),
            Refusal::NotListed => format!("not listed in the manifest {}", self.file),
            Refusal::Mismatch => format!("its SHA-256 does not match the manifest {}", self.file),
        };
        format!("{REFUSED}{what} {}: {reason}", path.display())
    }
}

/// The canonical form of `path`: `fs::canonicalize` when the file exists, else the absolute
/// path with `.` and `..` removed lexically (a listed file that is missing now can still be
/// matched if it appears under that name).
pub fn canonical(path: &Path) -> PathBuf {
    if let Ok(p) = std::fs::canonicalize(path) {
        return p;
    }
    let abs = if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir().unwrap_or_default().join(path)
    };
    let mut out = PathBuf::new();
    for c in abs.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}

fn parse_hex(hex: &str) -> Option<[u8; 32]> {
    let b = hex.as_bytes();
    let mut out = [0u8; 32];
    for (i, pair) in b.chunks(2).enumerate() {
        let d = |c: u8| (c as char).to_digit(16).map(|v| v as u8);
        out[i] = d(pair[0])? << 4 | d(*pair.get(1)?)?;
    }
    Some(out)
}

/// `sha256sum`'s escaping of names: `\\` is a backslash, `\n` a newline.
fn unescape(s: &str) -> Option<String> {
    let mut out = String::with_capacity(s.len());
    let mut it = s.chars();
    while let Some(c) = it.next() {
        if c == '\\' {
            match it.next()? {
                '\\' => out.push('\\'),
                'n' => out.push('\n'),
                _ => return None,
            }
        } else {
            out.push(c);
        }
    }
    Some(out)
}

static MANIFEST: OnceLock<Manifest> = OnceLock::new();

/// Installs the node's manifest (once, at start; later calls are ignored).
pub fn install(m: Manifest) {
    let _ = MANIFEST.set(m);
}

/// The node's manifest, if `load_manifest` is set.
pub fn current() -> Option<&'static Manifest> {
    MANIFEST.get()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    fn hex(content: &[u8]) -> String {
        Sha256::digest(content)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    fn tempdir(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("skynet-manifest-{tag}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        fs::create_dir_all(d.join("sub")).unwrap();
        fs::canonicalize(d).unwrap()
    }

    #[test]
    fn known_digest() {
        assert_eq!(
            hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn relative_paths_are_taken_from_the_manifest_directory() {
        let d = tempdir("rel");
        fs::write(d.join("sub/a.lua"), "return 1").unwrap();
        fs::write(d.join("b.so"), "elf").unwrap();
        fs::write(d.join("c.lua"), "return 3").unwrap();
        let text = format!(
            "{}  sub/a.lua\n\n{} *./sub/../b.so\n{}  c.lua\n",
            hex(b"return 1"),
            hex(b"elf"),
            hex(b"something else")
        );
        fs::write(d.join("manifest"), text).unwrap();
        let m = Manifest::load(d.join("manifest").to_str().unwrap()).unwrap();
        assert_eq!(m.len(), 3);
        assert_eq!(m.read_checked(&d.join("sub/./a.lua")).unwrap(), b"return 1");
        assert!(m.read_checked(&d.join("sub/../b.so")).is_ok());
        assert_eq!(m.read_checked(&d.join("c.lua")), Err(Refusal::Mismatch));
        fs::write(d.join("sub/d.lua"), "x").unwrap();
        assert_eq!(
            m.read_checked(&d.join("sub/d.lua")),
            Err(Refusal::NotListed)
        );
        assert!(matches!(
            m.read_checked(&d.join("nope.lua")),
            Err(Refusal::Unreadable(_))
        ));
        let line = m.refusal_line("Lua file", &d.join("c.lua"), &Refusal::Mismatch);
        assert!(
            line.starts_with("load_manifest: refused Lua file "),
            "{line}"
        );
        assert!(line.contains("c.lua: its SHA-256 does not match"), "{line}");
        // a changed file is refused
        fs::write(d.join("sub/a.lua"), "return 2").unwrap();
        assert_eq!(m.read_checked(&d.join("sub/a.lua")), Err(Refusal::Mismatch));
        let _ = fs::remove_dir_all(&d);
    }

    #[test]
    fn verify_all_reports_missing_and_changed_files_in_path_order() {
        let d = tempdir("all");
        fs::write(d.join("a.lua"), "same").unwrap();
        fs::write(d.join("b.lua"), "changed").unwrap();
        let text = format!(
            "{}  gone.lua\n{}  b.lua\n{}  a.lua\n",
            hex(b"x"),
            hex(b"before"),
            hex(b"same")
        );
        fs::write(d.join("manifest"), text).unwrap();
        let m = Manifest::load(d.join("manifest").to_str().unwrap()).unwrap();
        let lines = m.verify_all();
        assert_eq!(lines.len(), 2, "{lines:?}");
        assert!(
            lines[0].contains("b.lua: its SHA-256 does not match"),
            "{lines:?}"
        );
        assert!(lines[1].contains("gone.lua listed in"), "{lines:?}");
        fs::write(d.join("b.lua"), "before").unwrap();
        fs::write(d.join("gone.lua"), "x").unwrap();
        assert!(m.verify_all().is_empty());
        let _ = fs::remove_dir_all(&d);
    }

    #[test]
    fn escaped_names_and_bad_lines() {
        let base = Path::new("/srv");
        let h = hex(b"");
        let m = Manifest::parse("m", &format!("\\{h}  a\\\\b\\nc\n"), base).unwrap();
        assert!(m.check(Path::new("/srv/a\\b\nc"), b"").is_ok());
        for (text, why) in [
            ("abc  x".to_owned(), ":1: expected a SHA-256"),
            (
                format!("{}  x", "g".repeat(64)),
                ":1: the hash is not 64 hex",
            ),
            (format!("\n{h} x"), ":2: expected two spaces"),
            (format!("{h}  "), ":1: the path is empty"),
            (format!("\\{h}  a\\q"), ":1: a bad escape"),
        ] {
            let e = Manifest::parse("m", &text, base).unwrap_err();
            assert!(e.starts_with("load_manifest: m:") && e.contains(why), "{e}");
        }
    }

    #[test]
    fn unreadable_manifest() {
        let e = Manifest::load("/nonexistent/skynet/manifest").unwrap_err();
        assert!(
            e.starts_with(
                "load_manifest: cannot read the manifest '/nonexistent/skynet/manifest': "
            ),
            "{e}"
        );
    }
}
