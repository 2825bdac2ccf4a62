//! Tried as a new user would, through the command line: a role, a log group and a Lambda from a zip, each
//! with optional settings, applied; the settings removed from the code; then the same code planned from
//! another checkout. Every claim is read back with the SDK.

use crate::child;
use ferroform_aws::iam::Role;
use ferroform_aws::lambda::{Code, Function};
use ferroform_aws::logs::LogGroup;
use ferroform_core::Stack;
use std::path::Path;

/// `--var settings=on` sets the optional settings; anything else leaves them to AWS's defaults. The Lambda's
/// code is the binary `app` in the working directory, packaged where it lies.
pub fn build(s: &mut Stack) -> anyhow::Result<()> {
    let on = s.var("settings").as_deref() == Some("on");
    let mut role = Role::for_service("lambda.amazonaws.com");
    let mut group = LogGroup::new("/ff/newuser");
    let mut function = Function::new("ff-newuser").code(Code::binary(std::env::current_dir()?.join("app")));
    if on {
        role = role.description("runs ff-newuser").max_session_duration(7200);
        group = group.retention_days(30);
        function = function.timeout(15).memory_size(256).description("orders").env("MODE", "strict");
    }
    let role = s.add("role", role);
    s.add("logs", group);
    s.add("function", function.role(role.arn()));
    Ok(())
}

async fn cli(dir: &Path, state: &Path, env: &[(String, String)], args: &[&str]) -> anyhow::Result<(i32, String)> {
    let mut all = vec!["--state", state.to_str().unwrap_or_default(), "--no-color"];
    all.extend(args);
    let mut command = child::command("newuser", &all, env)?;
    command.current_dir(dir).stdin(std::process::Stdio::null());
    let out = tokio::process::Command::from(command).output().await?;
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    Ok((out.status.code().unwrap_or(-1), text))
}

fn checkout(bytes: &[u8]) -> anyhow::Result<tempfile::TempDir> {
    let dir = tempfile::tempdir()?;
    std::fs::write(dir.path().join("app"), bytes)?;
    Ok(dir)
}

#[tokio::test]
async fn removed_settings_revert_and_another_checkout_plans_no_changes() -> anyhow::Result<()> {
    let account = ferroform_testkit::account().await?;
    let env = account.env();
    let state_dir = tempfile::tempdir()?;
    let state = state_dir.path().join("newuser.json");
    let binary = b"\x7fELF the new user's function";
    let first = checkout(binary)?;

    let (code, out) = cli(first.path(), &state, &env, &["--var", "settings=on", "apply", "--auto-approve"]).await?;
    assert_eq!(code, 0, "{out}");
    let lambda = aws_sdk_lambda::Client::new(&account.config);
    let f = lambda.get_function_configuration().function_name("ff-newuser").send().await?;
    assert_eq!((f.timeout(), f.memory_size()), (Some(15), Some(256)));

    // The settings leave the code: each removal is planned...
    let (code, out) = cli(first.path(), &state, &env, &["plan", "--detailed-exitcode"]).await?;
    assert_eq!(code, 2, "{out}");
    for line in [
        "~ timeout = 15 -> 3",
        "~ memory_size = 256 -> 128",
        "~ description = \"orders\" -> null",
        "~ description = \"runs ff-newuser\" -> null",
        "- environment.MODE = \"strict\"",
        "~ max_session_duration = 7200 -> 3600",
        "~ retention_days = 30 -> null",
    ] {
        assert!(out.contains(line), "the plan lacks `{line}`:\n{out}");
    }
    // ...and applied: read back with the SDK.
    let (code, out) = cli(first.path(), &state, &env, &["apply", "--auto-approve"]).await?;
    assert_eq!(code, 0, "{out}");
    let f = lambda.get_function_configuration().function_name("ff-newuser").send().await?;
    assert_eq!((f.timeout(), f.memory_size()), (Some(3), Some(128)));
    assert_eq!(f.description().unwrap_or_default(), "");
    assert!(f.environment().and_then(|e| e.variables()).is_none_or(|v| v.is_empty()), "{:?}", f.environment());
    let logs = aws_sdk_cloudwatchlogs::Client::new(&account.config);
    let groups = logs.describe_log_groups().log_group_name_prefix("/ff/newuser").send().await?;
    assert_eq!(groups.log_groups().iter().map(|g| g.retention_in_days()).collect::<Vec<_>>(), [None]);
    let iam = aws_sdk_iam::Client::new(&account.config);
    let role_name = f.role().and_then(|r| r.rsplit('/').next()).unwrap_or_default().to_string();
    let role = iam.get_role().role_name(&role_name).send().await?.role.ok_or_else(|| anyhow::anyhow!("no role"))?;
    assert_eq!((role.description().unwrap_or_default(), role.max_session_duration()), ("", Some(3600)));

    // The next plan is empty, here and from another checkout of the same code (the first one gone).
    let (code, out) = cli(first.path(), &state, &env, &["plan", "--detailed-exitcode"]).await?;
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("No changes."), "{out}");
    drop(first);
    let second = checkout(binary)?;
    let (code, out) = cli(second.path(), &state, &env, &["plan", "--detailed-exitcode"]).await?;
    assert_eq!(code, 0, "another checkout: {out}");
    // Nothing of either checkout is in state.
    let text = std::fs::read_to_string(&state)?;
    assert!(!text.contains(second.path().to_str().unwrap_or("-")) && !text.contains("/tmp/"), "{text}");

    let (code, out) = cli(second.path(), &state, &env, &["destroy", "--auto-approve"]).await?;
    assert_eq!(code, 0, "{out}");
    Ok(())
}
