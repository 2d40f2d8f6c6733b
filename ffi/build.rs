// Builds the C shim (variadic `skynet_error`, which stable Rust cannot define) and exports every
// global symbol of the executable so `dlopen`ed modules resolve against it (upstream `-Wl,-E`).
fn main() {
    println!("cargo:rerun-if-changed=csrc/error_shim.c");
    cc::Build::new()
        .file("csrc/error_shim.c")
        .flag_if_supported("-Wall")
        .cargo_metadata(false)
        .compile("skynet_shim");
    let out = std::env::var("OUT_DIR").expect("OUT_DIR");
    println!("cargo:rustc-link-search=native={out}");
    // whole-archive: nothing in Rust calls skynet_error, yet it must be linked and exported.
    println!("cargo:rustc-link-lib=static:+whole-archive=skynet_shim");
    println!("cargo:rustc-link-arg-bins=-Wl,--export-dynamic");
    // Upstream links libm so modules importing e.g. `round` resolve.
    println!("cargo:rustc-link-arg-bins=-lm");
}
