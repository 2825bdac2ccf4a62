//! A catalogue of bad input, each run through the real command line in a child process whose AWS calls go
//! through a counting proxy: a clear error naming what and where, a non-zero exit, no mutating API call,
//! and the state file byte-for-byte as it was.

use crate::child;
use ferroform_aws::apigatewayv2::{HttpApi, Route};
use ferroform_aws::components::Network;
use ferroform_aws::dynamodb::{AttrType, Table};
use ferroform_aws::ec2::{SecurityGroup, Subnet, Vpc};
use ferroform_aws::ecr::Repository;
use ferroform_aws::ecs::{Cluster, Container, TaskDefinition};
use ferroform_aws::iam::{PolicyDocument, Role};
use ferroform_aws::lambda::{Code, Function};
use ferroform_aws::logs::LogGroup;
use ferroform_core::{Options, Ref, Stack};
use ferroform_testkit::proxy::{FaultProxy, Faults};
use std::path::Path;

/// The resource every catalogue stack starts from, so the state has something the CLI would read.
const BASE: &str = "catalogue-base";

fn base(s: &mut Stack, retention: i32) {
    s.add("base", LogGroup::new(BASE).retention_days(retention));
}

fn role_arn() -> String {
    "arn:aws:iam::123456789012:role/fn".into()
}

fn function(name: &str) -> Function {
    Function::new(name)
        .role(ferroform_core::Arn::literal(role_arn()))
        .code(Code::image("123456789012.dkr.ecr.us-east-1.amazonaws.com/app:1"))
}

/// The stacks of the catalogue, by name (built in the child).
pub fn build(kind: &str, s: &mut Stack) -> anyhow::Result<()> {
    base(s, if kind == "base-v2" { 14 } else { 7 });
    match kind {
        "base" | "base-v2" => {}
        "vpc-cidr-garbage" => drop(s.add("vpc", Vpc::new("10.0.0.0/33"))),
        "vpc-cidr-host-bits" => drop(s.add("vpc", Vpc::new("10.0.0.1/16"))),
        "vpc-cidr-too-large" => drop(s.add("vpc", Vpc::new("10.0.0.0/8"))),
        "subnet-outside-vpc" => {
            Network::new("net", "10.0.0.0/16").zones(["us-east-1a"]).public_subnets(["10.9.0.0/24"]).add(s)?;
        }
        "subnet-bad-zone" => {
            let vpc = s.add("vpc", Vpc::new("10.0.0.0/16"));
            s.add("subnet", Subnet::new(vpc.id(), "10.0.1.0/24").availability_zone("US East 1"));
        }
        "security-group-sg-name" => {
            let vpc = s.add("vpc", Vpc::new("10.0.0.0/16"));
            s.add("sg", SecurityGroup::new("sg-web", vpc.id()));
        }
        "role-name-too-long" => drop(s.add("role", Role::for_service("lambda.amazonaws.com").name("r".repeat(65)))),
        "role-bad-trust" => drop(s.add("role", Role::new("svc", PolicyDocument::new().allow(["sts:AssumeRole"], ["*"])))),
        "lambda-memory" => drop(s.add("fn", function("api").memory_size(64))),
        "lambda-timeout" => drop(s.add("fn", function("api").timeout(901))),
        "lambda-name" => drop(s.add("fn", function("my api!"))),
        "lambda-role-not-arn" => drop(s.add("fn", function("api").role(ferroform_core::Arn::literal("my-role")))),
        "lambda-reserved-env" => drop(s.add("fn", function("api").env("AWS_REGION", "eu-west-1"))),
        "route-method" => {
            let api = s.add("api", HttpApi::new("orders"));
            s.add("route", Route::new(api.id(), "FETCH /orders"));
        }
        "route-path" => {
            let api = s.add("api", HttpApi::new("orders"));
            s.add("route", Route::new(api.id(), "GET orders"));
        }
        "fargate-memory" => drop(s.add("task", TaskDefinition::new("worker", 256, 4096).container(Container::new("app", "busybox")))),
        "fargate-cpu" => drop(s.add("task", TaskDefinition::new("worker", 300, 1024).container(Container::new("app", "busybox")))),
        "table-name" => drop(s.add("table", Table::on_demand("ab").hash_key("id", AttrType::S))),
        "log-retention" => drop(s.add("logs", LogGroup::new("app").retention_days(2))),
        "ecr-name" => drop(s.add("repo", Repository::new("Orders"))),
        "cluster-name" => drop(s.add("cluster", Cluster::new("bad name"))),
        "reserved-tag" => drop(s.add("cluster", Cluster::new("jobs").tag("aws:owner", "me"))),
        "cycle" => {
            s.add_with("a", LogGroup::new("a"), Options::new().depends_on_address("b"));
            s.add_with("b", LogGroup::new("b"), Options::new().depends_on_address("a"));
        }
        "dangling-reference" => {
            drop(s.add("fn", function("api").role(ferroform_core::Arn::literal(Ref::<String>::new("ghost", "arn").token()))))
        }
        "dangling-depends-on" => drop(s.add_with("logs", LogGroup::new("app"), Options::new().depends_on_address("ghost"))),
        "dangling-output" => s.output("url", Ref::<String>::new("ghost", "endpoint")),
        "duplicate-address" => {
            s.add("logs", LogGroup::new("one"));
            s.add("logs", Cluster::new("two"));
        }
        "bad-address" => drop(s.add("my logs!", LogGroup::new("app"))),
        other => anyhow::bail!("no catalogue stack `{other}`"),
    }
    Ok(())
}

/// What a case starts from besides the stack.
enum Setup {
    /// The state of an applied `base`.
    State,
    /// A state file with these bytes.
    Bytes(Vec<u8>),
    /// The applied state, and a saved plan (of `base-v2`) with these bytes at `plan.json`.
    Plan(Vec<u8>),
    /// The applied state with its serial moved on, and the plan saved before.
    StaleState,
    /// The applied state, locked by this test process.
    Locked,
}

struct Case {
    name: &'static str,
    stack: &'static str,
    args: &'static [&'static str],
    setup: Setup,
    /// The endpoint the child calls, when not the proxy.
    endpoint: Option<&'static str>,
    credentials: bool,
    /// Whose credentials the child runs with.
    who: Who,
    /// Every one must be in stderr.
    expect: &'static [&'static str],
}

const APPLY: &[&str] = &["apply", "--auto-approve"];
const PLAN: &[&str] = &["plan"];

/// The account and region the child's credentials are for.
#[derive(Clone, Copy, PartialEq)]
enum Who {
    /// The account the state belongs to.
    Owner,
    /// Another account on the same emulator (another `AWS_PROFILE`).
    OtherAccount,
    /// The owner in another region (another `AWS_REGION`).
    OtherRegion,
}

fn case(name: &'static str, stack: &'static str, args: &'static [&'static str], expect: &'static [&'static str]) -> Case {
    Case { name, stack, args, setup: Setup::State, endpoint: None, credentials: true, who: Who::Owner, expect }
}

fn cases(state: &[u8], plan: &[u8]) -> Vec<Case> {
    let mut newer: serde_json::Value = serde_json::from_slice(state).unwrap_or_default();
    newer["format_version"] = 99.into();
    let mut other_stack = newer.clone();
    other_stack["format_version"] = 1.into();
    other_stack["stack"] = "billing".into();
    let mut damaged = other_stack.clone();
    damaged["stack"] = "catalogue".into();
    damaged["resources"] = 42.into();
    let mut plan_v99: serde_json::Value = serde_json::from_slice(plan).unwrap_or_default();
    plan_v99["format_version"] = 99.into();
    // Someone edits the reviewed plan: the retention it would set.
    let mut tampered: serde_json::Value = serde_json::from_slice(plan).unwrap_or_default();
    replace_number(&mut tampered, 14, 3653);
    let bytes = |v: &serde_json::Value| serde_json::to_vec(v).unwrap_or_default();
    let with = |mut c: Case, setup: Setup| {
        c.setup = setup;
        c
    };
    vec![
        // Invalid resource inputs.
        case("bad CIDR", "vpc-cidr-garbage", APPLY, &["vpc: field `cidr_block`", "`10.0.0.0/33` is not an IPv4 CIDR block"]),
        case("CIDR with host bits", "vpc-cidr-host-bits", APPLY, &["vpc: field `cidr_block`", "host bits", "10.0.0.0/16"]),
        case("VPC too large", "vpc-cidr-too-large", APPLY, &["vpc: field `cidr_block`", "/16 to /28"]),
        case(
            "subnet outside its VPC",
            "subnet-outside-vpc",
            APPLY,
            &["cidr_block", "10.9.0.0/24 is not inside the VPC's range 10.0.0.0/16"],
        ),
        case("bad zone name", "subnet-bad-zone", APPLY, &["subnet: field `availability_zone`", "US East 1"]),
        case("security group named sg-*", "security-group-sg-name", APPLY, &["sg: field `name`", "sg-web"]),
        case("role name too long", "role-name-too-long", APPLY, &["role: field `name`", "64"]),
        case("trust policy without a principal", "role-bad-trust", APPLY, &["role: field `assume_role_policy`", "needs a Principal"]),
        case("Lambda memory", "lambda-memory", APPLY, &["fn: field `memory_size`", "64 is out of range 128..=10240"]),
        case("Lambda timeout", "lambda-timeout", APPLY, &["fn: field `timeout`", "901 is out of range 1..=900"]),
        case("Lambda name", "lambda-name", APPLY, &["fn: field `name`", "`my api!` holds ` `"]),
        case("Lambda role not an ARN", "lambda-role-not-arn", APPLY, &["fn: field `role`", "`my-role` is not an IAM role ARN"]),
        case("Lambda reserved variable", "lambda-reserved-env", APPLY, &["fn: field `environment`", "`AWS_REGION` is reserved"]),
        case("route method", "route-method", APPLY, &["route: field `route_key`", "`FETCH` is not a route method"]),
        case("route path", "route-path", APPLY, &["route: field `route_key`", "`orders` must start with `/`"]),
        case("Fargate memory for the cpu", "fargate-memory", APPLY, &["task: field `memory`", "memory 4096 MiB does not go with cpu 256"]),
        case("Fargate cpu", "fargate-cpu", APPLY, &["task: field `cpu`", "cpu 300 is not a Fargate size"]),
        case("table name too short", "table-name", APPLY, &["table: field `name`", "`ab` must be 3 to 255 characters long"]),
        case("log retention", "log-retention", APPLY, &["logs: field `retention_days`", "2"]),
        case("repository name", "ecr-name", APPLY, &["repo: field `name`", "Orders"]),
        case("cluster name", "cluster-name", APPLY, &["cluster: field `name`", "bad name"]),
        case("reserved tag key", "reserved-tag", APPLY, &["cluster: field `tags`", "`aws:` prefix is reserved"]),
        // The graph.
        case("dependency cycle", "cycle", APPLY, &["dependency cycle", "a -> b -> a"]),
        case("dangling reference", "dangling-reference", APPLY, &["fn: field `role`", "refers to `ghost`, which is not in the stack"]),
        case("dangling depends_on", "dangling-depends-on", APPLY, &["logs: field `depends_on`", "`ghost` is not in the stack"]),
        case("dangling output", "dangling-output", APPLY, &["output.url", "refers to `ghost`"]),
        case("duplicate address", "duplicate-address", APPLY, &["logs: the address is used twice"]),
        case("bad address", "bad-address", APPLY, &["my logs!: an address is"]),
        // State files.
        with(
            case("truncated state", "base", PLAN, &["state", "is not valid JSON", "backup"]),
            Setup::Bytes(state[..state.len() / 2].to_vec()),
        ),
        with(case("corrupted state", "base", APPLY, &["state", "is not valid JSON"]), Setup::Bytes(b"\x00\x13garbage\xff{".to_vec())),
        with(case("newer state version", "base", APPLY, &["state", "format version 99", "upgrade ferroform"]), Setup::Bytes(bytes(&newer))),
        with(
            case("another stack's state", "base", APPLY, &["belongs to stack `billing`, not `catalogue`"]),
            Setup::Bytes(bytes(&other_stack)),
        ),
        with(case("damaged state", "base", APPLY, &["state", "is damaged"]), Setup::Bytes(bytes(&damaged))),
        with(case("not a state file", "base", PLAN, &["state", "is not a ferroform state file"]), Setup::Bytes(b"{\"hello\": 1}".to_vec())),
        // Saved plans.
        with(case("tampered plan", "base-v2", &["apply", "plan.json"], &["plan.json", "can't be applied"]), Setup::Plan(bytes(&tampered))),
        with(case("stale plan", "base-v2", &["apply", "plan.json"], &["plan.json", "the state changed since"]), Setup::StaleState),
        with(
            case("newer plan version", "base-v2", &["apply", "plan.json"], &["plan.json", "format version 99"]),
            Setup::Plan(bytes(&plan_v99)),
        ),
        with(
            case("plan not JSON", "base-v2", &["apply", "plan.json"], &["plan.json", "not valid JSON"]),
            Setup::Plan(b"plan: yes".to_vec()),
        ),
        // A held lock.
        with(case("held lock", "base-v2", APPLY, &["is locked by", "force-unlock"]), Setup::Locked),
        // The command line.
        case("unknown command", "base", &["frobnicate"], &["unknown command `frobnicate`; see --help"]),
        case("unknown flag", "base-v2", &["apply", "--auto-aprove"], &["unexpected argument '--auto-aprove'"]),
        case("bad parallelism", "base-v2", &["apply", "--parallelism", "many"], &["'--parallelism", "many"]),
        case("--var without a value", "base-v2", &["--var", "novalue", "apply", "--auto-approve"], &["--var `novalue` is not NAME=VALUE"]),
        case("unknown target", "base-v2", &["apply", "--auto-approve", "--target", "ghost"], &["--target `ghost`"]),
        case("no terminal to confirm on", "base-v2", &["apply"], &["no terminal to confirm on", "--auto-approve"]),
        // The environment.
        Case {
            credentials: false,
            ..case(
                "missing credentials",
                "base-v2",
                APPLY,
                &["identify the account failed", "no credentials found", "hint: no AWS credentials"],
            )
        },
        Case {
            endpoint: Some("http://127.0.0.1:9"),
            ..case("unreachable endpoint", "base-v2", APPLY, &["identify the account failed", "could not be reached"])
        },
        // The account guard: the state names its account and region; other credentials are refused, naming both.
        Case {
            who: Who::OtherAccount,
            ..case(
                "another account's credentials",
                "base-v2",
                APPLY,
                &["refusing to run", "belongs to account", "but the credentials are for account"],
            )
        },
        Case {
            who: Who::OtherAccount,
            ..case("another account, plan", "base-v2", PLAN, &["refusing to run", "nothing was read or changed"])
        },
        Case {
            who: Who::OtherRegion,
            ..case("another region", "base-v2", PLAN, &["refusing to run", "in us-east-1", "but the credentials are for", "eu-west-3"])
        },
    ]
}

fn replace_number(v: &mut serde_json::Value, from: i64, to: i64) {
    match v {
        serde_json::Value::Number(n) if n.as_i64() == Some(from) => *v = to.into(),
        serde_json::Value::Array(a) => a.iter_mut().for_each(|v| replace_number(v, from, to)),
        serde_json::Value::Object(o) => o.values_mut().for_each(|v| replace_number(v, from, to)),
        _ => {}
    }
}

/// The error as the user sees it: the `Error:` line, and the first item when it lists several.
fn message(stderr: &str) -> String {
    let mut lines = stderr.lines().skip_while(|l| !l.to_ascii_lowercase().starts_with("error"));
    let first = lines.next().unwrap_or_default();
    match lines.next() {
        Some(next) if first.ends_with(':') => format!("{first} {}", next.trim()),
        _ => first.to_string(),
    }
}

async fn run(c: &Case, dir: &Path, env: &[(String, String)]) -> anyhow::Result<(i32, String)> {
    let state = dir.join("state.json");
    let mut args = vec!["--state", state.to_str().unwrap_or_default(), "--no-color"];
    args.extend(c.args);
    let mut command = child::command(c.stack, &args, env)?;
    command.current_dir(dir).stdin(std::process::Stdio::null());
    // Waited on without blocking the runtime: the proxy the child calls runs on it.
    let out = tokio::process::Command::from(command).output().await?;
    Ok((out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stderr).into_owned()))
}

#[tokio::test]
async fn bad_input_is_refused_clearly_before_any_change() -> anyhow::Result<()> {
    let account = ferroform_testkit::account().await?;
    let other = ferroform_testkit::account().await?;
    let proxy = FaultProxy::start(&account.endpoint, Faults::none()).await?;
    let env = child::env_via(&account, proxy.endpoint());
    let work = tempfile::tempdir()?;

    // The starting point: `base` applied, and a plan of `base-v2` (a retention change) saved.
    let (code, err) = run(&case("setup", "base", APPLY, &[]), work.path(), &env).await?;
    assert_eq!(code, 0, "{err}");
    let state = std::fs::read(work.path().join("state.json"))?;
    assert!(!proxy.mutating_calls().is_empty(), "the proxy sees the CLI's calls: {:?}", proxy.calls());
    let plan_case = case("setup", "base-v2", &["plan", "--out", "plan.json"], &[]);
    let (code, err) = run(&plan_case, work.path(), &env).await?;
    assert_eq!(code, 0, "{err}");
    let plan = std::fs::read(work.path().join("plan.json"))?;
    let logs = aws_sdk_cloudwatchlogs::Client::new(&account.config);

    let cases = cases(&state, &plan);
    assert!(cases.len() >= 30);
    let mut names = std::collections::BTreeSet::new();
    for c in &cases {
        assert!(names.insert(c.name), "two cases named {}", c.name);
        let dir = tempfile::tempdir()?;
        let state_path = dir.path().join("state.json");
        let before = match &c.setup {
            Setup::Bytes(b) => b.clone(),
            Setup::StaleState => {
                let mut v: serde_json::Value = serde_json::from_slice(&state)?;
                v["serial"] = (v["serial"].as_u64().unwrap_or_default() + 1).into();
                serde_json::to_vec(&v)?
            }
            _ => state.clone(),
        };
        std::fs::write(&state_path, &before)?;
        match &c.setup {
            Setup::Plan(p) => std::fs::write(dir.path().join("plan.json"), p)?,
            Setup::StaleState => std::fs::write(dir.path().join("plan.json"), &plan)?,
            _ => {}
        }
        let lock = ferroform_core::LocalBackend::new(&state_path);
        if matches!(c.setup, Setup::Locked) {
            ferroform_core::Backend::lock(&lock, &ferroform_core::LockInfo::new("apply")).await?;
        }
        let whose = if c.who == Who::OtherAccount { &other } else { &account };
        let mut env = child::env_via(whose, c.endpoint.unwrap_or(proxy.endpoint()));
        if c.who == Who::OtherRegion {
            env.retain(|(k, _)| k != "AWS_REGION" && k != "AWS_DEFAULT_REGION");
            env.push(("AWS_REGION".into(), "eu-west-3".into()));
        }
        if !c.credentials {
            env.retain(|(k, _)| !k.starts_with("AWS_") || k == "AWS_ENDPOINT_URL" || k == "AWS_REGION");
        }
        proxy.reset();
        let (code, err) = run(c, dir.path(), &env).await?;

        assert_ne!(code, 0, "{}: exit code {code}\n{err}", c.name);
        for e in c.expect {
            assert!(err.contains(e), "{}: stderr lacks {e:?}:\n{err}", c.name);
        }
        assert_eq!(proxy.mutating_calls(), Vec::<String>::new(), "{}: mutating calls", c.name);
        if c.who != Who::Owner {
            // Refused before anything else was read: the identity call is the only one.
            assert!(proxy.calls().iter().all(|call| call.ends_with("GetCallerIdentity")), "{}: {:?}", c.name, proxy.calls());
        }
        assert!(std::fs::read(&state_path)? == before, "{}: the state file changed", c.name);
        ferroform_core::Backend::unlock(&lock, "").await?;
        eprintln!("{:<32} exit {code}: {}", c.name, message(&err));
    }

    // Nothing changed in the account either: the log group still has the retention `base` gave it.
    let groups = logs.describe_log_groups().log_group_name_prefix(BASE).send().await?;
    assert_eq!(groups.log_groups().iter().map(|g| g.retention_in_days()).collect::<Vec<_>>(), [Some(7)]);
    Ok(())
}
