//! Issue 16's last check: pedidos written in HCL (`terraform/pedidos/`), deployed by Terraform on a fresh
//! account, taken over by ferroform's pedidos with `import --from-terraform` (the command line, in a child),
//! then applied: nothing is recreated (every object's id is the one Terraform made, none added, none gone)
//! and the orders in the table are still there. Skipped where this machine has no `terraform` binary with a
//! local mirror of the hashicorp/aws provider.

use crate::pedidos_stack::{fake_binary, inventory};
use ferroform_aws::lambda::Code;
use ferroform_core::Stack;
use ferroform_testkit::cbor::CborShim;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The child's stand-in API binary (the zip Terraform deployed is `Code::binary`'s of it).
const CODE_VAR: &str = "FERROFORM_E2E_PEDIDOS_CODE";

fn hcl_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/e2e/terraform/pedidos")
}

/// The child kind `tfpedidos`: ferroform's pedidos with the API binary the parent named.
pub fn build(s: &mut Stack) -> anyhow::Result<()> {
    let code = std::env::var(CODE_VAR).map_err(|_| anyhow::anyhow!("{CODE_VAR} is not set"))?;
    crate::pedidos_stack::build(s, Path::new(&code))
}

/// A work directory holding the pedidos HCL, a CLI config that installs the provider from `mirror` only,
/// and the API's stand-in binary with its zip (`Code::binary` writes `bootstrap.zip`, the bytes Terraform
/// deploys, so both sides see the same code). Returns the binary's path.
pub fn hcl_workdir(dir: &Path, mirror: &Path) -> anyhow::Result<PathBuf> {
    for f in ["main.tf", "variables.tf"] {
        std::fs::copy(hcl_dir().join(f), dir.join(f))?;
    }
    std::fs::write(
        dir.join("terraformrc"),
        format!(
            "provider_installation {{\n  filesystem_mirror {{\n    path = \"{}\"\n  }}\n  direct {{ exclude = [\"registry.terraform.io/*/*\"] }}\n}}\n",
            mirror.display()
        ),
    )?;
    let code = fake_binary(dir)?;
    anyhow::ensure!(matches!(Code::binary(&code), Code::Zip { .. }), "packaging {}", code.display());
    Ok(code)
}

/// `terraform ARGS` in `dir` against the account in `env`, its output on failure.
pub fn terraform_in(bin: &Path, dir: &Path, env: &[(String, String)], args: &[&str]) -> anyhow::Result<()> {
    let out = std::process::Command::new(bin)
        .args(args)
        .current_dir(dir)
        .env("TF_CLI_CONFIG_FILE", dir.join("terraformrc"))
        .env("TF_IN_AUTOMATION", "1")
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .output()?;
    anyhow::ensure!(
        out.status.success(),
        "terraform {args:?}: {}\n{}",
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout)
    );
    Ok(())
}

/// Every object pedidos is made of in the account, read with the SDK, by kind (sorted ids): the
/// `pedidos_stack::inventory` kinds, but EC2 objects found by the VPC (the one of pedidos' range) rather
/// than by ferroform's tag, and roles by name, since Terraform's carry no ferroform tag; plus each role's
/// inline policies (`ROLE/POLICY`), which Terraform keeps apart and ferroform in the role.
async fn snapshot(config: &aws_types::SdkConfig) -> anyhow::Result<BTreeMap<String, Vec<String>>> {
    let mut found = inventory(config, "pedidos").await?;
    let ec2 = aws_sdk_ec2::Client::new(config);
    let vpcs: Vec<String> = ec2
        .describe_vpcs()
        .send()
        .await?
        .vpcs()
        .iter()
        .filter(|v| v.cidr_block() == Some("10.20.0.0/16"))
        .filter_map(|v| v.vpc_id().map(str::to_string))
        .collect();
    let ours = |vpc: Option<&str>| vpc.is_some_and(|v| vpcs.iter().any(|o| o == v));
    let gone = |state: &str| matches!(state.to_ascii_lowercase().as_str(), "deleted" | "deleting");
    let mut set = |kind: &str, ids: Vec<Option<&str>>| {
        let mut ids: Vec<String> = ids.into_iter().map(|i| i.unwrap_or_default().to_string()).collect();
        ids.sort();
        found.insert(kind.to_string(), ids);
    };
    set("aws_vpc", vpcs.iter().map(|v| Some(v.as_str())).collect());
    let subnets = ec2.describe_subnets().send().await?;
    set("aws_subnet", subnets.subnets().iter().filter(|s| ours(s.vpc_id())).map(|s| s.subnet_id()).collect());
    let igws = ec2.describe_internet_gateways().send().await?;
    set(
        "aws_internet_gateway",
        igws.internet_gateways()
            .iter()
            .filter(|g| g.attachments().iter().any(|a| ours(a.vpc_id())))
            .map(|g| g.internet_gateway_id())
            .collect(),
    );
    // The VPC's main route table is the VPC's own, in neither definition.
    let tables = ec2.describe_route_tables().send().await?;
    set(
        "aws_route_table",
        tables
            .route_tables()
            .iter()
            .filter(|t| ours(t.vpc_id()) && !t.associations().iter().any(|a| a.main() == Some(true)))
            .map(|t| t.route_table_id())
            .collect(),
    );
    let addresses = ec2.describe_addresses().send().await?;
    set("aws_eip", addresses.addresses().iter().map(|a| a.allocation_id()).collect());
    let nats = ec2.describe_nat_gateways().send().await?;
    set(
        "aws_nat_gateway",
        nats.nat_gateways()
            .iter()
            .filter(|n| ours(n.vpc_id()) && !n.state().is_some_and(|s| gone(s.as_str())))
            .map(|n| n.nat_gateway_id())
            .collect(),
    );
    let endpoints = ec2.describe_vpc_endpoints().send().await?;
    set(
        "aws_vpc_endpoint",
        endpoints
            .vpc_endpoints()
            .iter()
            .filter(|e| ours(e.vpc_id()) && !e.state().is_some_and(|s| gone(s.as_str())))
            .map(|e| e.vpc_endpoint_id())
            .collect(),
    );
    // The VPC's `default` group is the VPC's own.
    let groups = ec2.describe_security_groups().send().await?;
    set(
        "aws_security_group",
        groups.security_groups().iter().filter(|g| ours(g.vpc_id()) && g.group_name() != Some("default")).map(|g| g.group_id()).collect(),
    );
    let iam = aws_sdk_iam::Client::new(config);
    let mut roles = Vec::new();
    let mut inline = Vec::new();
    for r in iam.list_roles().send().await?.roles().iter().filter(|r| r.role_name().starts_with("pedidos")) {
        roles.push(r.role_name().to_string());
        for p in iam.list_role_policies().role_name(r.role_name()).send().await?.policy_names() {
            inline.push(format!("{}/{p}", r.role_name()));
        }
    }
    set("aws_iam_role", roles.iter().map(|r| Some(r.as_str())).collect());
    set("aws_iam_role_policy", inline.iter().map(|r| Some(r.as_str())).collect());
    Ok(found)
}

/// The JSON document among a child's stdout lines (the test harness prints its own around it).
fn json_of(stdout: &[u8]) -> anyhow::Result<serde_json::Value> {
    let text = String::from_utf8_lossy(stdout).into_owned();
    let json = text.find('{').zip(text.rfind("\n}")).map(|(a, b)| &text[a..b + 2]);
    serde_json::from_str(json.unwrap_or(&text)).map_err(|e| anyhow::anyhow!("{e}: {text}"))
}

/// What identity cannot settle, and the Terraform resource each is: the three roles (Terraform names them,
/// ferroform names its own at create, so no name is known before apply), the five integrations (alike but
/// for their ids: the same type and payload version, five candidates each). (The DynamoDB endpoint, declared
/// `dynamodb` here and held as `com.amazonaws.us-east-1.dynamodb` by Terraform, is matched by its service.)
const MAPPING: &[(&str, &str)] = &[
    ("function-role", "aws_iam_role.function"),
    ("worker/execution-role", "aws_iam_role.worker_execution"),
    ("worker/task-role", "aws_iam_role.worker_task"),
    ("api/get-pedidos/integration", "aws_apigatewayv2_integration.route[\"get-pedidos\"]"),
    ("api/post-pedidos/integration", "aws_apigatewayv2_integration.route[\"post-pedidos\"]"),
    ("api/get-pedidos-id/integration", "aws_apigatewayv2_integration.route[\"get-pedidos-id\"]"),
    ("api/put-pedidos-id/integration", "aws_apigatewayv2_integration.route[\"put-pedidos-id\"]"),
    ("api/delete-pedidos-id/integration", "aws_apigatewayv2_integration.route[\"delete-pedidos-id\"]"),
];

/// Deploys the HCL pedidos with Terraform on a fresh account, takes it over with the command line (a first
/// run that proposes a mapping, the mapping, a second run), plans (only the differences the two definitions
/// have), applies, plans again (no changes), and proves with the SDK that every object is the one Terraform
/// made and the table's items are still there.
// Two threads: the shim runs on the test's runtime while a child waits on the CLI (a blocking wait).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pedidos_deployed_by_terraform_is_taken_over_without_recreating_anything() -> anyhow::Result<()> {
    let Some((bin, mirror)) = crate::terraform::terraform() else {
        eprintln!("skipped: no terraform binary with a local mirror of hashicorp/aws 5.100.0 (set FERROFORM_TF_PLUGINS)");
        return Ok(());
    };
    let account = ferroform_testkit::account().await?;
    // pedidos' monitoring speaks CBOR to CloudWatch, which the emulator does not: ferroform and the reads go
    // through the shim; Terraform's provider speaks the emulator's protocol.
    let shim = CborShim::start(&account.endpoint).await?;
    let config = account.config_via(shim.endpoint());
    let work = tempfile::tempdir()?;
    let code = hcl_workdir(work.path(), &mirror)?;
    let tf = |args: &[&str]| terraform_in(&bin, work.path(), &account.env(), args);
    tf(&["init", "-input=false", "-no-color"])?;
    let (endpoint_var, code_var) = (format!("-var=endpoint={}", account.endpoint), format!("-var=code_zip={}.zip", code.display()));
    // moto 5.2.5 cannot tag an API stage once it exists (TagResource answers 404): Terraform makes the stage
    // with the tags ferroform's takeover would add, so that one change is not asked of the emulator.
    let stage_tags = r#"-var=stage_tags={"ferroform:stack"="pedidos","ferroform:address"="api/stage"}"#;
    tf(&["apply", "-auto-approve", "-input=false", "-no-color", &endpoint_var, &code_var, stage_tags])?;

    // Orders the takeover must not lose.
    let dynamodb = aws_sdk_dynamodb::Client::new(&config);
    let ids = ["order-1", "order-2", "order-3"];
    for id in ids {
        dynamodb.put_item().table_name("pedidos").item("id", aws_sdk_dynamodb::types::AttributeValue::S(id.into())).send().await?;
    }
    let before = snapshot(&config).await?;
    let counts: BTreeMap<&str, usize> = before.iter().map(|(k, v)| (k.as_str(), v.len())).collect();
    // One of each kind Terraform made, as many as pedidos declares (the 8 alarms, 5 routes...).
    let expected: BTreeMap<&str, usize> = [
        ("aws_vpc", 1),
        ("aws_subnet", 4),
        ("aws_internet_gateway", 1),
        ("aws_route_table", 3),
        ("aws_eip", 1),
        ("aws_nat_gateway", 1),
        ("aws_vpc_endpoint", 1),
        ("aws_security_group", 1),
        ("aws_iam_role", 3),
        ("aws_iam_role_policy", 4),
        ("aws_iam_policy", 0),
        ("aws_dynamodb_table", 1),
        ("aws_ecr_repository", 1),
        ("aws_cloudwatch_log_group", 3),
        ("aws_ecs_cluster", 1),
        ("aws_ecs_task_definition", 1),
        ("aws_lambda_function", 1),
        ("aws_lambda_permission", 5),
        ("aws_apigatewayv2_api", 1),
        ("aws_apigatewayv2_integration", 5),
        ("aws_apigatewayv2_route", 5),
        ("aws_apigatewayv2_stage", 1),
        ("aws_sns_topic", 1),
        ("aws_sns_topic_subscription", 0),
        ("aws_cloudwatch_log_metric_filter", 1),
        ("aws_cloudwatch_metric_alarm", 8),
        ("aws_cloudwatch_dashboard", 1),
    ]
    .into_iter()
    .collect();
    assert_eq!(counts, expected, "what Terraform deployed (left)");

    // The command line in a child, as a user runs it: pedidos through the shim, state and mapping in files.
    let state = work.path().join("ferroform.json");
    let map = work.path().join("pedidos.tfmap");
    let tf_state = work.path().join("terraform.tfstate");
    let mut env = crate::child::env_via(&account, shim.endpoint());
    env.push((CODE_VAR.into(), code.display().to_string()));
    let (state_arg, tf_arg, map_arg) = (state.display().to_string(), tf_state.display().to_string(), map.display().to_string());
    let run = |args: &[&str]| -> anyhow::Result<std::process::Output> { Ok(crate::child::command("tfpedidos", args, &env)?.output()?) };
    let import = ["import", "--from-terraform", &tf_arg, "--map", &map_arg, "--state", &state_arg, "--no-color"];

    // First run: what identity cannot decide is proposed, nothing is written.
    let out = run(&import)?;
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(!state.exists(), "nothing written before everything is settled");
    assert!(err.contains(&format!("{} of the stack's resources are not settled", MAPPING.len())), "{err}");
    let proposal = std::fs::read_to_string(&map)?;
    let why = |address: &str| proposal.lines().find(|l| l.contains(&format!("\"{address}\""))).unwrap_or_default().to_string();
    assert!(proposal.contains("aws_vpc_endpoint.dynamodb = \"network/endpoint-dynamodb\"  # same service_name `dynamodb`"), "{proposal}");
    for (address, _) in &MAPPING[0..3] {
        assert!(proposal.contains(&format!("# ?? = \"{address}\"  # its identity (name) is not known before apply")), "{proposal}");
    }
    for (address, _) in &MAPPING[3..] {
        let line = why(address);
        assert!(line.starts_with("# ??") && line.contains("several have integration_type `AWS_PROXY`"), "{line}");
    }
    assert!(proposal.contains("aws_vpc.main = \"network/vpc\"  # same tags.Name `pedidos`"), "{proposal}");
    // The user's answers: each by what it is for.
    let mut answered = proposal.clone();
    for (address, tf) in MAPPING {
        answered.push_str(&format!("{tf} = \"{address}\"\n"));
    }
    std::fs::write(&map, answered)?;

    let out = run(&import)?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("Took over 52 resource(s)"), "{stdout}");
    for folded in [
        "aws_route_table_association.public[0]: folded into network/public-rt",
        "aws_route_table_association.private[1]: folded into network/private-rt-1",
        "aws_ecr_lifecycle_policy.worker: folded into repository",
        "aws_iam_role_policy.function_run_worker: folded into function-role",
        "aws_iam_role_policy.worker_execution: folded into worker/execution-role",
    ] {
        assert!(stdout.contains(folded), "{folded}:\n{stdout}");
    }
    assert!(!stdout.contains("Still Terraform's"), "{stdout}");

    // The plan after taking over: the differences the two definitions have, each explained.
    let plan = json_of(&run(&["plan", "--json", "--state", &state_arg, "--no-color"])?.stdout)?;
    let mut differences = BTreeSet::new();
    for c in plan["changes"].as_array().into_iter().flatten() {
        if c["action"] == "no-op" {
            continue;
        }
        let fields: Vec<&str> = c["fields"].as_array().into_iter().flatten().filter_map(|f| f["path"].as_str()).collect();
        differences.insert(format!(
            "{} {}: {}",
            c["action"].as_str().unwrap_or_default(),
            c["address"].as_str().unwrap_or_default(),
            fields.join(",")
        ));
    }
    eprintln!("the plan after taking over:\n{}", differences.iter().cloned().collect::<Vec<_>>().join("\n"));
    // ferroform's own tags (`ferroform:stack`, `ferroform:address`) on everything that has tags: what no
    // Terraform definition carries. Nothing else differs: the HCL is pedidos resource for resource.
    // 35 resources have tags; the stage was made with ferroform's (see `stage_tags` above).
    let taggable = 34;
    assert_eq!(differences.len(), taggable, "{differences:#?}");
    for d in &differences {
        assert!(
            d.starts_with("update ") && d.ends_with(": tags[\"ferroform:address\"],tags[\"ferroform:stack\"]"),
            "a difference the definitions do not have: {d}"
        );
    }
    let out = run(&["apply", "--auto-approve", "--state", &state_arg, "--no-color"])?;
    assert!(out.status.success(), "{}\n{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    let out = run(&["plan", "--detailed-exitcode", "--state", &state_arg, "--no-color"])?;
    assert_eq!(out.status.code(), Some(0), "No changes after taking over:\n{}", String::from_utf8_lossy(&out.stdout));

    // Nothing recreated, nothing added, nothing gone: the same ids for every object (independent reads).
    let after = snapshot(&config).await?;
    assert_eq!(after, before, "the account after the takeover (left) vs what Terraform made (right)");
    // And ferroform manages every one of them: each carries its tag and is the one in its state.
    let taken = ferroform_core::State::parse(&std::fs::read(&state)?, "ferroform.json")?;
    let tagged = inventory(&config, "pedidos").await?;
    assert_eq!(tagged, crate::pedidos_stack::state_ids(&taken, "taken over"), "tagged as ferroform's (left) vs its state (right)");
    for (kind, ids) in &before {
        if kind != "aws_iam_role_policy" {
            assert_eq!(tagged.get(kind), Some(ids), "{kind}: ferroform's (left) vs Terraform's (right)");
        }
    }
    for id in ids {
        let item =
            dynamodb.get_item().table_name("pedidos").key("id", aws_sdk_dynamodb::types::AttributeValue::S(id.into())).send().await?;
        assert!(item.item().is_some(), "order {id} is still in the table");
    }
    drop(shim);
    Ok(())
}
