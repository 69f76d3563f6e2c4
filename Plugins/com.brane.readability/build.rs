//! Reads the ABI's constants, struct sizes and field offsets from brane_plugin.h itself, by
//! compiling and running a probe with the C compiler: src/abi.rs then checks, at compile time,
//! that the Rust mirror of every struct has exactly the header's layout.
use std::{env, fs, path::PathBuf, process::Command};

const PROBE: &str = r#"
#include <brane_plugin.h>
#include <stdio.h>
#define OFFSET(type, field, name) printf("pub const " name ": usize = %zu;\n", offsetof(type, field))
int main(void) {
    printf("pub const MAGIC: u32 = %u;\n", BRANE_PLUGIN_MAGIC);
    printf("pub const ABI_MAJOR: u16 = %d;\npub const ABI_MINOR: u16 = %d;\n", BRANE_ABI_MAJOR, BRANE_ABI_MINOR);
    printf("pub const KIND_SYNAPSE: u32 = %d;\n", BRANE_KIND_SYNAPSE);
    printf("pub const OK: i32 = %d;\npub const ERROR: i32 = %d;\n", BRANE_OK, BRANE_ERROR);
    printf("pub const LOG_WARNING: u32 = %d;\n", BRANE_LOG_WARNING);
    printf("pub const DESCRIPTOR_SIZE: usize = %zu;\n", sizeof(brane_plugin_descriptor));
    OFFSET(brane_plugin_descriptor, kind, "DESCRIPTOR_KIND");
    OFFSET(brane_plugin_descriptor, id, "DESCRIPTOR_ID");
    OFFSET(brane_plugin_descriptor, version, "DESCRIPTOR_VERSION");
    OFFSET(brane_plugin_descriptor, init, "DESCRIPTOR_INIT");
    OFFSET(brane_plugin_descriptor, invoke, "DESCRIPTOR_INVOKE");
    OFFSET(brane_plugin_descriptor, release, "DESCRIPTOR_RELEASE");
    OFFSET(brane_plugin_descriptor, shutdown, "DESCRIPTOR_SHUTDOWN");
    OFFSET(brane_host_api, log, "HOST_LOG");
    OFFSET(brane_host_api, config, "HOST_CONFIG");
    /* The 1.0 table ends where the 1.1 field begins. */
    OFFSET(brane_host_api, consult, "HOST_API_SIZE_1_0");
    return 0;
}
"#;

/// BRANE_PLUGIN_INCLUDE, else this repository's header, else the installed one (pkg-config).
fn header_directory() -> PathBuf {
    if let Ok(directory) = env::var("BRANE_PLUGIN_INCLUDE") {
        return directory.into();
    }
    let repository = PathBuf::from(env::var("CARGO_MANIFEST_DIR").unwrap()).join("../../Sources/PluginABI/include");
    if repository.join("brane_plugin.h").exists() {
        return repository;
    }
    let output = Command::new("pkg-config").args(["--cflags", "brane-plugin"]).output().expect("cannot run pkg-config");
    let flags = String::from_utf8(output.stdout).unwrap();
    flags.split_whitespace().find_map(|flag| flag.strip_prefix("-I")).map(PathBuf::from)
        .expect("brane_plugin.h not found: set BRANE_PLUGIN_INCLUDE, or PKG_CONFIG_PATH=<prefix>/lib/pkgconfig")
}

fn main() {
    let include = header_directory();
    println!("cargo:rerun-if-changed={}", include.join("brane_plugin.h").display());
    println!("cargo:rerun-if-env-changed=BRANE_PLUGIN_INCLUDE");
    let out = PathBuf::from(env::var("OUT_DIR").unwrap());
    let (source, probe) = (out.join("abi_probe.c"), out.join("abi_probe"));
    fs::write(&source, PROBE).unwrap();
    let cc = env::var("CC").unwrap_or_else(|_| "cc".into());
    let compiled = Command::new(&cc).arg("-I").arg(&include).arg(&source).arg("-o").arg(&probe).status()
        .unwrap_or_else(|error| panic!("cannot run {cc}: {error}"));
    assert!(compiled.success(), "{cc} could not compile the ABI probe against {}", include.display());
    let run = Command::new(&probe).output().expect("cannot run the ABI probe");
    assert!(run.status.success(), "the ABI probe failed");
    fs::write(out.join("header.rs"), run.stdout).unwrap();
}
