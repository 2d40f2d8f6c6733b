// Builds the C shim (variadic `skynet_error`, which stable Rust cannot define) and exports every
// global symbol of the executable so `dlopen`ed modules resolve against it (upstream `-Wl,-E`).
fn main() {
    println!("cargo:rerun-if-changed=csrc/error_shim.c");
    println!("cargo:rerun-if-changed=csrc/lua_exports.c");
    let mut build = cc::Build::new();
    build
        .file("csrc/error_shim.c")
        .file("csrc/lua_exports.c")
        .flag_if_supported("-Wall")
        .cargo_metadata(false);
    if std::env::var_os("CARGO_FEATURE_LUA55").is_some() {
        build.define("SKYNET_LUA55", None);
    }
    build.compile("skynet_shim");
    let out = std::env::var("OUT_DIR").expect("OUT_DIR");
    println!("cargo:rustc-link-search=native={out}");
    // whole-archive: nothing in Rust calls skynet_error or uses the Lua API table, yet both must
    // be linked and exported.
    println!("cargo:rustc-link-lib=static:+whole-archive=skynet_shim");
    // That applies to the library target (libskynet.a) only; the executable, which does not
    // link the library, takes the archive whole as well.
    println!("cargo:rustc-link-arg-bins=-Wl,--whole-archive");
    println!("cargo:rustc-link-arg-bins={out}/libskynet_shim.a");
    println!("cargo:rustc-link-arg-bins=-Wl,--no-whole-archive");
    println!("cargo:rustc-link-arg-bins=-Wl,--export-dynamic");
    // Upstream links libm so modules importing e.g. `round` resolve.
    println!("cargo:rustc-link-arg-bins=-lm");
}
