//! The `skynet` executable: reads the config, boots the node, exports the C ABI.

mod abi;
mod check;
mod cmodule;
mod codecache;
mod config;
mod malloc_hook;
mod node;

use skynet_core::env::env;
use std::process::ExitCode;

fn run(file: &str) -> Result<(), String> {
    // SAFETY: setting SIGPIPE to SIG_IGN before any thread starts; a broken pipe becomes EPIPE.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_IGN) };
    for (key, value) in config::load(file).map_err(|e| e.to_string())? {
        env().set(&key, &value)?;
    }
    let cfg = node::read_core_keys(file)?;
    node::boot(&cfg)
}

const USAGE: &str = "usage: skynet CONFIG | skynet --check CONFIG | skynet --version";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.iter().map(String::as_str).collect::<Vec<_>>()[..] {
        [] => Err(format!("Need a config file. {USAGE}")),
        ["--version"] => {
            println!("{}", check::version());
            return ExitCode::SUCCESS;
        }
        ["--check", file] => {
            let problems = check::check(file);
            if problems.is_empty() {
                println!("ok");
                return ExitCode::SUCCESS;
            }
            for p in problems {
                println!("{p}");
            }
            return ExitCode::FAILURE;
        }
        ["--help" | "-h"] => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        [file, ..] if file.starts_with("--") => Err(format!("unknown option {file}. {USAGE}")),
        [file, ..] => {
            malloc_hook::init();
            run(file)
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{e}");
            ExitCode::FAILURE
        }
    }
}
