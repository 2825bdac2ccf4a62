//! Taking over a Terraform state (`import --from-terraform`, issue 16). The HCL in `terraform/main.tf` and the
//! ferroform stack `build` below declare the same small system; `terraform/terraform.tfstate.json` is the state
//! Terraform 1.11 wrote when it deployed that HCL on the emulator. The fixture tests need no Terraform; the
//! end-to-end test deploys the HCL again with Terraform where this machine has it and a local mirror of the
//! hashicorp/aws provider, imports, and proves nothing was recreated.
#![cfg(feature = "all")]

use ferroform_aws::apigatewayv2::{HttpApi, Integration, Route, Stage};
use ferroform_aws::dynamodb::{AttrType, Table};
use ferroform_aws::ec2::{Subnet, Vpc};
use ferroform_aws::iam::{PolicyDocument, Role};
use ferroform_aws::lambda::{Code, Function};
use ferroform_aws::logs::LogGroup;
use ferroform_core::terraform::{parse_state, settle_stack, Mapping};
use ferroform_core::Stack;
use std::path::{Path, PathBuf};

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/e2e/terraform")
}

fn fixture() -> Vec<u8> {
    std::fs::read(dir().join("terraform.tfstate.json")).expect("the fixture")
}

/// The ferroform version of `terraform/main.tf`.
pub fn build(s: &mut Stack) -> anyhow::Result<()> {
    let vpc = s.add("network/vpc", Vpc::new("10.42.0.0/16").name("tfapp"));
    s.add("network/a", Subnet::new(vpc.id(), "10.42.0.0/24").availability_zone("us-east-1a"));
    s.add("network/b", Subnet::new(vpc.id(), "10.42.1.0/24").availability_zone("us-east-1b"));
    let table = s.add("table", Table::on_demand("tfapp-orders").hash_key("id", AttrType::S));
    let trust = PolicyDocument::assume_role_by_service("lambda.amazonaws.com");
    let role = s
        .add("role", Role::new("tfapp-fn", trust).inline_policy("table", PolicyDocument::new().allow(["dynamodb:GetItem"], [table.arn()])));
    s.add("logs", LogGroup::new("/aws/lambda/tfapp-api").retention_days(14));
    let function = s.add(
        "function",
        Function::new("tfapp-api")
            .role(role.arn())
            .code(Code::zip_file(dir().join("function.zip")))
            .runtime("provided.al2023")
            .handler("bootstrap"),
    );
    let api = s.add("api", HttpApi::new("tfapp"));
    let integration = s.add("api/integration", Integration::lambda(api.id(), &function));
    s.add("api/list", Route::new(api.id(), "GET /orders").integration(&integration));
    s.add("api/create", Route::new(api.id(), "POST /orders").integration(&integration));
    // moto 5.2.5 can neither tag a stage after it is made nor update one: the takeover's only change there
    // (ferroform's own tags) is left alone, on the emulator only.
    s.add_with("api/stage", Stage::default_auto_deploy(api.id()), ferroform_core::Options::new().ignore_changes(["tags"]));
    Ok(())
}

fn stack() -> Stack {
    let mut s = Stack::new("tfapp");
    build(&mut s).expect("stack");
    s
}

#[test]
fn every_resource_of_the_stack_is_matched_by_identity_and_sub_resources_fold() {
    let tf = parse_state(&fixture(), "fixture").expect("parses");
    assert_eq!(tf.len(), 13);
    let m = settle_stack(&stack(), &fixture(), "fixture", &Mapping::default()).expect("settles");
    assert!(m.settled(), "{:?}", m.unresolved);
    let id = |a: &str| m.matched.get(a).map(|(tf, id, _)| (tf.as_str(), id.as_str()));
    let attr = |tf_address: &str, key: &str| {
        tf.iter().find(|r| r.address == tf_address).and_then(|r| r.attributes.get(key)?.as_str().map(String::from)).unwrap_or_default()
    };
    assert_eq!(id("network/vpc"), Some(("aws_vpc.main", attr("aws_vpc.main", "id").as_str())));
    assert_eq!(id("network/b"), Some(("aws_subnet.b", attr("aws_subnet.b", "id").as_str())));
    assert_eq!(id("function"), Some(("aws_lambda_function.api", "tfapp-api")));
    let api = attr("aws_apigatewayv2_api.api", "id");
    // Terraform keeps the API apart; here a route's id is API/ROUTE, a stage's API/NAME.
    assert_eq!(id("api/list").map(|x| x.1.to_string()), Some(format!("{api}/{}", attr("aws_apigatewayv2_route.list", "id"))));
    assert_eq!(id("api/stage").map(|x| x.1.to_string()), Some(format!("{api}/$default")));
    assert_eq!(m.folded.get("aws_iam_role_policy.fn").map(String::as_str), Some("role"));
    assert!(m.still_terraform.is_empty(), "{:?}", m.still_terraform);
    let (_, _, why) = &m.matched["network/vpc"];
    assert!(why.contains("tags.Name `tfapp`") && why.contains("cidr_block `10.42.0.0/16`"), "{why}");
}

#[test]
fn what_identity_cannot_settle_goes_to_a_proposal_and_the_mapping_settles_it() {
    let mut s = stack();
    // Not in Terraform: no candidate.
    s.add("extra-logs", LogGroup::new("/extra"));
    let m = settle_stack(&s, &fixture(), "fixture", &Mapping::default()).expect("settles what it can");
    assert!(!m.settled());
    let why = &m.unresolved["extra-logs"];
    assert!(why.contains("no Terraform aws_cloudwatch_log_group has name `/extra`"), "{why}");
    let proposal = m.proposal();
    assert!(proposal.contains("aws_vpc.main = \"network/vpc\"  # same tags.Name `tfapp`"), "{proposal}");
    assert!(proposal.contains("# ?? = \"extra-logs\""), "{proposal}");
    // The user's answer: make it anew.
    let mapping = Mapping::parse(&format!("{proposal}create = \"extra-logs\"\n"), "map").expect("parses");
    let m = settle_stack(&s, &fixture(), "fixture", &mapping).expect("settles");
    assert!(m.settled() && m.create.contains("extra-logs"));
    // A Terraform resource the stack does not hold stays Terraform's.
    let mut s = Stack::new("tfapp");
    s.add("table", Table::on_demand("tfapp-orders").hash_key("id", AttrType::S));
    let m = settle_stack(&s, &fixture(), "fixture", &Mapping::default()).expect("settles");
    assert!(m.still_terraform.contains(&"aws_vpc.main".to_string()) && m.still_terraform.len() == 12, "{:?}", m.still_terraform);
}

#[test]
fn bad_terraform_input_is_a_clear_error_naming_it() {
    let text = String::from_utf8(fixture()).expect("utf-8");
    let v3 = text.replacen("\"version\": 4", "\"version\": 3", 1);
    let err = parse_state(v3.as_bytes(), "old.tfstate").expect_err("version 3").to_string();
    assert!(err.contains("old.tfstate") && err.contains("format version 3"), "{err}");
    let err = parse_state(&fixture()[..200], "cut.tfstate").expect_err("truncated").to_string();
    assert!(err.contains("cut.tfstate") && err.contains("truncated"), "{err}");
    let mapping = Mapping::parse("aws_vpc.nope = \"network/vpc\"\naws_vpc.main = \"ghost\"\n", "m").expect("parses");
    let err = settle_stack(&stack(), &fixture(), "fixture", &mapping).expect_err("unknown names").to_string();
    assert!(
        err.contains("`ghost`, which is not in the stack") && err.contains("`aws_vpc.nope`, which is not in the Terraform state"),
        "{err}"
    );
    let err = Mapping::parse("aws_vpc.main -> vpc\n", "m").expect_err("syntax").to_string();
    assert!(err.contains("m:1"), "{err}");
}

/// `tfapp` that allows only another account (the account guard's `allowed_account_ids`).
pub fn build_guarded(s: &mut Stack) -> anyhow::Result<()> {
    s.allowed_accounts(["111111111111"]);
    build(s)
}

/// Runs `import --from-terraform` in a child: its exit code and stderr.
fn import_in_child(kind: &str, location: &str, state: &Path, env: &[(String, String)]) -> anyhow::Result<(Option<i32>, String)> {
    let map = state.with_extension("tfmap");
    let (state, map) = (state.to_string_lossy().into_owned(), map.to_string_lossy().into_owned());
    let out = crate::child::command(kind, &["import", "--from-terraform", location, "--map", &map, "--state", &state, "--no-color"], env)?
        .output()?;
    Ok((out.status.code(), String::from_utf8_lossy(&out.stderr).into_owned()))
}

/// The fixture was written for account 123456789012 in us-east-1: another account, another region, or an
/// account the stack does not allow is refused before anything is read, and no state is written.
#[tokio::test]
async fn a_terraform_state_of_another_account_or_region_is_refused_and_nothing_is_written() -> anyhow::Result<()> {
    let account = ferroform_testkit::account().await?;
    let work = tempfile::tempdir()?;
    let state = work.path().join("ferroform.json");
    let fixture_path = dir().join("terraform.tfstate.json");
    let (code, err) = import_in_child("tfapp", &fixture_path.to_string_lossy(), &state, &account.env())?;
    assert_ne!(code, Some(0), "{err}");
    assert!(err.contains(&format!("is not of account {}", account.id)) && err.contains("is in account 123456789012"), "{err}");
    assert!(!state.exists(), "no state written");

    // The same resources in this account, but the credentials' region is another.
    let ours = String::from_utf8(fixture())?.replace("123456789012", &account.id);
    let here = work.path().join("here.tfstate");
    std::fs::write(&here, ours)?;
    let mut env = account.env();
    env.retain(|(k, _)| k != "AWS_REGION");
    env.push(("AWS_REGION".into(), "eu-west-1".into()));
    let (code, err) = import_in_child("tfapp", &here.to_string_lossy(), &state, &env)?;
    assert_ne!(code, Some(0), "{err}");
    assert!(err.contains("in eu-west-1") && err.contains("is in us-east-1"), "{err}");
    assert!(!state.exists(), "no state written");

    // The right account and region, but the stack allows only another account.
    let (code, err) = import_in_child("tfapp-guarded", &here.to_string_lossy(), &state, &account.env())?;
    assert_ne!(code, Some(0), "{err}");
    assert!(err.contains("allows only account(s) 111111111111"), "{err}");
    assert!(!state.exists(), "no state written");
    Ok(())
}

/// An `s3://` Terraform state that is not there (no such bucket, no such key) is an error naming it, never an
/// empty state; nothing is written.
#[tokio::test]
async fn an_s3_terraform_state_that_is_not_there_is_an_error() -> anyhow::Result<()> {
    let account = ferroform_testkit::account().await?;
    let work = tempfile::tempdir()?;
    let state = work.path().join("ferroform.json");
    let bucket = format!("tf-missing-{}", account.id);
    let location = format!("s3://{bucket}/env/terraform.tfstate");
    let (code, err) = import_in_child("tfapp", &location, &state, &account.env())?;
    assert_ne!(code, Some(0), "{err}");
    assert!(err.contains(&location) || err.contains(&bucket), "the error names the state: {err}");
    assert!(!state.exists(), "no state written");

    aws_sdk_s3::Client::new(&account.config).create_bucket().bucket(&bucket).send().await?;
    let (code, err) = import_in_child("tfapp", &location, &state, &account.env())?;
    assert_ne!(code, Some(0), "{err}");
    assert!(err.contains(&format!("{location}: no Terraform state there")), "{err}");
    assert!(!state.exists(), "no state written");
    Ok(())
}

/// Terraform, with the provider from a local mirror: `None` when this machine has not both.
pub fn terraform() -> Option<(PathBuf, PathBuf)> {
    let bin = std::env::var_os("PATH")?.to_str()?.split(':').map(|d| Path::new(d).join("terraform")).find(|p| p.is_file())?;
    let mirror = std::env::var_os("FERROFORM_TF_PLUGINS").map(PathBuf::from).unwrap_or_else(|| PathBuf::from("/opt/tf-plugins"));
    mirror.join("registry.terraform.io/hashicorp/aws/5.100.0").is_dir().then_some((bin, mirror))
}

/// Deploys the HCL with Terraform on a fresh account, takes it over with the command line, and proves with
/// the SDK that nothing was recreated and that ferroform now manages it (its only change: its own tags).
#[tokio::test]
async fn a_terraform_deployment_is_taken_over_without_recreating_anything() -> anyhow::Result<()> {
    let Some((bin, mirror)) = terraform() else {
        eprintln!("skipped: no terraform binary with a local mirror of hashicorp/aws 5.100.0 (set FERROFORM_TF_PLUGINS)");
        return Ok(());
    };
    let account = ferroform_testkit::account().await?;
    let work = tempfile::tempdir()?;
    for f in ["main.tf", "function.zip"] {
        std::fs::copy(dir().join(f), work.path().join(f))?;
    }
    let rc = work.path().join("terraformrc");
    std::fs::write(
        &rc,
        format!(
            "provider_installation {{\n  filesystem_mirror {{\n    path = \"{}\"\n  }}\n  direct {{ exclude = [\"registry.terraform.io/*/*\"] }}\n}}\n",
            mirror.display()
        ),
    )?;
    let tf = |args: &[&str]| -> anyhow::Result<()> {
        let out = std::process::Command::new(&bin)
            .args(args)
            .current_dir(work.path())
            .env("TF_CLI_CONFIG_FILE", &rc)
            .env("TF_IN_AUTOMATION", "1")
            .envs(account.env())
            .output()?;
        anyhow::ensure!(out.status.success(), "terraform {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        Ok(())
    };
    tf(&["init", "-input=false", "-no-color"])?;
    tf(&["apply", "-auto-approve", "-input=false", "-no-color", &format!("-var=endpoint={}", account.endpoint)])?;
    let tf_state = work.path().join("terraform.tfstate");
    let tf_resources = parse_state(&std::fs::read(&tf_state)?, "terraform.tfstate")?;
    let tf_id = |address: &str| {
        tf_resources
            .iter()
            .find(|r| r.address == address)
            .and_then(|r| r.attributes.get("id")?.as_str().map(String::from))
            .unwrap_or_default()
    };

    let state = work.path().join("ferroform.json");
    let map = work.path().join("tfapp.tfmap");
    let run =
        |args: &[&str]| -> anyhow::Result<std::process::Output> { Ok(crate::child::command("tfapp", args, &account.env())?.output()?) };
    let (state_arg, tf_arg, map_arg) =
        (state.to_string_lossy().into_owned(), tf_state.to_string_lossy().into_owned(), map.to_string_lossy().into_owned());
    let out = run(&["import", "--from-terraform", &tf_arg, "--map", &map_arg, "--state", &state_arg, "--no-color"])?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("Took over 12 resource(s)") && stdout.contains("aws_iam_role_policy.fn: folded into role"), "{stdout}");

    // The plan after taking over: only ferroform's own tags on what it now manages.
    let plan = run(&["plan", "--json", "--state", &state_arg, "--no-color"])?;
    // The child's stdout also holds the test harness's lines: the plan is the JSON document among them.
    let text = String::from_utf8_lossy(&plan.stdout).into_owned();
    let json = text.find('{').zip(text.rfind("\n}")).map(|(a, b)| &text[a..b + 2]);
    let plan: serde_json::Value = serde_json::from_str(json.unwrap_or(&text)).map_err(|e| anyhow::anyhow!("{e}: {text}"))?;
    for c in plan["changes"].as_array().into_iter().flatten() {
        let fields: Vec<&str> = c["fields"].as_array().into_iter().flatten().filter_map(|f| f["name"].as_str()).collect();
        let tags_only = c["action"] == "update" && fields.iter().all(|f| *f == "tags");
        assert!(c["action"] == "no-op" || tags_only, "only ferroform's tags (ferroform:stack, ferroform:address) may differ: {c}");
    }
    let out = run(&["apply", "--auto-approve", "--state", &state_arg, "--no-color"])?;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let out = run(&["plan", "--detailed-exitcode", "--state", &state_arg, "--no-color"])?;
    assert_eq!(out.status.code(), Some(0), "No changes after taking over:\n{}", String::from_utf8_lossy(&out.stdout));

    // Nothing recreated: the same objects, by id, one of each (independent reads).
    let ec2 = aws_sdk_ec2::Client::new(&account.config);
    let vpcs = ec2.describe_vpcs().send().await?;
    let ours: Vec<&str> = vpcs.vpcs().iter().filter(|v| v.cidr_block() == Some("10.42.0.0/16")).filter_map(|v| v.vpc_id()).collect();
    assert_eq!(ours, [tf_id("aws_vpc.main").as_str()]);
    let api = tf_id("aws_apigatewayv2_api.api");
    let apigw = aws_sdk_apigatewayv2::Client::new(&account.config);
    assert_eq!(apigw.get_apis().send().await?.items().len(), 1);
    let routes = apigw.get_routes().api_id(&api).send().await?;
    let mut route_ids: Vec<&str> = routes.items().iter().filter_map(|r| r.route_id()).collect();
    route_ids.sort();
    let mut expected = [tf_id("aws_apigatewayv2_route.list"), tf_id("aws_apigatewayv2_route.create")];
    expected.sort();
    assert_eq!(route_ids, expected.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(apigw.get_integrations().api_id(&api).send().await?.items().len(), 1);
    let lambda = aws_sdk_lambda::Client::new(&account.config);
    assert_eq!(lambda.list_functions().send().await?.functions().len(), 1);
    let ferroform_state: serde_json::Value = serde_json::from_slice(&std::fs::read(&state)?)?;
    assert_eq!(ferroform_state["resources"]["network/vpc"]["id"], tf_id("aws_vpc.main"));
    Ok(())
}
