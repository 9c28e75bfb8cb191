//! Builds the C++ half of the plugin and the server constants.
//!
//! Server headers: the generated ones from Debian's `libmariadbd-dev`
//! (`MARIADB_INCLUDE`, default `/usr/include/mariadb/server`) and the private ones
//! (`sql/handler.h` ...) from the server source of the same version (`MARIADB_SRC`).
//! Both can be set in the environment; otherwise they are read from the file
//! `ci/setup` writes (`$HA_RUST_DEPS/env`, default `~/.cache/ha_rust/env`).
//!
//! The C++ objects are linked into the cdylib only (`rustc-cdylib-link-arg`), whole,
//! so `cargo test` builds the Rust core without a server.

use std::env;
use std::fs;
use std::path::{Path, PathBuf};

fn setup_env() -> Vec<(String, String)> {
    let deps = env::var("HA_RUST_DEPS")
        .map(PathBuf::from)
        .unwrap_or_else(|_| PathBuf::from(env::var("HOME").unwrap_or_default()).join(".cache/ha_rust"));
    let file = deps.join("env");
    println!("cargo:rerun-if-changed={}", file.display());
    fs::read_to_string(&file)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split_once('=').map(|(k, v)| (k.to_string(), v.to_string())))
        .collect()
}

fn setting(name: &str, file: &[(String, String)]) -> Option<String> {
    println!("cargo:rerun-if-env-changed={name}");
    env::var(name).ok().or_else(|| file.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone()))
}

fn main() {
    let file = setup_env();
    let src = setting("MARIADB_SRC", &file).map(PathBuf::from).unwrap_or_else(|| {
        panic!("MARIADB_SRC is not set and ci/setup has not run: run `ci/setup` (it installs Debian's MariaDB packages and the matching server source) or set MARIADB_SRC to a MariaDB source tree")
    });
    let gen_inc = PathBuf::from(setting("MARIADB_INCLUDE", &file).unwrap_or("/usr/include/mariadb/server".into()));
    for p in [src.join("sql/handler.h"), gen_inc.join("mysql_version.h")] {
        assert!(p.exists(), "{} is missing: run ci/setup, or point MARIADB_SRC/MARIADB_INCLUDE at a matching server source and headers", p.display());
    }
    let includes: Vec<PathBuf> = vec![
        gen_inc.clone(),
        gen_inc.join("private"),
        src.join("include"),
        src.join("sql"),
        src.join("wsrep-lib/include"),
        src.join("wsrep-lib/wsrep-API/v26"),
    ];

    // Server constants for Rust.
    let out = PathBuf::from(env::var("OUT_DIR").unwrap());
    let mut b = bindgen::Builder::default()
        .header_contents("consts.h", "#include <my_global.h>\n#include <my_base.h>\n")
        .allowlist_var("HA_ERR_.*")
        .allowlist_var("HA_OPEN_.*")
        .allowlist_var("MYSQL_VERSION_ID")
        .clang_arg("-xc++")
        .clang_arg("-std=c++17");
    for i in &includes {
        b = b.clang_arg(format!("-I{}", i.display()));
    }
    b.generate()
        .expect("bindgen could not read my_base.h (is clang installed? run ci/setup)")
        .write_to_file(out.join("consts.rs"))
        .unwrap();

    // In-tree (cmake/CMakeLists.txt): the server's cmake compiles cpp/mariadb/ and links
    // ha_rust.so; cargo builds a staticlib holding the Rust core and the bridge glue.
    println!("cargo:rerun-if-env-changed=HA_RUST_INTREE");
    if env::var_os("HA_RUST_INTREE").is_some() {
        println!("cargo:rerun-if-env-changed=HA_RUST_CXX_INCLUDE_OUT");
        intree_bridge(&includes, &out);
        return;
    }

    // The C++ handler and the cxx bridge, as one static archive linked whole.
    let mut cpp = cxx_build::bridge("src/ffi/mod.rs");
    cpp.files(cpp_sources())
        .cpp(true)
        .std("c++17")
        .flag("-fPIC")
        .define("MYSQL_DYNAMIC_PLUGIN", None)
        .define("MYSQL_SERVER", "1")
        .define("DBUG_OFF", None)
        .define("NDEBUG", None)
        .define("HAVE_CONFIG_H", None)
        .flag_if_supported("-Wno-unused-parameter")
        .flag_if_supported("-Wno-missing-field-initializers")
        .flag_if_supported("-Wno-ignored-qualifiers")
        .flag_if_supported("-fno-strict-aliasing")
        .include(CPP_DIR)
        .cargo_metadata(false);
    for i in &includes {
        cpp.include(i);
    }
    cpp.compile("ha_rust_cpp");
    println!("cargo:rerun-if-changed={CPP_DIR}");
    for entry in fs::read_dir(CPP_DIR).unwrap() {
        println!("cargo:rerun-if-changed={}", entry.unwrap().path().display());
    }
    println!("cargo:rerun-if-changed=src/ffi/mod.rs");

    let archive = out.join("libha_rust_cpp.a");
    let services = find_services();
    let vs = out.join("exports.map");
    // The server looks up the three plugin symbols, and fills in each service
    // pointer of libmysqlservices.a (`my_snprintf_service`, ...) found by name.
    // rustc's own version script hides everything that is not Rust's, so name
    // them in a second script.
    fs::write(
        &vs,
        "{ global: _maria_plugin_interface_version_; _maria_sizeof_struct_st_plugin_; _maria_plugin_declarations_; *_service; provider_service_*; };\n",
    )
    .unwrap();
    for arg in [
        "-Wl,--whole-archive".to_string(),
        archive.display().to_string(),
        services.display().to_string(),
        "-Wl,--no-whole-archive".to_string(),
        "-lstdc++".to_string(),
        format!("-Wl,--version-script={}", vs.display()),
    ] {
        println!("cargo:rustc-cdylib-link-arg={arg}");
    }
}

/// The in-tree mode: only the cxx bridge glue, bundled into the staticlib by cargo,
/// and the headers cxx generates copied to `HA_RUST_CXX_INCLUDE_OUT` for cmake.
fn intree_bridge(includes: &[PathBuf], out: &Path) {
    let mut glue = cxx_build::bridge("src/ffi/mod.rs");
    glue.cpp(true).std("c++17").flag("-fPIC").include(CPP_DIR);
    for i in includes {
        glue.include(i);
    }
    glue.compile("ha_rust_bridge");
    println!("cargo:rerun-if-changed=src/ffi/mod.rs");
    if let Some(dest) = env::var_os("HA_RUST_CXX_INCLUDE_OUT").map(PathBuf::from) {
        let generated = out.join("cxxbridge/include");
        for rel in ["rust/cxx.h", "ha_rust/src/ffi/mod.rs.h"] {
            let to = dest.join(rel);
            fs::create_dir_all(to.parent().unwrap()).unwrap();
            // cxx's headers may be symlinks into its crate sources: copy the content.
            fs::copy(generated.join(rel), &to).unwrap_or_else(|e| panic!("copying {rel} to {}: {e}", to.display()));
        }
    }
}

/// The C++ shim for the MariaDB server family: every `.cc` file of its folder.
const CPP_DIR: &str = "cpp/mariadb";

fn cpp_sources() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = fs::read_dir(CPP_DIR)
        .unwrap_or_else(|e| panic!("{CPP_DIR}: {e}"))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "cc"))
        .collect();
    files.sort();
    files
}

fn find_services() -> PathBuf {
    if let Ok(p) = env::var("MARIADB_SERVICES_LIB") {
        return PathBuf::from(p);
    }
    for d in ["/usr/lib/x86_64-linux-gnu", "/usr/lib/aarch64-linux-gnu", "/usr/lib", "/usr/lib64"] {
        let p = Path::new(d).join("libmysqlservices.a");
        if p.exists() {
            return p;
        }
    }
    panic!("libmysqlservices.a not found (Debian's libmariadb-dev ships it): run ci/setup or set MARIADB_SERVICES_LIB");
}
