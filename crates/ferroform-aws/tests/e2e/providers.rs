//! Providers (issue 12): one stack over two regions and two accounts (by AssumeRole), each resource made,
//! read and deleted where its provider points, checked with SDK clients of each region and account.
#![cfg(feature = "logs")]

use aws_config::Region;
use aws_sdk_cloudwatchlogs::Client;
use ferroform_aws::logs::LogGroup;
use ferroform_aws::Aws;
use ferroform_core::{Options, Stack};
use ferroform_testkit::{Harness, ROLE_NAME};

async fn groups(config: &aws_types::SdkConfig, region: &str) -> anyhow::Result<Vec<String>> {
    let config = config.to_builder().region(Region::new(region.to_string())).build();
    let out = Client::new(&config).describe_log_groups().log_group_name_prefix("/ff/").send().await?;
    Ok(out.log_groups().iter().filter_map(|g| g.log_group_name().map(String::from)).collect())
}

#[tokio::test]
async fn one_stack_over_two_regions_and_two_accounts() -> anyhow::Result<()> {
    let h = Harness::new().await?;
    h.contexts.insert(Aws::from_config(h.account.config.clone()));
    let other = ferroform_testkit::account().await?;
    let role = format!("arn:aws:iam::{}:role/{ROLE_NAME}", other.id);
    let stack = |with_eu: bool| {
        let mut s = Stack::new("providers");
        let euw1 = s.provider("euw1", Aws::in_region("eu-west-1"));
        let acct = s.provider("acct", Aws::assume_role(&role));
        let acct_eu = s.provider("acct-eu", Aws::assume_role(&role).in_region("eu-west-1"));
        s.add("home", LogGroup::new("/ff/home"));
        if with_eu {
            s.add_with("eu", LogGroup::new("/ff/eu"), Options::new().on(&euw1));
        }
        s.on(&acct, |s| s.add("away", LogGroup::new("/ff/away")));
        s.add_with("away-eu", LogGroup::new("/ff/away-eu"), Options::new().on(&acct_eu));
        s
    };

    let plan = h.plan(&stack(true)).await?;
    let text = plan.render(false);
    assert!(text.contains("On provider `acct`:") && text.contains("On provider `euw1`:"), "{text}");
    let state = h.apply(&stack(true)).await?;

    // Each group where its provider points, and nowhere else.
    assert_eq!(groups(&h.account.config, "us-east-1").await?, ["/ff/home"]);
    assert_eq!(groups(&h.account.config, "eu-west-1").await?, ["/ff/eu"]);
    assert_eq!(groups(&other.config, "us-east-1").await?, ["/ff/away"]);
    assert_eq!(groups(&other.config, "eu-west-1").await?, ["/ff/away-eu"]);
    assert_eq!(state.resources["away"].provider.as_deref(), Some("acct"));
    let recorded = |alias: &str| state.provider_accounts.get(alias).cloned().flatten().map(|i| (i.account, i.region));
    assert_eq!(recorded("acct"), Some((other.id.clone(), "us-east-1".to_string())));
    assert_eq!(recorded("euw1"), Some((h.account.id.clone(), "eu-west-1".to_string())));
    assert!(!h.plan(&stack(true)).await?.has_changes(), "each read back through its own provider");

    // Dropped from the code: deleted in the region it lives in.
    h.apply(&stack(false)).await?;
    assert!(groups(&h.account.config, "eu-west-1").await?.is_empty());
    assert_eq!(groups(&other.config, "eu-west-1").await?, ["/ff/away-eu"]);

    h.destroy(&stack(false)).await?;
    for (config, region) in [(&h.account.config, "us-east-1"), (&other.config, "us-east-1"), (&other.config, "eu-west-1")] {
        assert!(groups(config, region).await?.is_empty(), "{region}");
    }
    Ok(())
}

/// The two stacks of the test below, built by the CLI child (`child::build`).
pub fn build_remote(kind: &str, s: &mut Stack) -> anyhow::Result<()> {
    if kind == "remote-network" {
        let group = s.add("group", LogGroup::new("/ff/network"));
        s.output("group_name", group.name());
    } else {
        let network = s.stack_outputs("network", &s.var("network_state").unwrap_or_default());
        let name: ferroform_core::Ref<String> = network.get("group_name");
        s.add("group", LogGroup::new(format!("{name}/app")));
    }
    Ok(())
}

/// `stack_outputs` through the command line: the other stack's state is read from S3 through the same backend
/// as `--state`, and its output lands in this stack's resource (read back with the SDK).
#[tokio::test]
async fn another_stacks_outputs_are_read_from_its_s3_state() -> anyhow::Result<()> {
    let h = Harness::new().await?;
    let bucket = format!("ff-remote-{}", h.account.id);
    aws_sdk_s3::Client::new(&h.account.config).create_bucket().bucket(&bucket).send().await?;
    let network = format!("s3://{bucket}/network.json");
    let app = format!("s3://{bucket}/app.json");
    let run = |kind: &str, args: &[&str]| -> anyhow::Result<std::process::Output> {
        Ok(crate::child::command(kind, args, &h.account.env())?.output()?)
    };
    let out = run("remote-network", &["apply", "--auto-approve", "--state", &network, "--no-color"])?;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let var = format!("network_state={network}");
    let out = run("remote-app", &["--var", &var, "apply", "--auto-approve", "--state", &app, "--no-color"])?;
    assert!(out.status.success(), "{}\n{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert_eq!(groups(&h.account.config, "us-east-1").await?, ["/ff/network", "/ff/network/app"]);
    let out = run("remote-app", &["--var", &var, "plan", "--state", &app, "--no-color", "--detailed-exitcode"])?;
    assert_eq!(out.status.code(), Some(0), "no changes:\n{}", String::from_utf8_lossy(&out.stdout));
    Ok(())
}
