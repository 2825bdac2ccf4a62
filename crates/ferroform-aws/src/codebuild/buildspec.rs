//! A CodeBuild buildspec (version 0.2) as typed Rust, written as the YAML CodeBuild reads: what a project's
//! `source.buildspec` holds, so build commands are code, not hand-written YAML.
//!
//! ```
//! use ferroform_aws::codebuild::Buildspec;
//! let spec = Buildspec::new().env("CARGO_TERM_COLOR", "never").build(["cargo test --workspace"]);
//! assert!(spec.to_yaml().unwrap_or_default().contains("cargo test --workspace"));
//! ```

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The buildspec version this type writes.
pub const BUILDSPEC_VERSION: &str = "0.2";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Buildspec {
    pub version: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub env: Option<Env>,
    pub phases: Phases,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifacts: Option<Artifacts>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache: Option<Cache>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct Env {
    /// Plain-text variables every command sees.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub variables: BTreeMap<String, String>,
    /// Which shell runs the commands (`bash`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shell: Option<String>,
}

/// The phases in the order CodeBuild runs them; a phase without commands is left out.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Phases {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub install: Option<Phase>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pre_build: Option<Phase>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub build: Option<Phase>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub post_build: Option<Phase>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Phase {
    pub commands: Vec<String>,
}

/// The files a build hands on (to the next pipeline action, as its output artifact).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct Artifacts {
    pub files: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_directory: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub discard_paths: Option<String>,
}

/// Directories kept between builds (with the project's cache set to S3 or local).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Cache {
    pub paths: Vec<String>,
}

impl Default for Buildspec {
    fn default() -> Self {
        Self::new()
    }
}

fn commands<C: Into<String>>(c: impl IntoIterator<Item = C>) -> Option<Phase> {
    Some(Phase { commands: c.into_iter().map(Into::into).collect() })
}

impl Buildspec {
    pub fn new() -> Self {
        Self { version: BUILDSPEC_VERSION.into(), env: None, phases: Phases::default(), artifacts: None, cache: None }
    }
    pub fn env(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.env.get_or_insert_with(Env::default).variables.insert(name.into(), value.into());
        self
    }
    pub fn shell(mut self, shell: impl Into<String>) -> Self {
        self.env.get_or_insert_with(Env::default).shell = Some(shell.into());
        self
    }
    pub fn install<C: Into<String>>(mut self, c: impl IntoIterator<Item = C>) -> Self {
        self.phases.install = commands(c);
        self
    }
    pub fn pre_build<C: Into<String>>(mut self, c: impl IntoIterator<Item = C>) -> Self {
        self.phases.pre_build = commands(c);
        self
    }
    pub fn build<C: Into<String>>(mut self, c: impl IntoIterator<Item = C>) -> Self {
        self.phases.build = commands(c);
        self
    }
    pub fn post_build<C: Into<String>>(mut self, c: impl IntoIterator<Item = C>) -> Self {
        self.phases.post_build = commands(c);
        self
    }
    /// Hands these files (paths or globs, relative to the source directory) on as the build's artifact.
    pub fn artifact_files<F: Into<String>>(mut self, files: impl IntoIterator<Item = F>) -> Self {
        self.artifacts = Some(Artifacts { files: files.into_iter().map(Into::into).collect(), ..Artifacts::default() });
        self
    }
    pub fn cache_paths<P: Into<String>>(mut self, paths: impl IntoIterator<Item = P>) -> Self {
        self.cache = Some(Cache { paths: paths.into_iter().map(Into::into).collect() });
        self
    }

    /// Every command, phase after phase, in the order CodeBuild runs them.
    pub fn all_commands(&self) -> Vec<&str> {
        let p = &self.phases;
        [&p.install, &p.pre_build, &p.build, &p.post_build]
            .into_iter()
            .flatten()
            .flat_map(|ph| ph.commands.iter().map(String::as_str))
            .collect()
    }

    /// The YAML CodeBuild reads.
    pub fn to_yaml(&self) -> Result<String, String> {
        serde_norway::to_string(self).map_err(|e| format!("buildspec: {e}"))
    }

    pub fn from_yaml(text: &str) -> Result<Self, String> {
        serde_norway::from_str(text).map_err(|e| format!("buildspec: {e}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_yaml_has_codebuilds_keys_and_reads_back() {
        let spec = Buildspec::new()
            .env("A", "1")
            .install(["rustup show"])
            .pre_build(["echo pre"])
            .build(["cargo test", "echo 'quoted: yes'"])
            .artifact_files(["plan.json"])
            .cache_paths(["/root/.cargo/registry/**/*"]);
        let yaml = spec.to_yaml().unwrap_or_default();
        let v: serde_norway::Value = serde_norway::from_str(&yaml).unwrap_or_default();
        assert_eq!(v["version"].as_str(), Some("0.2"), "{yaml}");
        assert_eq!(v["env"]["variables"]["A"].as_str(), Some("1"));
        assert_eq!(v["phases"]["pre_build"]["commands"][0].as_str(), Some("echo pre"));
        assert_eq!(v["phases"]["build"]["commands"][1].as_str(), Some("echo 'quoted: yes'"));
        assert_eq!(v["artifacts"]["files"][0].as_str(), Some("plan.json"));
        assert!(v["phases"].get("post_build").is_none(), "empty phases are left out: {yaml}");
        assert_eq!(Buildspec::from_yaml(&yaml), Ok(spec.clone()));
        assert_eq!(spec.all_commands(), ["rustup show", "echo pre", "cargo test", "echo 'quoted: yes'"]);
    }
}
