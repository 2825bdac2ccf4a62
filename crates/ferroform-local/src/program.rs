//! Where a function's or a task's local program comes from. A `Code::cargo_bin` function runs its binary
//! built natively for this machine (not the Lambda zip); an image-based function or a Fargate container
//! declares its program in the stack:
//!
//! ```ignore
//! ferroform::local::container(worker.task_definition.address(), "worker", LocalProgram::cargo_bin("pedidos-worker"));
//! ```

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Mutex, OnceLock};

/// A program to run on this machine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LocalProgram {
    /// A binary of this workspace, built with `cargo build` for this machine.
    CargoBin { bin: String, package: Option<String> },
    /// An executable and its arguments.
    Command { program: PathBuf, args: Vec<String> },
}

impl LocalProgram {
    pub fn cargo_bin(bin: impl Into<String>) -> LocalProgram {
        LocalProgram::CargoBin { bin: bin.into(), package: None }
    }
    /// The package holding the binary (for `cargo_bin`).
    pub fn package(self, package: impl Into<String>) -> LocalProgram {
        match self {
            LocalProgram::CargoBin { bin, .. } => LocalProgram::CargoBin { bin, package: Some(package.into()) },
            other => other,
        }
    }
    pub fn command(program: impl Into<PathBuf>, args: &[&str]) -> LocalProgram {
        LocalProgram::Command { program: program.into(), args: args.iter().map(|a| a.to_string()).collect() }
    }

    /// Builds it when needed; the executable and its arguments. Blocking (runs cargo).
    pub fn prepare(&self) -> Result<(PathBuf, Vec<String>), String> {
        match self {
            LocalProgram::CargoBin { bin, package } => Ok((build_native(bin, package.as_deref(), None)?, Vec::new())),
            LocalProgram::Command { program, args } => Ok((program.clone(), args.clone())),
        }
    }

    pub fn describe(&self) -> String {
        match self {
            LocalProgram::CargoBin { bin, .. } => format!("cargo binary `{bin}`"),
            LocalProgram::Command { program, .. } => program.display().to_string(),
        }
    }
}

/// What the stack declared to run where: (resource address, container name or `None` for a function).
type Declared = Mutex<Vec<(String, Option<String>, LocalProgram)>>;

fn declared() -> &'static Declared {
    static DECLARED: OnceLock<Declared> = OnceLock::new();
    DECLARED.get_or_init(Default::default)
}

/// Declares the local program of container `container` of the task definition at `task_definition_address`.
pub fn container(task_definition_address: &str, container: &str, program: LocalProgram) {
    if let Ok(mut d) = declared().lock() {
        d.retain(|(a, c, _)| !(a == task_definition_address && c.as_deref() == Some(container)));
        d.push((task_definition_address.to_string(), Some(container.to_string()), program));
    }
}

/// Declares the local program of the function at `function_address` (for image-based functions).
pub fn function(function_address: &str, program: LocalProgram) {
    if let Ok(mut d) = declared().lock() {
        d.retain(|(a, c, _)| !(a == function_address && c.is_none()));
        d.push((function_address.to_string(), None, program));
    }
}

/// The program declared for a resource (and container).
pub fn declared_for(address: &str, container: Option<&str>) -> Option<LocalProgram> {
    declared().lock().ok()?.iter().find(|(a, c, _)| a == address && c.as_deref() == container).map(|(_, _, p)| p.clone())
}

/// The directory holding `Cargo.lock`, from the current directory up.
pub fn workspace_root() -> Result<PathBuf, String> {
    let cwd = std::env::current_dir().map_err(|e| format!("no current directory: {e}"))?;
    cwd.ancestors()
        .find(|d| d.join("Cargo.lock").is_file())
        .map(Path::to_path_buf)
        .ok_or_else(|| format!("no cargo workspace at or above {}", cwd.display()))
}

/// `cargo build --bin BIN [--workspace]` for this machine (a package given selects the workspace); the
/// executable's path. Cargo's output still reaches the terminal; on a failure the error says what failed: the
/// compiler's errors, or cargo's own.
pub fn build_native(bin: &str, package: Option<&str>, workspace: Option<&Path>) -> Result<PathBuf, String> {
    let root = match workspace {
        Some(w) => w.to_path_buf(),
        None => workspace_root()?,
    };
    // Without the variables cargo set for this program: see `cargo_command`.
    let mut cmd = ferroform_aws::lambda::cargo_command();
    // No colour: cargo's own error lines are matched and kept for the message.
    cmd.current_dir(&root).args(["build", "--bin", bin, "--message-format=json", "--color", "never"]);
    // The workspace's features, not the package's: see `host_selection`.
    if package.is_some() {
        cmd.args(ferroform_aws::lambda::host_selection());
    }
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped()).stdin(Stdio::null());
    let mut child = cmd.spawn().map_err(|e| format!("can't run cargo: {e}"))?;
    // Cargo's own lines (progress, its errors) go on to the terminal and are kept for the error.
    let stderr = child.stderr.take().map(|err| {
        std::thread::spawn(move || {
            let mut kept = Vec::new();
            for line in BufReader::new(err).lines().map_while(Result::ok) {
                eprintln!("{line}");
                kept.push(line);
            }
            kept
        })
    });
    let mut executable = None;
    let mut errors = Vec::new();
    if let Some(out) = child.stdout.take() {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            let Ok(m) = serde_json::from_str::<serde_json::Value>(&line) else { continue };
            if m["reason"] == "compiler-message" {
                let rendered = m["message"]["rendered"].as_str().unwrap_or_default();
                eprint!("{rendered}");
                // rustc's closing "aborting due to N previous errors" adds nothing.
                if m["message"]["level"] == "error" && !rendered.starts_with("error: aborting due to") {
                    errors.push(rendered.trim_end().to_string());
                }
            } else if m["reason"] == "compiler-artifact" && m["target"]["name"] == bin {
                executable = m["executable"].as_str().map(PathBuf::from).or(executable);
            }
        }
    }
    let status = child.wait().map_err(|e| format!("cargo: {e}"))?;
    let cargo_lines = stderr.and_then(|t| t.join().ok()).unwrap_or_default();
    if !status.success() {
        if errors.is_empty() {
            errors = cargo_lines.into_iter().filter(|l| l.starts_with("error")).collect();
        }
        let why = if errors.is_empty() { format!("it exited with {status}") } else { errors.join("\n") };
        return Err(format!("`cargo build --bin {bin}` failed: {why}"));
    }
    executable.ok_or_else(|| format!("cargo built no executable named `{bin}`"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A compile error reaches the caller as the compiler's own message.
    #[test]
    fn a_compile_error_is_given_back() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("Cargo.toml"),
            "[package]\nname = \"broken\"\nversion = \"0.1.0\"\nedition = \"2021\"\n[workspace]\n",
        )
        .unwrap();
        std::fs::create_dir(dir.path().join("src")).unwrap();
        std::fs::write(dir.path().join("src/main.rs"), "fn main() {\n    let n: u32 = \"seven\";\n}\n").unwrap();
        let e = build_native("broken", None, Some(dir.path())).unwrap_err();
        assert!(e.starts_with("`cargo build --bin broken` failed: error[E0308]: mismatched types"), "{e}");
        assert!(e.contains("src/main.rs:2"), "{e}");
        assert!(!e.contains("aborting due to"), "{e}");
    }
}
