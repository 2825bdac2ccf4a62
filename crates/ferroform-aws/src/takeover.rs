//! Taking over a Terraform state (`import --from-terraform`), type by type: each type's identity pairs agree
//! with the attributes Terraform's provider writes, `terraform_id` gives the id the type reads by, and
//! sub-resources Terraform keeps apart fold into their holder. And the README's table of types is the code's.
#![cfg(all(test, feature = "all"))]

use ferroform_core::terraform::{lookup, settle_stack, Mapping};
use ferroform_core::{is_unknown, Arn, Name, Resource, Stack};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::path::Path;

/// The id `import --from-terraform` reads `resource` by when Terraform's resource has these attributes. Every
/// identity pair whose input is known must agree, as the matching requires, and one at least must be known.
fn taken_over<R: Resource>(resource: R, attributes: Value) -> String {
    let mut r = resource;
    r.normalize();
    let inputs = serde_json::to_value(&r).unwrap_or_else(|e| panic!("{e}"));
    let mut known = 0;
    for (ours, theirs) in R::TERRAFORM_IDENTITY {
        let Some(v) = lookup(&inputs, ours).filter(|v| !is_unknown(v)) else { continue };
        known += 1;
        let form = |v: &Value| R::terraform_identity_form(ours, v);
        assert_eq!(lookup(&attributes, theirs).map(form), Some(form(v)), "{}: `{ours}` against Terraform's `{theirs}`", R::TYPE);
    }
    assert!(known > 0, "{}: no identity pair is known, nothing would match", R::TYPE);
    R::terraform_id(&attributes).unwrap_or_else(|| panic!("{}: no id in {attributes}", R::TYPE))
}

/// A Terraform state (format 4) holding these (type, name, attributes).
fn tf_state(resources: &[(&str, &str, Value)]) -> Vec<u8> {
    let resources: Vec<Value> = resources
        .iter()
        .map(|(t, n, a)| json!({"mode": "managed", "type": t, "name": n, "provider": "provider[\"registry.terraform.io/hashicorp/aws\"]", "instances": [{"attributes": a}]}))
        .collect();
    serde_json::to_vec(&json!({"version": 4, "terraform_version": "1.11.0", "serial": 1, "resources": resources}))
        .unwrap_or_else(|e| panic!("{e}"))
}

const ACCOUNT: &str = "123456789012";

/// Declared short (`dynamodb`), the endpoint is the one Terraform's state holds in full; another service is not.
#[test]
fn a_vpc_endpoint_is_known_by_its_service_short_or_full() {
    let vpc = ferroform_core::Id::literal("vpc-1");
    let attributes = json!({"id": "vpce-1", "vpc_id": "vpc-1", "service_name": "com.amazonaws.us-east-1.dynamodb"});
    assert_eq!(taken_over(crate::ec2::VpcEndpoint::gateway(vpc.clone(), "dynamodb"), attributes.clone()), "vpce-1");
    assert_eq!(taken_over(crate::ec2::VpcEndpoint::gateway(vpc, "com.amazonaws.us-east-1.dynamodb"), attributes.clone()), "vpce-1");
    let form = |v: &str| <crate::ec2::VpcEndpoint as Resource>::terraform_identity_form("service_name", &json!(v));
    assert_ne!(form("s3"), form("com.amazonaws.us-east-1.dynamodb"));
}

#[test]
fn an_sns_topic_is_known_by_its_name_and_read_by_its_arn() {
    let arn = format!("arn:aws:sns:us-east-1:{ACCOUNT}:pedidos-alarms");
    let id = taken_over(crate::sns::Topic::new("pedidos-alarms"), json!({"id": arn, "arn": arn, "name": "pedidos-alarms"}));
    assert_eq!(id, arn);
}

#[test]
fn an_sns_subscription_is_known_by_what_it_delivers_where() {
    let topic = format!("arn:aws:sns:us-east-1:{ACCOUNT}:pedidos-alarms");
    let arn = format!("{topic}:7a1c1e1e-0000-4000-8000-000000000001");
    let attributes = json!({"id": arn, "arn": arn, "topic_arn": topic, "protocol": "email", "endpoint": "ops@example.com"});
    let sub = crate::sns::Subscription::email(Arn::literal(topic.clone()), "ops@example.com");
    assert_eq!(taken_over(sub, attributes.clone()), arn);
    // Another address on the same topic is another subscription.
    let other = crate::sns::Subscription::email(Arn::literal(topic), "dev@example.com");
    let inputs = serde_json::to_value(&other).unwrap_or_else(|e| panic!("{e}"));
    assert_ne!(lookup(&inputs, "endpoint"), lookup(&attributes, "endpoint"));
}

#[test]
fn a_metric_filter_is_known_by_group_and_name_and_its_id_joins_them() {
    let filter = crate::logs::MetricFilter::new(
        Name::literal("/ecs/pedidos-worker"),
        "WorkerFailures",
        "?ERROR ?REJECTED",
        "pedidos",
        "WorkerFailures",
    );
    // Terraform's id is the name alone.
    let attributes =
        json!({"id": "WorkerFailures", "name": "WorkerFailures", "log_group_name": "/ecs/pedidos-worker", "pattern": "?ERROR ?REJECTED"});
    assert_eq!(taken_over(filter, attributes), "/ecs/pedidos-worker:WorkerFailures");
}

#[test]
fn a_metric_filter_of_the_same_name_in_another_group_is_another_filter() {
    let mut s = Stack::new("t");
    s.add("filter", crate::logs::MetricFilter::new(Name::literal("/b"), "Errors", "ERROR", "ns", "Errors"));
    let state = tf_state(&[
        ("aws_cloudwatch_log_metric_filter", "a", json!({"id": "Errors", "name": "Errors", "log_group_name": "/a"})),
        ("aws_cloudwatch_log_metric_filter", "b", json!({"id": "Errors", "name": "Errors", "log_group_name": "/b"})),
    ]);
    let m = settle_stack(&s, &state, "t", &Mapping::default()).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(m.matched["filter"].0, "aws_cloudwatch_log_metric_filter.b");
    assert_eq!(m.matched["filter"].1, "/b:Errors");
    assert_eq!(m.still_terraform, ["aws_cloudwatch_log_metric_filter.a"]);
}

#[test]
fn a_codebuild_project_is_read_by_its_name_though_terraform_s_id_is_its_arn() {
    let spec = crate::codebuild::Buildspec::new().build(["cargo test"]);
    let project = crate::codebuild::Project::new(
        "app-test",
        Arn::literal(format!("arn:aws:iam::{ACCOUNT}:role/build")),
        crate::codebuild::Source::codepipeline(&spec).unwrap_or_else(|e| panic!("{e}")),
        crate::codebuild::Environment::linux("aws/codebuild/amazonlinux-x86_64-standard:5.0", "BUILD_GENERAL1_SMALL"),
    );
    let arn = format!("arn:aws:codebuild:us-east-1:{ACCOUNT}:project/app-test");
    assert_eq!(taken_over(project, json!({"id": arn, "arn": arn, "name": "app-test"})), "app-test");
}

#[test]
fn a_codepipeline_is_known_and_read_by_its_name() {
    let pipeline =
        crate::codepipeline::Pipeline::new("app", Arn::literal(format!("arn:aws:iam::{ACCOUNT}:role/p")), Name::literal("artifacts"));
    let arn = format!("arn:aws:codepipeline:us-east-1:{ACCOUNT}:app");
    assert_eq!(taken_over(pipeline, json!({"id": "app", "arn": arn, "name": "app"})), "app");
}

#[test]
fn an_oidc_provider_is_settled_as_the_only_one_or_by_the_mapping() {
    let p = crate::iam::OpenIdConnectProvider::github_actions();
    let arn = format!("arn:aws:iam::{ACCOUNT}:oidc-provider/token.actions.githubusercontent.com");
    let attrs = |url: &str| json!({"id": arn, "arn": arn, "url": url, "client_id_list": ["sts.amazonaws.com"]});
    let mut s = Stack::new("t");
    s.add("github", p);
    let one = tf_state(&[("aws_iam_openid_connect_provider", "github", attrs("token.actions.githubusercontent.com"))]);
    let m = settle_stack(&s, &one, "t", &Mapping::default()).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(m.matched["github"].1, arn);
    let two = tf_state(&[
        ("aws_iam_openid_connect_provider", "github", attrs("token.actions.githubusercontent.com")),
        ("aws_iam_openid_connect_provider", "gitlab", attrs("gitlab.com")),
    ]);
    let m = settle_stack(&s, &two, "t", &Mapping::default()).unwrap_or_else(|e| panic!("{e}"));
    let why = &m.unresolved["github"];
    assert!(why.contains("the mapping file says which") && why.contains("aws_iam_openid_connect_provider.gitlab"), "{why}");
    let mapping = Mapping::parse("aws_iam_openid_connect_provider.github = \"github\"\n", "m").unwrap_or_else(|e| panic!("{e}"));
    let m = settle_stack(&s, &two, "t", &mapping).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(m.matched["github"].1, arn);
}

#[test]
fn an_ecr_repository_takes_its_lifecycle_policy_along() {
    let mut s = Stack::new("t");
    s.add("repository", crate::ecr::Repository::new("pedidos-worker").keep_last(10));
    let arn = format!("arn:aws:ecr:us-east-1:{ACCOUNT}:repository/pedidos-worker");
    let state = tf_state(&[
        ("aws_ecr_repository", "worker", json!({"id": "pedidos-worker", "arn": arn, "name": "pedidos-worker"})),
        ("aws_ecr_lifecycle_policy", "worker", json!({"id": "pedidos-worker", "repository": "pedidos-worker", "policy": "{}"})),
    ]);
    let m = settle_stack(&s, &state, "t", &Mapping::default()).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(m.matched["repository"].1, "pedidos-worker");
    assert_eq!(m.folded.get("aws_ecr_lifecycle_policy.worker").map(String::as_str), Some("repository"));
    assert!(m.still_terraform.is_empty(), "{:?}", m.still_terraform);
}

#[test]
fn an_s3_bucket_takes_its_separate_settings_along() {
    let mut s = Stack::new("t");
    s.add("bucket", crate::s3::Bucket::for_state("acme-state"));
    let mut resources = vec![("aws_s3_bucket", "state", json!({"id": "acme-state", "bucket": "acme-state"}))];
    for t in [
        "aws_s3_bucket_versioning",
        "aws_s3_bucket_server_side_encryption_configuration",
        "aws_s3_bucket_public_access_block",
        "aws_s3_bucket_lifecycle_configuration",
    ] {
        resources.push((t, "state", json!({"id": "acme-state", "bucket": "acme-state"})));
    }
    // Another bucket's settings stay Terraform's.
    resources.push(("aws_s3_bucket_versioning", "other", json!({"id": "other", "bucket": "other"})));
    let m = settle_stack(&s, &tf_state(&resources), "t", &Mapping::default()).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(m.matched["bucket"].1, "acme-state");
    assert_eq!(m.folded.len(), 4, "{:?}", m.folded);
    assert_eq!(m.still_terraform, ["aws_s3_bucket_versioning.other"]);
}

#[test]
fn named_types_are_known_by_their_names() {
    let log_group = crate::logs::LogGroup::new("/aws/lambda/pedidos-api");
    assert_eq!(
        taken_over(log_group, json!({"id": "/aws/lambda/pedidos-api", "name": "/aws/lambda/pedidos-api"})),
        "/aws/lambda/pedidos-api"
    );
    let table = crate::dynamodb::Table::on_demand("pedidos").hash_key("id", crate::dynamodb::AttrType::S);
    assert_eq!(taken_over(table, json!({"id": "pedidos", "name": "pedidos", "hash_key": "id"})), "pedidos");
    let cluster_arn = format!("arn:aws:ecs:us-east-1:{ACCOUNT}:cluster/pedidos-worker");
    let cluster = crate::ecs::Cluster::new("pedidos-worker");
    assert_eq!(taken_over(cluster, json!({"id": cluster_arn, "arn": cluster_arn, "name": "pedidos-worker"})), cluster_arn);
    let policy_arn = format!("arn:aws:iam::{ACCOUNT}:policy/pedidos-invoke");
    let policy = crate::iam::Policy::new("pedidos-invoke", crate::iam::PolicyDocument::new().allow(["execute-api:Invoke"], ["*"]));
    assert_eq!(taken_over(policy, json!({"id": policy_arn, "arn": policy_arn, "name": "pedidos-invoke"})), policy_arn);
    let api = crate::apigatewayv2::HttpApi::new("pedidos");
    assert_eq!(taken_over(api, json!({"id": "a1b2c3", "name": "pedidos", "protocol_type": "HTTP"})), "a1b2c3");
}

/// `(Terraform type, `module::Type`, the Terraform types folding into it)` for every type the services
/// register, read from the sources: what the README's table must say.
fn registered_types() -> BTreeMap<String, (String, Vec<String>)> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let quoted = |text: &str| -> Vec<String> { text.split('"').skip(1).step_by(2).map(str::to_string).collect() };
    let mut out = BTreeMap::new();
    for dir in std::fs::read_dir(&src).unwrap_or_else(|e| panic!("{e}")).flatten() {
        let Ok(module_rs) = std::fs::read_to_string(dir.path().join("mod.rs")) else { continue };
        let module = dir.file_name().to_string_lossy().into_owned();
        let registered: Vec<&str> = module_rs.split("register::<").skip(1).filter_map(|rest| rest.split('>').next()).collect();
        for file in std::fs::read_dir(dir.path()).unwrap_or_else(|e| panic!("{e}")).flatten() {
            let text = std::fs::read_to_string(file.path()).unwrap_or_default();
            for ty in &registered {
                let Some(at) = text.find(&format!("impl Resource for {ty} {{")) else { continue };
                let body = &text[at..];
                let type_name = body.split("const TYPE: &'static str = \"").nth(1).and_then(|r| r.split('"').next());
                let folds = body
                    .split("const TERRAFORM_FOLDS")
                    .nth(1)
                    .and_then(|r| r.split("];").next())
                    .map(|list| list.split('(').skip(1).filter_map(|t| quoted(t).into_iter().next()).collect())
                    .unwrap_or_default();
                let type_name = type_name.unwrap_or_else(|| panic!("{module}::{ty}: no TYPE"));
                out.insert(type_name.to_string(), (format!("{module}::{ty}"), folds));
            }
        }
    }
    out
}

#[test]
fn the_readme_table_of_terraform_types_is_the_code_s() {
    let types = registered_types();
    assert!(types.len() >= 32, "{types:?}");
    let readme = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../README.md")).unwrap_or_else(|e| panic!("{e}"));
    let section = readme.split("### Coming from Terraform").nth(1).and_then(|s| s.split("\n### ").next()).unwrap_or_default();
    let mut table = BTreeMap::new();
    for row in section.lines().filter(|l| l.starts_with("| `aws_")) {
        let cells: Vec<&str> = row.trim_matches('|').split('|').map(str::trim).collect();
        let code = |cell: &str| -> Vec<String> { cell.split('`').skip(1).step_by(2).map(str::to_string).collect() };
        let (Some(tf), Some(ours)) = (code(cells[0]).pop(), code(cells.get(1).copied().unwrap_or_default()).pop()) else {
            panic!("README row `{row}`: expected | `aws_type` | `module::Type` | `folded`, ... |")
        };
        let mut folds = code(cells.get(2).copied().unwrap_or_default());
        folds.sort();
        table.insert(tf, (ours, folds));
    }
    let code: BTreeMap<String, (String, Vec<String>)> = types
        .into_iter()
        .map(|(tf, (ours, mut folds))| {
            (
                tf,
                (ours, {
                    folds.sort();
                    folds
                }),
            )
        })
        .collect();
    for (tf, row) in &code {
        assert_eq!(table.get(tf), Some(row), "README's Coming from Terraform table, row of `{tf}`");
    }
    for tf in table.keys() {
        assert!(code.contains_key(tf), "README's table has `{tf}`, which no registered type is");
    }
}
