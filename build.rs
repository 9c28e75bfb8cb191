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
    // The server family is picked from the headers the build is pointed at: MYSQL_SRC
    // (an Oracle MySQL source tree, `ci/setup --mysql`) selects the MySQL shim in
    // cpp/mysql/; otherwise it is MariaDB's (cpp/mariadb/), as before.
    println!("cargo:rerun-if-env-changed=MYSQL_SRC");
    if let Some(src) = env::var_os("MYSQL_SRC") {
        return mysql::main(PathBuf::from(src));
    }
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
    cpp.files(cpp_sources(CPP_DIR))
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

fn cpp_sources(dir: &str) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{dir}: {e}"))
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

/// The Oracle MySQL family (docs/mysql.md): the shim in cpp/mysql/, built with the
/// host's g++ against a `mysql-source` tree of exactly the server's version.
mod mysql {
    use super::*;

    const DIR: &str = "cpp/mysql";

    fn env_file() -> Vec<(String, String)> {
        let deps = env::var("HA_RUST_DEPS")
            .map(PathBuf::from)
            .unwrap_or_else(|_| PathBuf::from(env::var("HOME").unwrap_or_default()).join(".cache/ha_rust"));
        let file = deps.join("mysql/env");
        println!("cargo:rerun-if-changed={}", file.display());
        fs::read_to_string(&file)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.split_once('=').map(|(k, v)| (k.to_string(), v.to_string())))
            .collect()
    }

    pub fn main(src: PathBuf) {
        let file = env_file();
        let builddir = setting("MYSQL_BUILDDIR", &file).map(PathBuf::from).unwrap_or_else(|| src.join("builddir"));
        let gen_inc = setting("MYSQL_INCLUDE", &file).map(PathBuf::from).unwrap_or_else(|| src.join("gen"));
        let version_h = builddir.join("include/mysql_version.h");
        for p in [src.join("sql/handler.h"), version_h.clone(), gen_inc.join("mysqld_error.h")] {
            assert!(p.exists(), "{} is missing: run `ci/setup --mysql`, or point MYSQL_SRC (and MYSQL_BUILDDIR, MYSQL_INCLUDE) at a configured MySQL source tree", p.display());
        }
        let v = fs::read_to_string(&version_h).unwrap();
        assert!(!v.contains("MariaDB") && !v.contains("MARIADB"), "MYSQL_SRC points at MariaDB headers ({}); unset it for the MariaDB build", version_h.display());
        let includes: Vec<PathBuf> = vec![
            gen_inc.clone(),
            builddir.clone(),
            builddir.join("include"),
            src.clone(),
            src.join("include"),
            src.join("libs"),
            src.join("extra/rapidjson/include"),
        ];

        // Server constants for Rust. HA_ERR_LAST: the Rust core numbers its own codes
        // after 200 (MariaDB 10.11's last); MySQL's own codes go further, so the MySQL
        // shim translates the engine's codes (ha_rust::rust_rc in cpp/mysql/handler.cc)
        // and the core keeps 200.
        let out = PathBuf::from(env::var("OUT_DIR").unwrap());
        let mut b = bindgen::Builder::default()
            .header_contents("consts.h", "#include <my_base.h>\n#include <mysql_version.h>\n")
            .allowlist_var("HA_ERR_.*")
            .allowlist_var("HA_OPEN_.*")
            .allowlist_var("MYSQL_VERSION_ID")
            .blocklist_item("HA_ERR_LAST")
            .clang_arg("-xc++")
            .clang_arg("-std=c++2b");
        for i in &includes {
            b = b.clang_arg(format!("-I{}", i.display()));
        }
        let mut consts = b.generate().expect("bindgen could not read MySQL's my_base.h (is clang installed?)").to_string();
        consts.push_str("\n/// The engine's own codes start after this (see build.rs: MySQL's shim translates them).\npub const HA_ERR_LAST: u32 = 200;\n");
        // Codes MariaDB has and MySQL names differently (MySQL's HA_ERR_DISK_FULL_NOWAIT
        // is 204, inside the engine's own range, so a full disk says "table is full").
        consts.push_str("pub const HA_ERR_DISK_FULL: u32 = HA_ERR_RECORD_FILE_FULL;\npub const HA_ERR_ABORTED_BY_USER: u32 = HA_ERR_QUERY_INTERRUPTED;\n");
        fs::write(out.join("consts.rs"), consts).unwrap();

        let mut cpp = cxx_build::bridge("src/ffi/mod.rs");
        cpp.files(cpp_sources(DIR))
            .cpp(true)
            .std("gnu++2b")
            .flag("-fPIC")
            .define("MYSQL_DYNAMIC_PLUGIN", None)
            .define("MYSQL_SERVER", None)
            .define("_GNU_SOURCE", None)
            .define("NDEBUG", None)
            .flag_if_supported("-Wno-unused-parameter")
            .flag_if_supported("-Wno-missing-field-initializers")
            .flag_if_supported("-fno-strict-aliasing")
            .include(DIR)
            .cargo_metadata(false);
        for i in &includes {
            cpp.include(i);
        }
        cpp.compile("ha_rust_cpp");
        println!("cargo:rerun-if-changed={DIR}");
        for entry in fs::read_dir(DIR).unwrap() {
            println!("cargo:rerun-if-changed={}", entry.unwrap().path().display());
        }
        println!("cargo:rerun-if-changed=src/ffi/mod.rs");

        let services = setting("MYSQL_SERVICES_LIB", &file)
            .map(PathBuf::from)
            .expect("MYSQL_SERVICES_LIB is not set: run `ci/setup --mysql` (it compiles MySQL's libservices)");
        let vs = out.join("exports.map");
        fs::write(
            &vs,
            "{ global: _mysql_plugin_interface_version_; _mysql_sizeof_struct_st_plugin_; _mysql_plugin_declarations_; *_service; };\n",
        )
        .unwrap();
        for arg in [
            "-Wl,--whole-archive".to_string(),
            out.join("libha_rust_cpp.a").display().to_string(),
            services.display().to_string(),
            "-Wl,--no-whole-archive".to_string(),
            "-lstdc++".to_string(),
            format!("-Wl,--version-script={}", vs.display()),
        ] {
            println!("cargo:rustc-cdylib-link-arg={arg}");
        }
    }
}
