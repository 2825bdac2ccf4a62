//! Lookups (issue 12, item 3) against the emulator: things made with the SDK, outside any stack (a tagged VPC
//! and subnets, a security group, a role, a repository), and the default VPC moto makes in every account and
//! region, used by a stack's resources through lookups. Checked with independent SDK reads: the resources use
//! the looked-up ids, a second plan changes nothing, and the lookups made, changed and deleted nothing.

use crate::common::harness;
use aws_sdk_ec2::types::{AttributeBooleanValue, Filter, ResourceType, Tag, TagSpecification};
use ferroform_aws::components::FargateTask;
use ferroform_aws::ec2::{self, Rule, SecurityGroup};
use ferroform_aws::ecs::Container;
use ferroform_aws::lambda::{Code, Function};
use ferroform_aws::{ecr, iam, CallerIdentity};
use ferroform_core::{Id, Stack};
use ferroform_testkit::Harness;
use std::path::Path;

const STACK: &str = "lookups";

fn tags(pairs: &[(&str, &str)], kind: ResourceType) -> TagSpecification {
    let tags = pairs.iter().map(|(k, v)| Tag::builder().key(*k).value(*v).build()).collect();
    TagSpecification::builder().resource_type(kind).set_tags(Some(tags)).build()
}

fn filter(name: &str, value: &str) -> Filter {
    Filter::builder().name(name).values(value).build()
}

/// What was made outside the stack.
struct Outside {
    vpc: String,
    app_subnets: Vec<String>,
    db_subnet: String,
    db_group: String,
    role_arn: String,
    repository_uri: String,
}

/// A VPC tagged `env=lookups` with two `tier=app` subnets and one `tier=db` subnet, a `db` security group in
/// it, a Lambda role and an ECR repository: all with the SDK, so no stack knows them.
async fn make_outside(h: &Harness) -> anyhow::Result<Outside> {
    let ec2 = aws_sdk_ec2::Client::new(&h.account.config);
    let vpc = ec2
        .create_vpc()
        .cidr_block("10.42.0.0/16")
        .tag_specifications(tags(&[("env", "lookups"), ("Name", "made-elsewhere")], ResourceType::Vpc))
        .send()
        .await?;
    let vpc = vpc.vpc().and_then(|v| v.vpc_id()).unwrap_or_default().to_string();
    // The emulator's ECS needs DNS hostnames on the VPC (it names the task's interface).
    ec2.modify_vpc_attribute().vpc_id(&vpc).enable_dns_hostnames(AttributeBooleanValue::builder().value(true).build()).send().await?;
    let subnet = |cidr: &'static str, zone: &'static str, tier: &'static str| {
        let (ec2, vpc) = (ec2.clone(), vpc.clone());
        async move {
            let out = ec2
                .create_subnet()
                .vpc_id(vpc)
                .cidr_block(cidr)
                .availability_zone(zone)
                .tag_specifications(tags(&[("env", "lookups"), ("tier", tier)], ResourceType::Subnet))
                .send()
                .await?;
            anyhow::Ok(out.subnet().and_then(|s| s.subnet_id()).unwrap_or_default().to_string())
        }
    };
    // Made b before a: the lookup's order is by zone, not by creation.
    let b = subnet("10.42.2.0/24", "us-east-1b", "app").await?;
    let a = subnet("10.42.1.0/24", "us-east-1a", "app").await?;
    let db_subnet = subnet("10.42.3.0/24", "us-east-1a", "db").await?;
    let group = ec2
        .create_security_group()
        .group_name("db")
        .description("the database, made elsewhere")
        .vpc_id(&vpc)
        .tag_specifications(tags(&[("env", "lookups")], ResourceType::SecurityGroup))
        .send()
        .await?;
    let iam = aws_sdk_iam::Client::new(&h.account.config);
    let trust = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"lambda.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#;
    let role = iam.create_role().role_name("made-elsewhere").assume_role_policy_document(trust).send().await?;
    let ecr = aws_sdk_ecr::Client::new(&h.account.config);
    let repo = ecr.create_repository().repository_name("shared/base").send().await?;
    Ok(Outside {
        vpc,
        app_subnets: vec![a, b],
        db_subnet,
        db_group: group.group_id().unwrap_or_default().to_string(),
        role_arn: role.role.map(|r| r.arn).unwrap_or_default(),
        repository_uri: repo.repository().and_then(|r| r.repository_uri()).unwrap_or_default().to_string(),
    })
}

/// What exists in the account: VPCs, subnets, security groups, roles, repositories (ids or names, sorted).
async fn inventory(h: &Harness) -> anyhow::Result<[Vec<String>; 5]> {
    let ec2 = aws_sdk_ec2::Client::new(&h.account.config);
    let iam = aws_sdk_iam::Client::new(&h.account.config);
    let ecr = aws_sdk_ecr::Client::new(&h.account.config);
    let sorted = |mut v: Vec<String>| {
        v.sort();
        v
    };
    let vpcs = ec2.describe_vpcs().send().await?.vpcs().iter().filter_map(|v| v.vpc_id().map(String::from)).collect();
    let subnets = ec2.describe_subnets().send().await?.subnets().iter().filter_map(|s| s.subnet_id().map(String::from)).collect();
    let groups =
        ec2.describe_security_groups().send().await?.security_groups().iter().filter_map(|g| g.group_id().map(String::from)).collect();
    let roles = iam.list_roles().send().await?.roles().iter().map(|r| r.role_name().to_string()).collect();
    let repos =
        ecr.describe_repositories().send().await?.repositories().iter().filter_map(|r| r.repository_name().map(String::from)).collect();
    Ok([sorted(vpcs), sorted(subnets), sorted(groups), sorted(roles), sorted(repos)])
}

/// A pretend `provided.al2023` executable: the emulator stores and hashes it, never runs it.
fn binary(dir: &Path) -> anyhow::Result<Code> {
    let path = dir.join("bootstrap-bin");
    std::fs::write(&path, "#!/bin/sh\n# lookups\n")?;
    Ok(Code::binary(&path))
}

fn stack(code: &Code) -> Stack {
    let mut s = Stack::new(STACK);
    let me = s.lookup("me", CallerIdentity);
    let default_vpc = s.lookup("default-vpc", ec2::DefaultVpc);
    let vpc = s.lookup("vpc", ec2::FindVpc::tagged("env", "lookups"));
    // Lookups using a lookup: the subnets and the group are searched within the VPC found above.
    let app = s.lookup("app-subnets", ec2::FindSubnets::tagged("tier", "app").in_vpc(vpc.id()));
    let db = s.lookup("db-subnet", ec2::FindSubnet::tagged("tier", "db").in_vpc(vpc.id()).in_zone("us-east-1a"));
    let db_group = s.lookup("db-group", ec2::FindSecurityGroup::named("db").in_vpc(vpc.id()));
    let role = s.lookup("role", iam::FindRole::named("made-elsewhere"));
    let repo = s.lookup("repo", ecr::FindRepository::named("shared/base"));

    s.add("app-sg", SecurityGroup::new("lookups-app", vpc.id()).egress(Rule::tcp(5432).group(db_group.id())));
    s.add("probe-sg", SecurityGroup::new("lookups-probe", default_vpc.id()).egress(Rule::tcp(443).cidr("0.0.0.0/0")));
    s.add(
        "fn",
        Function::new("lookups-fn")
            .code(code.clone())
            .role(role.arn())
            .env("IMAGE", format!("{}:v1", repo.repository_url()))
            .env("ACCOUNT", me.account_id())
            .env("REGION", me.region()),
    );
    // The service's subnets: the app list (one reference, spliced) and one more subnet beside it.
    FargateTask::new("lookups-worker", vpc.id())
        .size(256, 512)
        .container(Container::new("app", format!("{}:v1", repo.repository_url())).memory_reservation(128))
        .service(1, app.subnets().into_iter().chain([db.id()]), false)
        .add(&mut s);
    s.output("account", me.account_id());
    s.output("partition", me.partition());
    s.output("caller_arn", me.arn());
    s.output("default_subnets", default_vpc.subnet_ids());
    s.output("default_zones", default_vpc.availability_zones());
    s.output("app_subnets", app.subnet_ids());
    s
}

#[tokio::test]
async fn lookups_wire_what_exists_into_a_stack_and_change_nothing() -> anyhow::Result<()> {
    let (h, _calls) = harness().await?;
    let outside = make_outside(&h).await?;
    let before = inventory(&h).await?;
    let code = binary(h.dir.path())?;
    let ec2 = aws_sdk_ec2::Client::new(&h.account.config);
    let default = ec2.describe_vpcs().filters(filter("is-default", "true")).send().await?;
    let default_vpc = default.vpcs().first().and_then(|v| v.vpc_id()).map(String::from);
    let default_vpc = default_vpc.ok_or_else(|| anyhow::anyhow!("moto made no default VPC in us-east-1"))?;
    let default_subnets =
        ec2.describe_subnets().filters(filter("vpc-id", &default_vpc)).filters(filter("default-for-az", "true")).send().await?;
    let mut default_subnets: Vec<(String, String)> = default_subnets
        .subnets()
        .iter()
        .map(|s| (s.availability_zone().unwrap_or_default().to_string(), s.subnet_id().unwrap_or_default().to_string()))
        .collect();
    default_subnets.sort();

    // The plan: lookups are no changes, and what uses them is planned with the real values.
    let plan = h.plan(&stack(&code)).await?;
    let text = plan.render(false);
    for lookup in ["me", "default-vpc", "vpc", "app-subnets", "db-subnet", "db-group", "role", "repo"] {
        assert!(plan.changes.iter().all(|c| c.address != lookup), "a lookup is not a change: {lookup}\n{text}");
    }
    let json = plan.to_json()?;
    assert!(json.contains(&outside.vpc) && json.contains(&outside.role_arn) && json.contains(&outside.app_subnets[0]), "{text}");

    let state = h.apply(&stack(&code)).await?;
    for lookup in ["me", "vpc", "role", "repo"] {
        assert!(!state.resources.contains_key(lookup), "a lookup is not in state: {lookup}");
    }

    // Independent reads: each resource uses what the lookups found.
    let group_vpc = |id: String| {
        let ec2 = ec2.clone();
        async move {
            let out = ec2.describe_security_groups().group_ids(id).send().await?;
            let g = out.security_groups().first().cloned().ok_or_else(|| anyhow::anyhow!("no group"))?;
            anyhow::Ok(g)
        }
    };
    let app_sg = group_vpc(h.id_of(&stack(&code), "app-sg").await?).await?;
    assert_eq!(app_sg.vpc_id(), Some(outside.vpc.as_str()));
    let to_db: Vec<&str> =
        app_sg.ip_permissions_egress().iter().flat_map(|p| p.user_id_group_pairs()).filter_map(|p| p.group_id()).collect();
    assert_eq!(to_db, [outside.db_group.as_str()]);
    let probe_sg = group_vpc(h.id_of(&stack(&code), "probe-sg").await?).await?;
    assert_eq!(probe_sg.vpc_id(), Some(default_vpc.as_str()));
    let worker_sg = group_vpc(h.id_of(&stack(&code), "lookups-worker/security-group").await?).await?;
    assert_eq!(worker_sg.vpc_id(), Some(outside.vpc.as_str()));

    let lambda = aws_sdk_lambda::Client::new(&h.account.config);
    let f = lambda.get_function().function_name("lookups-fn").send().await?;
    let c = f.configuration().ok_or_else(|| anyhow::anyhow!("no configuration"))?;
    assert_eq!(c.role(), Some(outside.role_arn.as_str()));
    let env = c.environment().and_then(|e| e.variables()).cloned().unwrap_or_default();
    assert_eq!(env.get("IMAGE"), Some(&format!("{}:v1", outside.repository_uri)));
    assert_eq!(env.get("ACCOUNT"), Some(&h.account.id));
    assert_eq!(env.get("REGION").map(String::as_str), Some("us-east-1"));

    let ecs = aws_sdk_ecs::Client::new(&h.account.config);
    let svc = ecs.describe_services().cluster("lookups-worker").services("lookups-worker").send().await?;
    let svc = svc.services().first().ok_or_else(|| anyhow::anyhow!("no service"))?;
    let net = svc.network_configuration().and_then(|n| n.awsvpc_configuration()).ok_or_else(|| anyhow::anyhow!("no awsvpc"))?;
    let mut want = vec![outside.app_subnets[0].clone(), outside.app_subnets[1].clone(), outside.db_subnet.clone()];
    want.sort();
    let mut got = net.subnets().to_vec();
    got.sort();
    assert_eq!(got, want, "the spliced app list and the db subnet");
    let td = ecs.describe_task_definition().task_definition("lookups-worker").send().await?;
    let image = td.task_definition().and_then(|t| t.container_definitions().first()).and_then(|c| c.image()).map(String::from);
    assert_eq!(image, Some(format!("{}:v1", outside.repository_uri)));

    // The caller and the default VPC, as the stack's outputs recorded them.
    assert_eq!(state.outputs["account"].value, h.account.id.as_str());
    assert_eq!(state.outputs["partition"].value, "aws");
    assert!(state.outputs["caller_arn"].value.as_str().is_some_and(|a| a.starts_with("arn:aws:") && a.contains(&h.account.id)));
    let ids: Vec<&str> = default_subnets.iter().map(|(_, id)| id.as_str()).collect();
    let zones: Vec<&str> = default_subnets.iter().map(|(z, _)| z.as_str()).collect();
    assert_eq!(state.outputs["default_subnets"].value, serde_json::json!(ids));
    assert_eq!(state.outputs["default_zones"].value, serde_json::json!(zones));
    assert_eq!(state.outputs["app_subnets"].value, serde_json::json!(outside.app_subnets), "by zone: a before b");

    // Read again on the next plan, and nothing to do.
    let again = h.plan(&stack(&code)).await?;
    assert!(!again.has_changes(), "expected no changes:\n{}", again.render(false));

    // The lookups made, changed and deleted nothing: what exists now is what existed plus the stack's own.
    let after = inventory(&h).await?;
    let [vpcs, subnets, groups, roles, repos] = &after;
    assert_eq!((vpcs, subnets, repos), (&before[0], &before[1], &before[4]), "no VPC, subnet or repository made or deleted");
    let new_groups: Vec<&String> = groups.iter().filter(|g| !before[2].contains(g)).collect();
    assert_eq!(new_groups.len(), 3, "the stack's 3 groups only: {new_groups:?}");
    assert!(before[2].iter().all(|g| groups.contains(g)));
    assert!(before[3].iter().all(|r| roles.contains(r)) && roles.len() == before[3].len() + 2, "the worker's 2 roles only");
    let vpc = ec2.describe_vpcs().vpc_ids(&outside.vpc).send().await?;
    let vpc_tags: Vec<(&str, &str)> =
        vpc.vpcs()[0].tags().iter().map(|t| (t.key().unwrap_or_default(), t.value().unwrap_or_default())).collect();
    assert_eq!(vpc_tags.len(), 2, "the VPC's tags untouched: {vpc_tags:?}");

    // Destroy: the stack's own go, what the lookups found stays.
    h.destroy(&stack(&code)).await?;
    let gone = inventory(&h).await?;
    assert_eq!(gone[..3], before[..3]);
    assert_eq!(gone[4], before[4]);
    assert!(gone[3].contains(&"made-elsewhere".to_string()));
    Ok(())
}

/// A lookup that finds nothing, or more than one thing, is a plan error naming it and saying what was
/// searched (and which ids matched); nothing is made.
#[tokio::test]
async fn a_lookup_finding_nothing_or_several_is_a_plan_error() -> anyhow::Result<()> {
    let (h, _calls) = harness().await?;
    let ec2 = aws_sdk_ec2::Client::new(&h.account.config);
    let mut twins = Vec::new();
    for cidr in ["10.50.0.0/16", "10.51.0.0/16"] {
        let out = ec2.create_vpc().cidr_block(cidr).tag_specifications(tags(&[("team", "twins")], ResourceType::Vpc)).send().await?;
        twins.push(out.vpc().and_then(|v| v.vpc_id()).unwrap_or_default().to_string());
    }
    twins.sort();
    let before = inventory(&h).await?;

    let err = |s: Stack| {
        let h = &h;
        async move { h.plan(&s).await.err().map(|e| format!("{e:#}")).unwrap_or_else(|| "no error".into()) }
    };

    let mut s = Stack::new(STACK);
    let none = s.lookup("prod-vpc", ec2::FindVpc::tagged("team", "nobody"));
    s.add("sg", SecurityGroup::new("uses-a-lookup", none.id()));
    let e = err(s).await;
    assert!(e.contains("prod-vpc") && e.contains("no VPC matches tags team=nobody"), "{e}");

    let mut s = Stack::new(STACK);
    let two = s.lookup("twin-vpc", ec2::FindVpc::tagged("team", "twins"));
    s.add("sg", SecurityGroup::new("uses-a-lookup", two.id()));
    let e = err(s).await;
    assert!(e.contains("twin-vpc") && e.contains(&format!("2 VPCs match tags team=twins ({}, {})", twins[0], twins[1])), "{e}");

    let mut s = Stack::new(STACK);
    let subnets = s.lookup("app-subnets", ec2::FindSubnets::tagged("tier", "app").in_vpc(Id::literal(twins[0].clone())));
    s.add("probe", SecurityGroup::new("x", Id::literal(twins[0].clone())).egress(Rule::tcp(443).cidr("0.0.0.0/0")));
    s.output("subnets", subnets.subnet_ids());
    let e = err(s).await;
    assert!(e.contains("app-subnets") && e.contains(&format!("no subnet matches tags tier=app; vpc {}", twins[0])), "{e}");

    let mut s = Stack::new(STACK);
    let role = s.lookup("deploy-role", iam::FindRole::named("nobody"));
    s.add("fn", Function::new("f").code(binary(h.dir.path())?).role(role.arn()));
    let e = err(s).await;
    assert!(e.contains("deploy-role") && e.contains("no IAM role matches name nobody"), "{e}");

    let mut s = Stack::new(STACK);
    let repo = s.lookup("images", ecr::FindRepository::named("nothing/here"));
    s.output("url", repo.repository_url());
    let e = err(s).await;
    assert!(e.contains("images") && e.contains("no ECR repository matches name nothing/here"), "{e}");

    let mut s = Stack::new(STACK);
    let group = s.lookup("db-group", ec2::FindSecurityGroup::named("db").in_vpc(Id::literal(twins[1].clone())));
    s.add("sg", SecurityGroup::new("app", Id::literal(twins[1].clone())).egress(Rule::tcp(5432).group(group.id())));
    let e = err(s).await;
    assert!(e.contains("db-group") && e.contains("no security group matches name db"), "{e}");

    // An apply with such a lookup stops before anything is made.
    let mut s = Stack::new(STACK);
    let none = s.lookup("prod-vpc", ec2::FindVpc::tagged("team", "nobody"));
    s.add("made-first", SecurityGroup::new("made-first", Id::literal(twins[0].clone())));
    s.add("sg", SecurityGroup::new("uses-a-lookup", none.id()));
    assert!(h.apply(&s).await.is_err());
    assert_eq!(inventory(&h).await?, before, "nothing made or deleted");
    Ok(())
}
