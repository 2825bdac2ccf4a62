//! The deploy pipeline people copy must at least be a valid GitHub Actions workflow of the right shape.

use serde_norway::Value;

#[test]
fn the_example_workflow_parses_and_plans_on_prs_and_applies_on_main() -> anyhow::Result<()> {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/examples/github-actions/deploy.yml"))?;
    let wf: Value = serde_norway::from_str(&text)?;
    assert_eq!(wf["permissions"]["id-token"], Value::from("write"), "OIDC needs id-token: write");
    let jobs = &wf["jobs"];
    let steps = |job: &str| -> Vec<String> {
        jobs[job]["steps"].as_sequence().into_iter().flatten().filter_map(|s| s["run"].as_str().map(str::to_string)).collect()
    };
    assert!(jobs["plan"]["if"].as_str().unwrap_or_default().contains("pull_request"));
    assert!(steps("plan").iter().any(|r| r.contains("plan --detailed-exitcode")));
    assert!(jobs["apply"]["if"].as_str().unwrap_or_default().contains("refs/heads/main"));
    assert!(steps("apply").iter().any(|r| r.contains("apply --auto-approve")));
    for job in ["plan", "apply"] {
        assert!(steps(job).iter().any(|r| r.contains("cargo test")), "{job} builds and tests first");
    }
    // Pull requests get the read-only plan role; only main gets the deploy role (see README.md there).
    let role = |job: &str| -> Vec<String> {
        jobs[job]["steps"]
            .as_sequence()
            .into_iter()
            .flatten()
            .filter_map(|s| s["with"]["role-to-assume"].as_str().map(str::to_string))
            .collect()
    };
    assert_eq!(role("plan"), ["${{ vars.AWS_PLAN_ROLE_ARN }}"]);
    assert_eq!(role("apply"), ["${{ vars.AWS_DEPLOY_ROLE_ARN }}"]);
    Ok(())
}
