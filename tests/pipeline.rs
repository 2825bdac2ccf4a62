//! The delivery pipeline people copy must be a GitHub Actions workflow of the right shape (its lint, actionlint
//! and zizmor, runs in crates/ferroform-cli/tests/workflows.rs).

use serde_norway::Value;

fn runs(job: &Value) -> Vec<String> {
    job["steps"].as_sequence().into_iter().flatten().filter_map(|s| s["run"].as_str().map(str::to_string)).collect()
}

fn roles(job: &Value) -> Vec<String> {
    job["steps"].as_sequence().into_iter().flatten().filter_map(|s| s["with"]["role-to-assume"].as_str().map(str::to_string)).collect()
}

#[test]
fn the_example_workflow_checks_plans_on_prs_and_builds_applies_smokes_and_rolls_back_on_main() -> anyhow::Result<()> {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/examples/github-actions/deploy.yml"))?;
    let wf: Value = serde_norway::from_str(&text)?;
    // Nothing granted by default; each job asks for its own.
    assert_eq!(wf["permissions"], Value::Mapping(Default::default()));
    let jobs = &wf["jobs"];
    for (name, job) in jobs.as_mapping().into_iter().flatten() {
        assert!(job["permissions"].is_mapping(), "{name:?} declares its permissions");
    }
    let all = |job: &str| runs(&jobs[job]).join("\n");

    // Every run: the security review and the tests, with no AWS access.
    assert!(all("test").contains("check") && all("test").contains("cargo test"));
    assert!(jobs["test"]["permissions"]["id-token"].is_null());

    // Pull requests: the read-only plan role, the plan with the PR's image tag, posted as a comment.
    assert!(jobs["plan"]["if"].as_str().unwrap_or_default().contains("pull_request"));
    assert!(all("plan").contains("plan --detailed-exitcode") && all("plan").contains("--var \"$IMAGE_VAR=$SHA\""));
    assert!(all("plan").contains("gh pr comment"));
    assert_eq!(roles(&jobs["plan"]), ["${{ vars.AWS_PLAN_ROLE_ARN }}"]);

    // main: the deploy role; image pushed with Buildx and a cache; the saved plan applied; outputs in the
    // summary; smoke test; rollback to the previous tag when anything after the apply fails.
    let deploy = all("deploy");
    assert!(jobs["deploy"]["if"].as_str().unwrap_or_default().contains("refs/heads/main"));
    assert_eq!(roles(&jobs["deploy"]), ["${{ vars.AWS_DEPLOY_ROLE_ARN }}"]);
    for needle in [
        "docker buildx build",
        "--cache-to",
        "--push",
        "plan --out plan.json",
        "apply plan.json",
        "GITHUB_STEP_SUMMARY",
        "smoke.sh",
        "--var \"$IMAGE_VAR=$PREVIOUS\" apply --auto-approve",
    ] {
        assert!(deploy.contains(needle), "deploy runs {needle}");
    }
    let rollback =
        jobs["deploy"]["steps"].as_sequence().into_iter().flatten().find(|s| s["name"].as_str() == Some("Roll back to the previous image"));
    assert!(rollback.is_some_and(|s| s["if"].as_str().unwrap_or_default().contains("failure()")));
    assert!(jobs["notify"]["if"].as_str().unwrap_or_default().contains("failure()"));
    assert!(all("notify").contains("DEPLOY_WEBHOOK_URL") || text.contains("secrets.DEPLOY_WEBHOOK_URL"));
    Ok(())
}
