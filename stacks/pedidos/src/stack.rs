//! The pedidos stack: `cargo run --example pedidos -- plan|apply|destroy [--var NAME=VALUE ...]`.
//!
//! ```text
//! client ─► HTTP API ($default, CORS) ─► Lambda `pedidos-api` ─► DynamoDB `pedidos`
//!                                             └─ ecs:RunTask ─► Fargate `pedidos-worker` (private subnets)
//!                                                                  ├─ DynamoDB: gateway endpoint
//!                                                                  └─ ECR image pull, logs: NAT gateway
//! ```
//!
//! | address                 | what                                                                           |
//! |-------------------------|--------------------------------------------------------------------------------|
//! | `table`                 | DynamoDB table `NAME`, on demand, hash key `id`                                |
//! | `repository`            | ECR repository `NAME-worker` for the worker's image                            |
//! | `network/...`           | VPC over 2 zones, public and private subnets, one NAT gateway, DynamoDB endpoint |
//! | `worker/...`            | ECS cluster and Fargate task `NAME-worker`, its roles, log group, security group |
//! | `function-logs`         | log group `/aws/lambda/NAME-api` with retention                                |
//! | `function-role`         | the API's role: its table actions, RunTask on the worker, PassRole, its logs   |
//! | `function`              | Lambda `NAME-api` (the `pedidos-api` binary)                                   |
//! | `api-logs`              | log group `/aws/apigateway/NAME` for the access logs                           |
//! | `api`, `api/...`        | HTTP API with CORS, `$default` stage with access logs, the five routes         |
//! | `monitoring/...`        | alarms to an SNS topic, the worker's failures from its logs, a dashboard       |
//!
//! Variables (`--var name=value` or `FF_VAR_name`), all optional:
//!
//! | variable             | default                  |                                                      |
//! |----------------------|--------------------------|------------------------------------------------------|
//! | `name`               | `pedidos`                | prefix of every name                                 |
//! | `worker_image_tag`   | `latest`                 | the worker image's tag in the repository (push it first) |
//! | `zones`              | `REGIONa,REGIONb`        | two or more zones, comma-separated; the region from `AWS_REGION` |
//! | `log_retention_days` | `14`                     | for every log group                                  |
//! | `cors_origins`       | `*`                      | comma-separated origins browsers may call from       |
//! | `protect_data`       | `false`                  | `true`: `destroy` refuses to delete the table and the repository |
//! | `alarm_email`, `alarm_https` | unset            | subscribe an address or URL to the alarm topic       |
//! | `alarm_*` thresholds | 5xx 5, p99 2000 ms, ...  | per alarm: [`crate::monitoring`]                      |
//! | `jwt_issuer`, `jwt_audience` | unset            | a JWT authorizer on every route (scopes `pedidos:read`/`pedidos:write`) |
//! | `auth`               | `none`                   | `iam`: SigV4 on every route and a callers' policy; unset: the API is open |
//! | `arch`               | `x86_64`                 | `arm64`: the API function on Graviton (built with cargo-zigbuild; see the README) |
//! | `permissions_boundary` | unset                  | a managed policy ARN set as every role's permissions boundary (FF-IAM-004) |
//!
//! Outputs: `api_url`, `table_name`, `cluster_arn`, `repository_url`; with `auth=iam`, `invoke_policy_arn`.
//! Who may call the API: [`crate::auth`].

use crate::auth::Auth;
use crate::monitoring::Monitoring;
use crate::ENV_TABLE_NAME;
use ferroform::aws::apigatewayv2::{AccessLog, Cors, HttpApi};
use ferroform::aws::components::{http_api, FargateTask, Nat, Network};
use ferroform::aws::dynamodb::{AttrType, Table};
use ferroform::aws::ecr::Repository;
use ferroform::aws::ecs::Container;
use ferroform::aws::iam::Role;
use ferroform::aws::lambda::{Architecture, CargoBin, Code, Function};
use ferroform::aws::logs::LogGroup;
use ferroform::local::LocalProgram;
use ferroform::prelude::*;

/// The routes the API function answers.
pub const ROUTES: &[&str] = &["GET /pedidos", "POST /pedidos", "GET /pedidos/{id}", "PUT /pedidos/{id}", "DELETE /pedidos/{id}"];

/// What the API function does to the table (see `db.rs`): nothing else is granted.
pub const API_TABLE_ACTIONS: &[&str] =
    &["dynamodb:GetItem", "dynamodb:Scan", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem"];

/// What the worker does to the table: it only records its verdict.
pub const WORKER_TABLE_ACTIONS: &[&str] = &["dynamodb:UpdateItem"];

/// The worker's container in the task definition: the API overrides its environment per order.
pub const WORKER_CONTAINER: &str = "worker";

/// The stack's settings.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// Prefix of every name (table, function, API, cluster, repository).
    pub name: String,
    /// The API function's code: `Code::cargo_bin("pedidos-api")` from [`Config::from_stack`].
    pub api_code: Code,
    /// The worker image's tag in the stack's repository.
    pub worker_image_tag: String,
    /// Availability zones, one public and one private subnet in each.
    pub zones: Vec<String>,
    pub log_retention_days: i32,
    pub cors_origins: Vec<String>,
    /// Keeps `destroy` from deleting the table (the orders) and the repository (the images).
    pub protect_data: bool,
    /// Who may call the API (`auth`, `jwt_issuer`, `jwt_audience`).
    pub auth: Auth,
    /// Alarm thresholds and who hears of them (`alarm_*`).
    pub monitoring: Monitoring,
    /// The API function's CPU (`arch`); its code must be built for it.
    pub arch: Architecture,
}

impl Config {
    /// The defaults, with this code for the API function (tests pass a binary they built).
    pub fn new(api_code: Code) -> Self {
        let region = ["AWS_REGION", "AWS_DEFAULT_REGION"]
            .iter()
            .find_map(|v| std::env::var(v).ok().filter(|r| !r.is_empty()))
            .unwrap_or_else(|| "us-east-1".into());
        Self {
            name: "pedidos".into(),
            api_code,
            worker_image_tag: "latest".into(),
            zones: vec![format!("{region}a"), format!("{region}b")],
            log_retention_days: 14,
            cors_origins: vec!["*".into()],
            protect_data: false,
            auth: Auth::Open,
            monitoring: Monitoring::default(),
            arch: Architecture::X86_64,
        }
    }

    /// From the stack's variables; the API's binary is built for Lambda (release, glibc 2.34: see
    /// `ferroform::aws::lambda::code`).
    pub fn from_stack(s: &Stack) -> Result<Self> {
        Config::new(CargoBin::new("pedidos-api").package("pedidos").arch(arch_of(s)?).build()).with_vars(s)
    }

    /// These settings with the stack's variables applied (the code stays): what [`Config::from_stack`] does,
    /// for tests that bring their own binary.
    pub fn with_vars(self, s: &Stack) -> Result<Self> {
        let mut cfg = self;
        cfg.name = s.var_or("name", &cfg.name);
        cfg.worker_image_tag = s.var_or("worker_image_tag", &cfg.worker_image_tag);
        if let Some(zones) = s.var("zones") {
            cfg.zones = list(&zones);
        }
        if let Some(days) = s.var("log_retention_days") {
            cfg.log_retention_days = days.trim().parse().with_context(|| format!("var log_retention_days: `{days}` is not a number"))?;
        }
        if let Some(origins) = s.var("cors_origins") {
            cfg.cors_origins = list(&origins);
        }
        if let Some(protect) = s.var("protect_data") {
            cfg.protect_data = protect.trim().parse().with_context(|| format!("var protect_data: `{protect}` is not true or false"))?;
        }
        cfg.arch = arch_of(s)?;
        cfg.auth = Auth::from_stack(s)?;
        cfg.monitoring = Monitoring::from_stack(s)?;
        Ok(cfg)
    }
}

/// `arch`: `x86_64` (the default: every machine that builds for Lambda can) or `arm64`.
fn arch_of(s: &Stack) -> Result<Architecture> {
    match s.var("arch").map(|v| v.trim().to_ascii_lowercase()).as_deref() {
        None | Some("" | "x86_64") => Ok(Architecture::X86_64),
        Some("arm64") => Ok(Architecture::Arm64),
        Some(other) => bail!("var arch: `{other}` is not x86_64 or arm64"),
    }
}

fn list(text: &str) -> Vec<String> {
    text.split(',').map(str::trim).filter(|s| !s.is_empty()).map(String::from).collect()
}

/// The stack as the command line builds it: [`build`] with [`Config::from_stack`].
pub fn stack(s: &mut Stack) -> Result<()> {
    let cfg = Config::from_stack(s)?;
    build(s, &cfg)
}

/// Declares the whole system, its protection and its monitoring included: what `stack` deploys, whoever
/// calls it (tests pass their own [`Config`]).
pub fn build(s: &mut Stack, cfg: &Config) -> Result<()> {
    let name = &cfg.name;
    s.default_tag("app", name);

    // Tables and repositories are protected by default; a stack that `destroy` must clear says so. A
    // repository that may go takes its images along.
    let data = Options::new().prevent_destroy(cfg.protect_data);
    let table = s.add_with("table", Table::on_demand(name.as_str()).hash_key("id", AttrType::S), data.clone());
    let repo = s.add_with(
        "repository",
        Repository::new(format!("{name}-worker")).scan_on_push(true).keep_last(10).force_delete(!cfg.protect_data),
        data,
    );

    // The tasks run in private subnets. DynamoDB is reached through a gateway endpoint (free, no NAT
    // traffic). Pulling the image from ECR and sending logs need a NAT gateway or three interface endpoints
    // (ecr.api, ecr.dkr, logs) in every zone: six endpoints cost more per hour than one NAT gateway, and the
    // NAT also lets the worker reach any other AWS API later. One NAT (not one per zone): if its zone fails,
    // new tasks wait, and a background worker can.
    let net = Network::new(name, "10.20.0.0/16").zones(cfg.zones.iter().cloned()).nat(Nat::Single).gateway_endpoint("dynamodb").add(s)?;

    let image = format!("{}:{}", repo.repository_url(), cfg.worker_image_tag);
    let worker = FargateTask::new(format!("{name}-worker"), net.vpc_id())
        .size(256, 512)
        // The container's hard memory limit is the task's: the same on AWS, and the emulator's RunTask
        // (which `serve` runs locally) fails on a container without one.
        .container(Container::new(WORKER_CONTAINER, image).env(ENV_TABLE_NAME, table.name()).memory(512))
        .allow(WORKER_TABLE_ACTIONS.iter().copied(), [table.arn()])
        .log_retention_days(cfg.log_retention_days)
        .add_as(s, "worker");
    // `serve` runs the worker's tasks as this binary, built for this machine, instead of the image.
    ferroform::local::container(
        worker.task_definition.address(),
        WORKER_CONTAINER,
        LocalProgram::cargo_bin("pedidos-worker").package("pedidos"),
    );

    let function_logs = s.add("function-logs", LogGroup::new(format!("/aws/lambda/{name}-api")).retention_days(cfg.log_retention_days));
    // RunTask on the worker's family (in its cluster) and PassRole on its two roles; not DescribeTasks or
    // StopTask: the API never looks at a task again.
    let role = s.add(
        "function-role",
        Role::for_service("lambda.amazonaws.com")
            .description(format!("{name}-api: its table, starting the worker, its logs"))
            .allow(API_TABLE_ACTIONS.iter().copied(), [table.arn()])
            .allow(["logs:CreateLogStream", "logs:PutLogEvents"], [format!("{}:*", function_logs.arn())])
            .inline_policy("run-worker", worker.start_policy())
            .with_stack_boundary(s),
    );

    // The environment `pedidos-api` reads (`api::Config::from_env`).
    let function = s.add(
        "function",
        Function::new(format!("{name}-api"))
            .description("pedidos: the orders HTTP API")
            .code(cfg.api_code.clone())
            .architecture(cfg.arch)
            .role(role.arn())
            .memory_size(256)
            .timeout(15)
            .log_group(function_logs.name())
            .env(ENV_TABLE_NAME, table.name())
            .env("CLUSTER_ARN", worker.cluster.arn())
            .env("TASK_DEFINITION_ARN", worker.task_definition.arn())
            .env("SUBNETS", join(&net.private_subnet_ids(), ","))
            .env("SECURITY_GROUPS", worker.security_group.id())
            .env("CONTAINER_NAME", WORKER_CONTAINER)
            .env("ASSIGN_PUBLIC_IP", "DISABLED"),
    );

    let api_logs = s.add("api-logs", LogGroup::new(format!("/aws/apigateway/{name}")).retention_days(cfg.log_retention_days));
    let cors = Cors::builder()
        .origins(cfg.cors_origins.iter().cloned())
        .methods(["GET", "POST", "PUT", "DELETE", "OPTIONS"])
        .headers(["content-type", "authorization"])
        .max_age(300);
    let api = s.add("api", HttpApi::new(name.as_str()).description("pedidos: the orders API").cors(cors));
    http_api::default_stage(s, &api, Some(AccessLog::json(api_logs.arn())));
    // Open, JWT or IAM, from the variables (see `auth.rs`).
    let auth = crate::auth::declare(s, cfg, &api);
    for route in ROUTES {
        api.lambda_route_with(s, route, &function, auth.route(route));
    }

    // `check` exceptions (docs/check.md): what this example accepts, and why.
    for (address, rule, reason) in [
        ("table", "FF-DDB-001", "the example's orders are test data; real orders want point_in_time_recovery(true)"),
        ("table", "FF-DDB-002", "development stacks are destroyed and made again; production sets protect_data"),
        ("repository", "FF-ECR-002", "worker_image_tag defaults to `latest`, pushed again by hand; the pipeline pushes one tag per commit"),
    ] {
        s.allow(address, rule, reason);
    }

    s.output("api_url", api.endpoint());
    s.output("table_name", table.name());
    s.output("cluster_arn", worker.cluster.arn());
    s.output("repository_url", repo.repository_url());

    // Alarms to a topic, the worker's failures, a dashboard: over the addresses above (see `monitoring.rs`).
    crate::monitoring::declare(s, cfg);
    Ok(())
}
