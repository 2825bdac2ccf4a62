//! A Lambda function's code: a zip on disk (built from a cargo binary, or given), or a container image.
//!
//! The code is fixed when the stack is *declared*: `Code::cargo_bin("pedidos-api")` builds the binary,
//! packages it as `bootstrap` in a reproducible zip and records the zip's SHA-256, base64, the way Lambda
//! reports `CodeSha256`, and its size. The SHA-256 is what is diffed against the live function, so the code
//! is uploaded only when it changed, and code changed behind our back shows in the plan. Building at
//! declaration keeps plans honest (`plan --out` records the hash it will upload) and lets a failed build be
//! reported by validation, before any API call.
//!
//! Inputs, state and saved plans hold only the hash and the size, never the zip's path: a path is
//! machine-specific, and the same code built in another checkout (CI, a colleague's laptop) must plan as
//! no change. Declaring the code records, for this process, where the bytes of that hash are
//! ([`Code::zip_bytes`] finds them there at upload); every command evaluates the stack first, so the
//! process that uploads is always one that declared the code.
//!
//! # Building for Lambda
//!
//! Lambda's `provided.al2023` runtime has glibc 2.34; a binary linked on a newer system may refuse to start
//! there (`GLIBC_2.35 not found`). [`CargoBin::build`] therefore:
//!
//! * uses `cargo zigbuild --profile lambda --target x86_64-unknown-linux-gnu.2.34` (or `aarch64-...` for arm64)
//!   when `cargo-zigbuild` is on `PATH`: zig links against glibc 2.34's symbols whatever the host has. Both
//!   tools come from registries: `pip install ziglang cargo-zigbuild` (the PyPI wheels carry the binaries)
//!   or `cargo install cargo-zigbuild` plus `pip install ziglang`;
//! * otherwise runs a plain `cargo build --profile lambda --target x86_64-unknown-linux-gnu` and then *checks* the
//!   binary: it reads the `GLIBC_2.x` symbol versions the ELF asks for and fails with a clear message when
//!   one is newer than 2.34 (a warning is logged when the plain build is used and passes the check).
//!
//! The profile is the workspace's `[profile.lambda]` when its Cargo.toml declares one (this repository's:
//! release optimised for size, fat LTO, stripped; see BENCHMARKS.md), else `release`.
//!
//! `FERROFORM_LAMBDA_BUILD=zigbuild|cargo` forces one of the two; `host` builds for this machine with the dev
//! profile instead, sharing the stack program's build: for an emulator, which never runs the function
//! (`scripts/deploy-local` sets it; `serve` runs functions from its own build). `FERROFORM_SKIP_BUILD=1` runs no build at
//! all and uses the zip the last build left (`TARGET/lambda/BIN/bootstrap.zip`), failing if there is none.
//! A process builds each binary at most once (the result is cached), and cargo itself rebuilds only what
//! changed.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::io::{Cursor, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, OnceLock};

/// The code hash of a binary not built because the command needs no code (`graph`).
pub const NOT_BUILT: &str = "(not built)";

/// The glibc of Lambda's `provided.al2023` runtime.
pub const LAMBDA_GLIBC: (u32, u32) = (2, 34);

/// Lambda's limit for a zip uploaded directly (bigger ones go through S3, not supported yet).
pub const MAX_DIRECT_UPLOAD: u64 = 50 * 1024 * 1024;

/// Where a function's code comes from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Code {
    /// A zip, by the base64 SHA-256 of its bytes (Lambda's `CodeSha256`) and its size in bytes (Lambda's
    /// `CodeSize`). Where its bytes are on disk is kept out of the inputs (see the module docs).
    Zip {
        sha256: String,
        /// States written before the size was recorded (they held the path instead) read as 0.
        #[serde(default)]
        size: u64,
    },
    /// A container image (package type `Image`): `ACCOUNT.dkr.ecr.REGION.amazonaws.com/REPO:TAG` or `@sha256:...`.
    Image { uri: String },
    /// Building or reading the code failed when the stack was declared: validation reports it.
    Unavailable { error: String },
}

impl Code {
    /// Builds the workspace binary `bin` in release for Lambda (x86_64) and packages it. See [`CargoBin`]
    /// for the options (package, architecture).
    pub fn cargo_bin(bin: &str) -> Code {
        CargoBin::new(bin).build()
    }

    /// A zip made elsewhere.
    pub fn zip_file(path: impl AsRef<Path>) -> Code {
        let path = path.as_ref();
        match std::fs::read(path) {
            Ok(bytes) => Code::local_zip(path, &bytes),
            Err(e) => Code::Unavailable { error: format!("can't read the zip {}: {e}", path.display()) },
        }
    }

    /// The code of these zip bytes, read from `path`: records where the bytes of this hash are.
    fn local_zip(path: &Path, bytes: &[u8]) -> Code {
        let sha256 = sha256_base64(bytes);
        if let Ok(mut zips) = zips().lock() {
            let paths = zips.entry(sha256.clone()).or_default();
            paths.retain(|p| p != path);
            paths.push(path.to_path_buf());
        }
        Code::Zip { sha256, size: bytes.len() as u64 }
    }

    /// An executable already built (for the `provided` runtimes), packaged as `bootstrap` in a reproducible
    /// zip written next to it (`PATH.zip`, and `PATH.zip.source`: what it was made from, so an unchanged
    /// executable is not packaged again).
    pub fn binary(path: impl AsRef<Path>) -> Code {
        let path = path.as_ref();
        let out = PathBuf::from(format!("{}.zip", path.display()));
        match package_binary(path, &out) {
            Ok(_) => Code::zip_file(&out),
            Err(e) => Code::Unavailable { error: e },
        }
    }

    /// A container image; the function's package type becomes `Image`.
    pub fn image(uri: impl Into<String>) -> Code {
        Code::Image { uri: uri.into() }
    }

    /// `Zip` or `Image`, as Lambda names package types.
    pub fn package_type(&self) -> Option<&'static str> {
        match self {
            Code::Zip { .. } => Some("Zip"),
            Code::Image { .. } => Some("Image"),
            Code::Unavailable { .. } => None,
        }
    }

    /// The base64 SHA-256 of a zip.
    pub fn sha256(&self) -> Option<&str> {
        match self {
            Code::Zip { sha256, .. } => Some(sha256),
            _ => None,
        }
    }

    /// The zip's bytes, from where this process declared a zip of that hash, checked against the hash
    /// (the file must not have changed since the stack was declared: the plan promised these bytes).
    pub(crate) fn zip_bytes(&self) -> Result<Option<Vec<u8>>, String> {
        let Code::Zip { sha256, .. } = self else { return Ok(None) };
        let paths = zips().lock().ok().and_then(|z| z.get(sha256).cloned()).unwrap_or_default();
        // The latest declared first; an older copy may have been removed or rewritten since.
        let mut problems = Vec::new();
        for path in paths.iter().rev() {
            match std::fs::read(path) {
                Ok(bytes) if sha256_base64(&bytes) == *sha256 => return Ok(Some(bytes)),
                Ok(bytes) => {
                    problems.push(format!("{} changed since the stack was declared (SHA-256 {})", path.display(), sha256_base64(&bytes)))
                }
                Err(e) => problems.push(format!("can't read {}: {e}", path.display())),
            }
        }
        if problems.is_empty() {
            problems.push("the code changed since the plan was made?".to_string());
        }
        Err(format!("no zip with SHA-256 {sha256} declared by this run can be read ({}); plan again", problems.join("; ")))
    }
}

/// Where the bytes of each zip declared by this process are, by SHA-256 (the latest declaration last).
fn zips() -> &'static Mutex<HashMap<String, Vec<PathBuf>>> {
    static ZIPS: OnceLock<Mutex<HashMap<String, Vec<PathBuf>>>> = OnceLock::new();
    ZIPS.get_or_init(Default::default)
}

/// The base64 SHA-256 of some bytes: how Lambda reports `CodeSha256` for a zip.
pub fn sha256_base64(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(Sha256::digest(bytes))
}

/// A zip holding `files` (name, unix mode, content), the same bytes for the same input: entries in name
/// order, every timestamp 1980-01-01 00:00 (zip's epoch), the given permissions, deflate at a fixed level,
/// no extra fields.
pub fn reproducible_zip(files: &[(&str, u32, &[u8])]) -> Result<Vec<u8>, String> {
    use zip::write::SimpleFileOptions;
    let mut sorted: Vec<&(&str, u32, &[u8])> = files.iter().collect();
    sorted.sort_by(|a, b| a.0.cmp(b.0));
    let mut w = zip::ZipWriter::new(Cursor::new(Vec::new()));
    for (name, mode, content) in sorted {
        let opts = SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated)
            .compression_level(Some(6))
            .last_modified_time(zip::DateTime::default())
            .unix_permissions(*mode)
            .large_file(content.len() as u64 >= u32::MAX as u64);
        w.start_file(*name, opts).map_err(|e| format!("zip: {e}"))?;
        w.write_all(content).map_err(|e| format!("zip: {e}"))?;
    }
    Ok(w.finish().map_err(|e| format!("zip: {e}"))?.into_inner())
}

/// Packages an executable as `bootstrap` (mode 755) in a reproducible zip at `out`; returns the zip's
/// base64 SHA-256. The file is rewritten only when its bytes change.
pub fn package_binary(binary: &Path, out: &Path) -> Result<String, String> {
    package(binary, out).map(|(sha256, _)| sha256)
}

/// What `out.source` records of the zip at `out`: the packaging's version, the SHA-256 of the executable it
/// holds, the zip's own. Deflating a debug binary (57 MB for pedidos-api) took 3.5 s of each plan after an
/// edit; hashing it takes a tenth of that.
const PACKAGED: &str = "ferroform-zip-1";

/// [`package_binary`], and whether the zip already at `out` was kept: it holds this executable (by the
/// record next to it) and its bytes still hash to what the record says.
fn package(binary: &Path, out: &Path) -> Result<(String, bool), String> {
    let content = std::fs::read(binary).map_err(|e| format!("can't read {}: {e}", binary.display()))?;
    let source = sha256_base64(&content);
    let record = PathBuf::from(format!("{}.source", out.display()));
    if let Ok(text) = std::fs::read_to_string(&record) {
        if let [PACKAGED, from, zip_sha256] = text.split_whitespace().collect::<Vec<_>>()[..] {
            if from == source && std::fs::read(out).is_ok_and(|zip| sha256_base64(&zip) == zip_sha256) {
                return Ok((zip_sha256.to_string(), true));
            }
        }
    }
    let zip = reproducible_zip(&[("bootstrap", 0o755, &content)])?;
    let sha256 = sha256_base64(&zip);
    if std::fs::read(out).ok().as_deref() != Some(zip.as_slice()) {
        if let Some(dir) = out.parent() {
            std::fs::create_dir_all(dir).map_err(|e| format!("can't create {}: {e}", dir.display()))?;
        }
        ferroform_core::write_atomic(out, &zip).map_err(|e| format!("can't write {}: {e}", out.display()))?;
    }
    // After the zip: a record never names bytes that are not there yet (and a stale one fails its checks).
    ferroform_core::write_atomic(&record, format!("{PACKAGED} {source} {sha256}\n").as_bytes())
        .map_err(|e| format!("can't write {}: {e}", record.display()))?;
    Ok((sha256, false))
}

/// The CPU a function runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, Default)]
pub enum Architecture {
    #[default]
    #[serde(rename = "x86_64")]
    X86_64,
    #[serde(rename = "arm64")]
    Arm64,
}

impl Architecture {
    pub fn as_str(&self) -> &'static str {
        match self {
            Architecture::X86_64 => "x86_64",
            Architecture::Arm64 => "arm64",
        }
    }
    /// The Rust target triple for Lambda.
    pub fn triple(&self) -> &'static str {
        match self {
            Architecture::X86_64 => "x86_64-unknown-linux-gnu",
            Architecture::Arm64 => "aarch64-unknown-linux-gnu",
        }
    }
}

/// How `CargoBin` builds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BuildMode {
    /// `cargo zigbuild` when on `PATH`, else a checked plain build.
    Auto,
    /// `cargo zigbuild`, failing if it is missing.
    Zigbuild,
    /// A plain `cargo build`, checked against Lambda's glibc.
    Cargo,
    /// No build: the zip the last build left.
    Skip,
    /// A build for this machine with the dev profile (`FERROFORM_LAMBDA_BUILD=host`): not a binary Lambda can
    /// run, for an emulator that never runs it (`scripts/deploy-local`). It shares the stack program's
    /// dependency build, so a first local deploy compiles the AWS SDK once instead of twice.
    Host,
}

impl BuildMode {
    /// From `FERROFORM_SKIP_BUILD` and `FERROFORM_LAMBDA_BUILD`.
    pub fn from_env() -> BuildMode {
        if std::env::var("FERROFORM_SKIP_BUILD").is_ok_and(|v| !v.is_empty() && v != "0") {
            return BuildMode::Skip;
        }
        match std::env::var("FERROFORM_LAMBDA_BUILD").as_deref() {
            Ok("zigbuild") => BuildMode::Zigbuild,
            Ok("cargo") => BuildMode::Cargo,
            Ok("host") => BuildMode::Host,
            _ => BuildMode::Auto,
        }
    }
}

/// A workspace binary built for Lambda: `CargoBin::new("pedidos-api").package("pedidos").build()`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CargoBin {
    bin: String,
    package: Option<String>,
    arch: Architecture,
    workspace: Option<PathBuf>,
    mode: Option<BuildMode>,
}

type BuildCache = Mutex<HashMap<CargoBin, Code>>;

fn cache() -> &'static BuildCache {
    static CACHE: OnceLock<BuildCache> = OnceLock::new();
    CACHE.get_or_init(Default::default)
}

impl CargoBin {
    pub fn new(bin: impl Into<String>) -> Self {
        Self { bin: bin.into(), package: None, arch: Architecture::X86_64, workspace: None, mode: None }
    }
    /// The package holding the binary (`cargo build -p`), when the name alone is ambiguous.
    pub fn package(mut self, package: impl Into<String>) -> Self {
        self.package = Some(package.into());
        self
    }
    /// The architecture to build for (the function's must match); arm64 needs the aarch64 std installed.
    pub fn arch(mut self, arch: Architecture) -> Self {
        self.arch = arch;
        self
    }
    /// The workspace directory (default: the one holding the current directory).
    pub fn workspace(mut self, dir: impl Into<PathBuf>) -> Self {
        self.workspace = Some(dir.into());
        self
    }
    /// Overrides `FERROFORM_LAMBDA_BUILD` / `FERROFORM_SKIP_BUILD`.
    pub fn mode(mut self, mode: BuildMode) -> Self {
        self.mode = Some(mode);
        self
    }

    /// The binary's name.
    pub fn bin_name(&self) -> &str {
        &self.bin
    }
    /// The package given with [`CargoBin::package`].
    pub fn package_name(&self) -> Option<&str> {
        self.package.as_deref()
    }
    /// The workspace given with [`CargoBin::workspace`].
    pub fn workspace_dir(&self) -> Option<&Path> {
        self.workspace.as_deref()
    }

    /// Every binary this process built (or tried to) with the code it gave: how a tool that runs functions
    /// locally (`serve`) finds which binary a function's zip came from.
    pub fn declared() -> Vec<(CargoBin, Code)> {
        cache().lock().map(|c| c.iter().map(|(b, code)| (b.clone(), code.clone())).collect()).unwrap_or_default()
    }

    /// Builds (once per process), packages, hashes. Failures come back as `Code::Unavailable`, which the
    /// function's validation reports.
    pub fn build(self) -> Code {
        if !ferroform_core::builds_enabled() {
            // A command that needs no code (`graph`): a stand-in that validates, never uploaded.
            return Code::Zip { sha256: NOT_BUILT.into(), size: 0 };
        }
        if let Some(code) = cache().lock().ok().and_then(|c| c.get(&self).cloned()) {
            return code;
        }
        let code = match self.try_build().and_then(|path| std::fs::read(&path).map(|b| (path, b)).map_err(|e| e.to_string())) {
            Ok((path, bytes)) => Code::local_zip(&path, &bytes),
            Err(error) => Code::Unavailable { error: format!("building `{}` for Lambda: {error}", self.bin) },
        };
        if let Ok(mut c) = cache().lock() {
            c.insert(self, code.clone());
        }
        code
    }

    /// The path of the packaged zip.
    fn try_build(&self) -> Result<PathBuf, String> {
        let root = match &self.workspace {
            Some(dir) => dir.clone(),
            None => workspace_root()?,
        };
        let target_dir = std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| root.join("target"));
        let zip = target_dir.join("lambda").join(&self.bin).join("bootstrap.zip");
        let mode = self.mode.unwrap_or_else(BuildMode::from_env);
        if mode == BuildMode::Skip {
            if !zip.is_file() {
                return Err(format!("FERROFORM_SKIP_BUILD is set but there is no zip from an earlier build at {}", zip.display()));
            }
            return Ok(zip);
        }
        let zig = match mode {
            BuildMode::Zigbuild => true,
            BuildMode::Cargo | BuildMode::Host => false,
            _ => on_path("cargo-zigbuild"),
        };
        let host = mode == BuildMode::Host;
        let (glibc_major, glibc_minor) = LAMBDA_GLIBC;
        let target = if zig { format!("{}.{glibc_major}.{glibc_minor}", self.arch.triple()) } else { self.arch.triple().to_string() };
        let mut cmd = cargo_command();
        cmd.current_dir(&root).arg(if zig { "zigbuild" } else { "build" });
        if !host {
            cmd.args(["--profile", profile_of(&root), "--target", &target]);
        }
        cmd.args(["--bin", &self.bin, "--message-format=json-render-diagnostics"]);
        match &self.package {
            // Host: the whole workspace's features (see `host_selection`), so its dependencies are the ones
            // the stack program's build already compiled.
            Some(_) if host => cmd.args(host_selection()),
            Some(p) => cmd.args(["-p", p]),
            None => &mut cmd,
        };
        cmd.stderr(std::process::Stdio::inherit());
        if host {
            tracing::warn!(bin = %self.bin, "FERROFORM_LAMBDA_BUILD=host: built for this machine, not for Lambda (an emulator never runs it)");
        } else {
            tracing::info!(bin = %self.bin, %target, zigbuild = zig, "building a Lambda binary");
        }
        let out = cmd.output().map_err(|e| {
            if zig {
                format!("can't run `cargo zigbuild` ({e}); install it with `pip install ziglang cargo-zigbuild`")
            } else {
                format!("can't run cargo: {e}")
            }
        })?;
        if !out.status.success() {
            let hint = if zig { "" } else { " (is the target's std installed? `rustup target add` it)" };
            return Err(format!("cargo {} exited with {}{hint}", if zig { "zigbuild" } else { "build" }, out.status));
        }
        let exe = executable_of(&String::from_utf8_lossy(&out.stdout), &self.bin)
            .ok_or_else(|| format!("cargo built no executable named `{}`", self.bin))?;
        if !zig && !host {
            let bytes = std::fs::read(&exe).map_err(|e| format!("can't read {}: {e}", exe.display()))?;
            match max_glibc(&bytes) {
                Some(v) if v > LAMBDA_GLIBC => {
                    return Err(format!(
                        "{} needs glibc {}.{}, newer than Lambda's {glibc_major}.{glibc_minor}: build with cargo-zigbuild \
                         (`pip install ziglang cargo-zigbuild`, then run again)",
                        exe.display(),
                        v.0,
                        v.1
                    ))
                }
                v => tracing::warn!(
                    bin = %self.bin,
                    needs = ?v,
                    "built without cargo-zigbuild; the binary asks for no glibc newer than Lambda's {glibc_major}.{glibc_minor}"
                ),
            }
        }
        package_binary(&exe, &zip)?;
        Ok(zip)
    }
}

/// `cargo` (the one that started this program, under `cargo run`) without the variables cargo sets for the
/// program it runs (`CARGO_PKG_*`, `CARGO_MANIFEST_DIR`, ...). A build that inherits them reruns the build
/// scripts that watch them (ring's) and so recompiles every crate above, and the next `cargo run` does it again:
/// seen as a first local deploy compiling the AWS SDK three times, and a plan after an edit taking minutes.
pub fn cargo_command() -> Command {
    let mut cmd = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    for (name, _) in std::env::vars_os() {
        if name.to_str().is_some_and(set_for_the_program) {
            cmd.env_remove(name);
        }
    }
    cmd
}

/// How a build for this machine (`FERROFORM_LAMBDA_BUILD=host`, `serve`) selects packages: `--workspace`
/// rather than `-p PACKAGE`. Cargo turns dependency features on by the packages selected, so `-p pedidos`
/// builds aws-runtime, aws-sigv4, hyper, ... with fewer features than the workspace (and `cargo run
/// --example`, `cargo test --workspace`) did: a second copy of ~90 crates, 1.5 min on 2 cores, where
/// `--workspace --bin pedidos-api` compiles the package alone (measured in this repository). A bin name two
/// packages share would be ambiguous; Lambda builds for AWS keep `-p`.
pub fn host_selection() -> [&'static str; 1] {
    ["--workspace"]
}

/// This process's cargo and rustc settings (`CARGO_HOME`, `CARGO_TARGET_DIR`, `CARGO_PROFILE_*`,
/// `CARGO_INCREMENTAL`, `RUSTFLAGS`, `RUSTUP_TOOLCHAIN`, ...) without what cargo set for this program: what a
/// build started from a cleared environment needs to reuse this build's artifacts instead of making others.
pub fn build_settings() -> Vec<(String, String)> {
    std::env::vars().filter(|(k, _)| a_build_setting(k)).collect()
}

/// Cargo's and rustc's variables (`RUST_*` are programs' logging and backtraces), and the lint arguments
/// clippy-driver reads when it is the workspace's compiler (`RUSTC_WORKSPACE_WRAPPER`, as in CI's test build):
/// clippy-driver records them as an input, so a build without them compiles the workspace's crates again.
fn a_build_setting(name: &str) -> bool {
    ((name.starts_with("CARGO") || name.starts_with("RUST")) && !set_for_the_program(name) && !name.starts_with("RUST_"))
        || name == "CLIPPY_ARGS"
}

/// A variable cargo sets for the program it runs (`cargo run`, tests), not one a user sets for cargo.
fn set_for_the_program(name: &str) -> bool {
    name.starts_with("CARGO_PKG_")
        || matches!(
            name,
            "CARGO_MANIFEST_DIR"
                | "CARGO_MANIFEST_PATH"
                | "CARGO_MANIFEST_LINKS"
                | "CARGO_CRATE_NAME"
                | "CARGO_BIN_NAME"
                | "CARGO_PRIMARY_PACKAGE"
                | "CARGO_TARGET_TMPDIR"
                | "CARGO_RUSTC_CURRENT_DIR"
                | "OUT_DIR"
        )
}

/// The profile Lambda binaries are built with: the workspace's `[profile.lambda]` when its Cargo.toml declares
/// one (this repository's: optimised for size, fat LTO, stripped), else `release`.
fn profile_of(root: &Path) -> &'static str {
    let declared = std::fs::read_to_string(root.join("Cargo.toml")).is_ok_and(|text| text.lines().any(|l| l.trim() == "[profile.lambda]"));
    if declared {
        "lambda"
    } else {
        "release"
    }
}

/// The directory holding `Cargo.lock`, from the current directory up.
fn workspace_root() -> Result<PathBuf, String> {
    let cwd = std::env::current_dir().map_err(|e| format!("no current directory: {e}"))?;
    cwd.ancestors()
        .find(|d| d.join("Cargo.lock").is_file())
        .or_else(|| cwd.ancestors().find(|d| d.join("Cargo.toml").is_file()))
        .map(Path::to_path_buf)
        .ok_or_else(|| format!("no cargo workspace at or above {}", cwd.display()))
}

fn on_path(program: &str) -> bool {
    std::env::var_os("PATH").is_some_and(|paths| std::env::split_paths(&paths).any(|d| d.join(program).is_file()))
}

/// The executable of `bin` among cargo's JSON messages.
fn executable_of(messages: &str, bin: &str) -> Option<PathBuf> {
    messages
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|m| m["reason"] == "compiler-artifact" && m["target"]["name"] == bin)
        .filter_map(|m| m["executable"].as_str().map(PathBuf::from))
        .next_back()
}

/// The newest `GLIBC_x.y` symbol version an ELF binary names (its version requirements live in `.dynstr`
/// as these strings). `None` for a binary that names none (static, musl).
pub fn max_glibc(elf: &[u8]) -> Option<(u32, u32)> {
    const NEEDLE: &[u8] = b"GLIBC_";
    let mut best: Option<(u32, u32)> = None;
    let mut i = 0;
    while let Some(pos) = elf[i..].windows(NEEDLE.len()).position(|w| w == NEEDLE) {
        let start = i + pos + NEEDLE.len();
        let rest = &elf[start..elf.len().min(start + 12)];
        let text: String = rest.iter().take_while(|b| b.is_ascii_digit() || **b == b'.').map(|b| *b as char).collect();
        let mut parts = text.split('.').map(|p| p.parse::<u32>());
        if let (Some(Ok(major)), Some(Ok(minor))) = (parts.next(), parts.next()) {
            let v = (major, minor);
            if best.is_none_or(|b| v > b) {
                best = Some(v);
            }
        }
        i = start;
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_binary_gives_the_same_zip_bytes() {
        let dir = tempdir();
        let bin = dir.join("app");
        std::fs::write(&bin, b"\x7fELF pretend binary").unwrap();
        let a = dir.join("a.zip");
        let b = dir.join("b.zip");
        let sha_a = package_binary(&bin, &a).unwrap();
        // A later mtime and other permissions on the input change nothing.
        std::thread::sleep(std::time::Duration::from_millis(20));
        std::fs::write(&bin, b"\x7fELF pretend binary").unwrap();
        let sha_b = package_binary(&bin, &b).unwrap();
        assert_eq!(sha_a, sha_b);
        assert_eq!(std::fs::read(&a).unwrap(), std::fs::read(&b).unwrap());
        assert_eq!(sha_a, sha256_base64(&std::fs::read(&a).unwrap()));
        // Different content, different hash.
        std::fs::write(&bin, b"\x7fELF another binary").unwrap();
        assert_ne!(package_binary(&bin, &b).unwrap(), sha_a);
    }

    #[test]
    fn a_binary_packaged_before_is_not_deflated_again() {
        let dir = tempdir();
        let bin = dir.join("app");
        let out = dir.join("app.zip");
        std::fs::write(&bin, b"\x7fELF pretend binary").unwrap();
        let (sha, reused) = package(&bin, &out).unwrap();
        assert!(!reused);
        let (again, reused) = package(&bin, &out).unwrap();
        assert!(reused, "the same executable: the zip already there is kept");
        assert_eq!(again, sha);
        // Rebuilt to the same bytes (a new mtime): still the same executable.
        std::fs::write(&bin, b"\x7fELF pretend binary").unwrap();
        assert_eq!(package(&bin, &out).unwrap(), (sha.clone(), true));
        // Another executable: packaged again, and the record follows.
        std::fs::write(&bin, b"\x7fELF another binary").unwrap();
        let (other, reused) = package(&bin, &out).unwrap();
        assert!(!reused);
        assert_ne!(other, sha);
        assert_eq!(other, sha256_base64(&std::fs::read(&out).unwrap()));
        assert_eq!(package(&bin, &out).unwrap(), (other.clone(), true));
        // A zip changed behind the record's back is not trusted: rebuilt from the executable.
        std::fs::write(&out, b"not the zip").unwrap();
        assert_eq!(package(&bin, &out).unwrap(), (other.clone(), false));
        assert_eq!(other, sha256_base64(&std::fs::read(&out).unwrap()));
        // Nor is a record of another packaging version, or a torn one.
        let record = dir.join("app.zip.source");
        let text = std::fs::read_to_string(&record).unwrap();
        std::fs::write(&record, text.replace(PACKAGED, "ferroform-zip-0")).unwrap();
        assert_eq!(package(&bin, &out).unwrap(), (other.clone(), false));
        std::fs::write(&record, &text[..text.len() / 2]).unwrap();
        assert_eq!(package(&bin, &out).unwrap(), (other, false));
    }

    #[test]
    fn the_zip_holds_an_executable_bootstrap_from_1980() {
        let zip = reproducible_zip(&[("bootstrap", 0o755, b"hello")]).unwrap();
        let mut archive = zip::ZipArchive::new(Cursor::new(zip)).unwrap();
        assert_eq!(archive.len(), 1);
        let f = archive.by_index(0).unwrap();
        assert_eq!(f.name(), "bootstrap");
        assert_eq!(f.unix_mode().map(|m| m & 0o777), Some(0o755));
        let t = f.last_modified().unwrap();
        assert_eq!((t.year(), t.month(), t.day(), t.hour(), t.minute()), (1980, 1, 1, 0, 0));
    }

    #[test]
    fn entries_are_ordered_whatever_the_input_order() {
        let a = reproducible_zip(&[("b", 0o644, b"2"), ("a", 0o644, b"1")]).unwrap();
        let b = reproducible_zip(&[("a", 0o644, b"1"), ("b", 0o644, b"2")]).unwrap();
        assert_eq!(a, b);
    }

    #[test]
    fn sha256_is_base64_like_lambda_reports_it() {
        // sha256("") in base64.
        assert_eq!(sha256_base64(b""), "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=");
    }

    #[test]
    fn glibc_versions_are_read_off_the_binary() {
        let fake = b"\0libc.so.6\0GLIBC_2.2.5\0GLIBC_2.34\0GLIBC_2.17\0GLIBC_PRIVATE\0";
        assert_eq!(max_glibc(fake), Some((2, 34)));
        assert_eq!(max_glibc(b"\0GLIBC_2.39\0GLIBC_2.4\0"), Some((2, 39)));
        assert_eq!(max_glibc(b"static binary"), None);
    }

    #[test]
    fn cargo_messages_name_the_executable() {
        let msgs = r#"{"reason":"compiler-artifact","target":{"name":"other"},"executable":"/t/other"}
{"reason":"compiler-artifact","target":{"name":"app"},"executable":null}
{"reason":"compiler-artifact","target":{"name":"app"},"executable":"/t/release/app"}
{"reason":"build-finished","success":true}"#;
        assert_eq!(executable_of(msgs, "app"), Some(PathBuf::from("/t/release/app")));
        assert_eq!(executable_of(msgs, "nope"), None);
    }

    #[test]
    fn missing_files_become_unavailable_code() {
        assert!(matches!(Code::zip_file("/nonexistent/x.zip"), Code::Unavailable { .. }));
        assert!(matches!(Code::binary("/nonexistent/bin"), Code::Unavailable { .. }));
        let skipped = CargoBin::new("nope").workspace("/nonexistent").mode(BuildMode::Skip).build();
        let Code::Unavailable { error } = skipped else { panic!("expected an error") };
        assert!(error.contains("FERROFORM_SKIP_BUILD"), "{error}");
        // With builds off (a command that needs no code), nothing is built or looked for: a stand-in that
        // validates. (In this test, not its own: the switch is process-wide.)
        ferroform_core::set_builds(false);
        let stand_in = CargoBin::new("nope").workspace("/nonexistent").build();
        ferroform_core::set_builds(true);
        assert_eq!(stand_in, Code::Zip { sha256: NOT_BUILT.into(), size: 0 });
    }

    #[test]
    fn code_serializes_by_kind() {
        let z = Code::Zip { sha256: "abc=".into(), size: 3 };
        assert_eq!(serde_json::to_value(&z).unwrap(), serde_json::json!({"zip": {"sha256": "abc=", "size": 3}}));
        // A state written when the path was recorded still loads (the path is dropped).
        let old: Code = serde_json::from_value(serde_json::json!({"zip": {"path": "/p.zip", "sha256": "abc="}})).unwrap();
        assert_eq!(old, Code::Zip { sha256: "abc=".into(), size: 0 });
        assert_eq!(serde_json::to_value(Code::image("r:1")).unwrap(), serde_json::json!({"image": {"uri": "r:1"}}));
    }

    /// Under `cargo test` this process has the variables cargo sets for its programs; a build leaves them out,
    /// and keeps the ones a user sets for cargo.
    #[test]
    fn nested_builds_leave_out_what_cargo_set_for_this_program() {
        assert!(std::env::var_os("CARGO_MANIFEST_DIR").is_some() && std::env::var_os("CARGO_PKG_NAME").is_some());
        let cmd = cargo_command();
        let removed: Vec<String> = cmd.get_envs().filter(|(_, v)| v.is_none()).map(|(k, _)| k.to_string_lossy().into_owned()).collect();
        for name in ["CARGO_MANIFEST_DIR", "CARGO_PKG_NAME", "CARGO_PKG_VERSION"] {
            assert!(removed.iter().any(|r| r == name), "{name} left in: {removed:?}");
        }
        // Set only while compiling, not for the program: left out whenever a parent set it.
        assert!(set_for_the_program("CARGO_CRATE_NAME") && set_for_the_program("OUT_DIR"));
        assert!(["CARGO_HOME", "CARGO_TARGET_DIR", "CARGO_INCREMENTAL", "CARGO_PROFILE_DEV_DEBUG"].iter().all(|k| !set_for_the_program(k)));
        for setting in ["CARGO_HOME", "CARGO_INCREMENTAL", "RUSTFLAGS", "RUSTC_WORKSPACE_WRAPPER", "CLIPPY_ARGS"] {
            assert!(a_build_setting(setting), "{setting}");
        }
        assert!(["RUST_LOG", "RUST_BACKTRACE", "HOME", "CARGO_PKG_NAME"].iter().all(|k| !a_build_setting(k)));
        let kept: Vec<String> = build_settings().into_iter().map(|(k, _)| k).collect();
        assert!(
            kept.iter().any(|k| k == "CARGO") && !kept.iter().any(|k| k.starts_with("CARGO_PKG_") || k == "CARGO_MANIFEST_DIR"),
            "{kept:?}"
        );
    }

    /// `host`: the dev profile for this machine (target/debug, shared with the stack program's build), no
    /// glibc check; the zip's `bootstrap` runs here.
    #[test]
    fn a_host_build_is_the_dev_profile_for_this_machine() {
        let d = tempdir();
        std::fs::write(d.join("Cargo.toml"), "[package]\nname = \"tiny\"\nversion = \"0.1.0\"\nedition = \"2021\"\n[workspace]\n").unwrap();
        std::fs::create_dir_all(d.join("src")).unwrap();
        std::fs::write(d.join("src/main.rs"), "fn main() { println!(\"tiny here\"); }\n").unwrap();
        cargo_command().args(["generate-lockfile", "--offline"]).current_dir(&d).status().unwrap();
        let code = CargoBin::new("tiny").package("tiny").workspace(&d).mode(BuildMode::Host).build();
        assert!(matches!(code, Code::Zip { .. }), "{code:?}");
        let target = std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| d.join("target"));
        assert!(target.join("debug/tiny").is_file(), "built in target/debug, no --target, no lambda profile");
        let out = std::process::Command::new(target.join("debug/tiny")).output().unwrap();
        assert_eq!(String::from_utf8_lossy(&out.stdout), "tiny here\n");
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn lambda_binaries_take_the_workspaces_lambda_profile_else_release() {
        let d = tempdir();
        assert_eq!(profile_of(&d), "release", "no Cargo.toml");
        std::fs::write(d.join("Cargo.toml"), "[workspace]\n[profile.release]\nlto = true\n").unwrap();
        assert_eq!(profile_of(&d), "release");
        std::fs::write(d.join("Cargo.toml"), "[workspace]\n\n[profile.lambda]\ninherits = \"release\"\n").unwrap();
        assert_eq!(profile_of(&d), "lambda");
        // This repository's.
        assert_eq!(profile_of(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")), "lambda");
    }

    #[test]
    fn the_same_zip_in_two_directories_is_the_same_code_with_no_path_in_its_inputs() {
        let (one, two) = (tempdir(), tempdir());
        for d in [&one, &two] {
            std::fs::write(d.join("app"), b"\x7fELF the same binary").unwrap();
        }
        let a = Code::binary(one.join("app"));
        let b = Code::binary(two.join("app"));
        assert_eq!(a, b);
        let json = serde_json::to_string(&a).unwrap();
        assert_eq!(json, serde_json::to_string(&b).unwrap());
        assert!(!json.contains(one.to_str().unwrap()) && !json.contains("app.zip"), "{json}");
        let Code::Zip { size, .. } = &a else { panic!("{a:?}") };
        assert_eq!(*size, std::fs::metadata(two.join("app.zip")).unwrap().len());
        // Through the engine's JSON round trip, the bytes are still found by their hash.
        let decoded: Code = serde_json::from_str(&json).unwrap();
        assert_eq!(decoded.zip_bytes().unwrap().unwrap(), std::fs::read(two.join("app.zip")).unwrap());
        // Bytes nobody declared in this process can't be uploaded.
        let unknown = Code::Zip { sha256: sha256_base64(b"never declared"), size: 14 };
        assert!(unknown.zip_bytes().unwrap_err().contains("plan again"));
    }

    fn tempdir() -> PathBuf {
        let d = std::env::temp_dir().join(format!("ff-code-{}-{}", std::process::id(), uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&d).unwrap();
        d
    }
}
