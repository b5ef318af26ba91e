//! Link-time layout of the release binary.
//!
//! The binary carries a query engine, an ONNX runtime and more, but a running
//! gateway executes only a few MB of that code. The kernel maps file pages
//! around every page fault (64 KiB at a time), so when the executed functions
//! are scattered over the binary, most of its text becomes resident. Two
//! linker options keep the resident set small:
//!
//! - `--symbol-ordering-file=symbol-order.txt` places the functions a running
//!   pipeline executes next to each other (regenerate the list with
//!   `bench/symbol_order.py` after a dependency upgrade; unknown names are
//!   ignored, so a stale list costs memory, never correctness);
//! - `-z pack-relative-relocs` stores relative relocations compactly (RELR),
//!   so start-up does not read megabytes of relocation records.
//!
//! Both are lld options (the default linker of Rust on x86_64 Linux). Set
//! `SLUICE_PLAIN_LINK=1` to build without them, e.g. with another linker.

use std::env;
use std::path::Path;

fn main() {
    println!("cargo:rerun-if-changed=symbol-order.txt");
    println!("cargo:rerun-if-env-changed=SLUICE_PLAIN_LINK");
    let release = env::var("PROFILE").is_ok_and(|p| p == "release");
    let lld_target = env::var("TARGET").is_ok_and(|t| t == "x86_64-unknown-linux-gnu");
    let plain = env::var_os("SLUICE_PLAIN_LINK").is_some();
    if !release || !lld_target || plain {
        return;
    }
    let order = Path::new(env!("CARGO_MANIFEST_DIR")).join("symbol-order.txt");
    if order.exists() {
        println!(
            "cargo:rustc-link-arg-bins=-Wl,--symbol-ordering-file={}",
            order.display()
        );
        println!("cargo:rustc-link-arg-bins=-Wl,--no-warn-symbol-ordering");
    }
    println!("cargo:rustc-link-arg-bins=-Wl,-z,pack-relative-relocs");
}
