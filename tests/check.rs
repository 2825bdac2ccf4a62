//! `check` over the shipped stacks (their findings and exceptions listed), its exit codes through the
//! command line, and its SARIF against the SARIF 2.1.0 schema.

use ferroform::aws::check::{check, Report, Severity};
use ferroform::aws::iam::{PolicyDocument, Role, Statement};
use ferroform::prelude::*;
use std::process::ExitCode;

/// The stack as its program builds it, without building any code (as `check` does).
fn built(name: &str, build: fn(&mut Stack) -> Result<()>) -> Result<Stack> {
    ferroform::set_builds(false);
    let mut s = Stack::new(name);
    build(&mut s)?;
    Ok(s)
}

/// (rule, address, allowed) of every finding, in the report's order.
fn listed(r: &Report) -> Vec<(String, String, bool)> {
    r.findings.iter().map(|f| (f.rule.to_string(), f.address.clone(), f.allowed.is_some())).collect()
}

fn rows(rows: &[(&str, &str, bool)]) -> Vec<(String, String, bool)> {
    rows.iter().map(|(r, a, ok)| (r.to_string(), a.to_string(), *ok)).collect()
}

#[test]
fn pedidos_passes_with_its_exceptions_and_advisories_listed() -> Result<()> {
    let r = check(&built("pedidos", pedidos::stack::stack)?);
    assert_eq!(r.blocking(Severity::Low), 0, "{}", r.to_text(false, Severity::Low));
    assert_eq!(
        listed(&r),
        rows(&[
            ("FF-DDB-001", "table", true),
            ("FF-DDB-002", "table", true),
            ("FF-ECR-002", "repository", true),
            ("FF-APIGW-002", "api/delete-pedidos-id/route", false),
            ("FF-APIGW-002", "api/get-pedidos-id/route", false),
            ("FF-APIGW-002", "api/get-pedidos/route", false),
            ("FF-APIGW-002", "api/post-pedidos/route", false),
            ("FF-APIGW-002", "api/put-pedidos-id/route", false),
        ])
    );
    assert!(r.unknown_allows.is_empty());
    Ok(())
}

#[test]
fn hello_passes_with_its_exceptions_and_advisories_listed() -> Result<()> {
    let r = check(&built("hello", hello::stack::stack)?);
    assert_eq!(r.blocking(Severity::Low), 0, "{}", r.to_text(false, Severity::Low));
    assert_eq!(
        listed(&r),
        rows(&[
            ("FF-APIGW-001", "api/stage", true),
            ("FF-CW-001", "alarms/api-5xx", true),
            ("FF-CW-001", "alarms/errors", true),
            ("FF-CW-001", "alarms/p99-duration", true),
            ("FF-ECR-002", "repository", true),
            ("FF-APIGW-002", "api/get-health/route", false),
            ("FF-APIGW-002", "api/get-hello/route", false),
            ("FF-APIGW-002", "api/post-echo/route", false),
        ])
    );
    // With a topic the alarms notify someone, and their exception is not declared at all.
    let mut s = Stack::new("hello");
    s.set_var("alarm_topic_arn", "arn:aws:sns:us-east-1:123456789012:alerts");
    ferroform::set_builds(false);
    hello::stack::stack(&mut s)?;
    assert!(check(&s).of("FF-CW-001").is_empty());
    Ok(())
}

fn wildcard(s: &mut Stack) -> Result<()> {
    s.add(
        "admin",
        Role::for_service("lambda.amazonaws.com")
            .inline_policy("all", PolicyDocument::new().statement(Statement::allow().action("*").resource("*"))),
    );
    Ok(())
}

#[test]
fn a_wildcard_policy_fails_the_check_with_exit_3_naming_address_and_rule() -> Result<()> {
    let run = |args: &[&str]| {
        let mut argv = vec!["t", "--no-color", "check"];
        argv.extend(args);
        ferroform::cli::app("t").run_from(argv, wildcard)
    };
    assert_eq!(run(&[]), ExitCode::from(3));
    assert_eq!(run(&["--json"]), ExitCode::from(3));
    assert_eq!(run(&["--fail-on", "critical"]), ExitCode::SUCCESS, "FF-IAM-001 and 002 are high");
    assert_eq!(run(&["--fail-on", "severe"]), ExitCode::FAILURE);
    let r = check(&built("t", wildcard)?);
    let text = r.to_text(false, Severity::Low);
    assert!(text.contains("HIGH     FF-IAM-001  admin  inline_policies.all.Statement[0].Action"), "{text}");
    assert!(text.contains("HIGH     FF-IAM-002  admin  inline_policies.all.Statement[0].Resource"), "{text}");
    // The same stack with the exceptions declared passes, and says why.
    let excused = |s: &mut Stack| {
        wildcard(s)?;
        s.allow("admin", "FF-IAM-001", "a break-glass role, assumed by hand only");
        s.allow("admin", "FF-IAM-002", "a break-glass role, assumed by hand only");
        Ok(())
    };
    assert_eq!(ferroform::cli::app("t").run_from(["t", "--no-color", "check"], excused), ExitCode::SUCCESS);
    Ok(())
}

#[test]
fn sarif_validates_against_the_sarif_2_1_0_schema() -> Result<()> {
    let root = env!("CARGO_MANIFEST_DIR");
    let dir = std::env::temp_dir().join(format!("ferroform-sarif-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    for (name, stack) in [("pedidos", built("pedidos", pedidos::stack::stack)?), ("wildcard", built("t", wildcard)?)] {
        let file = dir.join(format!("{name}.sarif"));
        std::fs::write(&file, check(&stack).to_sarif_text("examples/pedidos.rs"))?;
        let out = std::process::Command::new(format!("{root}/scripts/ci-tools")).arg("validate-sarif").arg(&file).output()?;
        assert!(out.status.success(), "{name}: {}", String::from_utf8_lossy(&out.stderr));
    }
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}

#[test]
fn docs_check_md_lists_every_rule_with_its_severity_and_type() -> Result<()> {
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/check.md"))?;
    for r in ferroform::aws::check::rules() {
        let row = format!("| `{}` | {} | `{}` | {} |", r.id, r.severity, r.resource_type, r.title);
        assert!(doc.contains(&row), "docs/check.md lacks: {row}");
    }
    Ok(())
}

/// The stack's `permissions_boundary` variable reaches every role the shipped stacks declare, their
/// components' included (the Fargate worker's, GitHub's deploy roles): FF-IAM-004 stays quiet, and it would
/// fire on a role that ignored it.
#[test]
fn every_role_of_the_shipped_stacks_takes_the_stacks_permissions_boundary() -> Result<()> {
    use ferroform::aws::components::{github_deploy_role, GithubDeploy};
    let boundary = "arn:aws:iam::123456789012:policy/team-boundary";
    let bootstrap = |s: &mut Stack| -> Result<()> {
        github_deploy_role(s, GithubDeploy::new("my-org/orders", ferroform_core::Name::literal("my-state")))?;
        Ok(())
    };
    type Build<'a> = &'a dyn Fn(&mut Stack) -> Result<()>;
    let stacks: [(&str, Build); 3] = [("pedidos", &pedidos::stack::stack), ("hello", &hello::stack::stack), ("bootstrap", &bootstrap)];
    for (name, build) in stacks {
        ferroform::set_builds(false);
        let mut s = Stack::new(name);
        s.set_var("permissions_boundary", boundary);
        build(&mut s)?;
        assert_eq!(check(&s).of("FF-IAM-004").len(), 0, "{name}: {}", check(&s).to_text(false, Severity::Low));
        s.add("extra", Role::for_service("lambda.amazonaws.com"));
        let fired: Vec<String> = check(&s).of("FF-IAM-004").iter().map(|f| f.address.clone()).collect();
        assert_eq!(fired, ["extra"], "{name}: the rule is on, and the stack's own roles pass it");
    }
    Ok(())
}
