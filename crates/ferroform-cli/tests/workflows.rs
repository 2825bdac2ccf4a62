//! The delivery workflows people copy (examples/github-actions/*.yml) pass actionlint and zizmor with no
//! finding. Both are installed, pinned, into a project-local venv by scripts/ci-tools.

#[test]
fn the_example_workflows_pass_actionlint_and_zizmor() {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");
    let out = std::process::Command::new(format!("{root}/scripts/ci-tools")).arg("lint-workflows").output();
    let out = match out {
        Ok(o) => o,
        Err(e) => panic!("running scripts/ci-tools: {e}"),
    };
    assert!(out.status.success(), "findings:\n{}\n{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
}
