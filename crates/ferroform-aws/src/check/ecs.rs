//! ECS: where Fargate tasks run and what their containers carry.

use super::secrets::secret_kind;
use super::{reference_address, typed, Context, Hit, Rule, Severity};
use crate::ecs::{Service, TaskDefinition};
use ferroform_core::Resource;

pub(super) static RULES: &[Rule] = &[
    Rule {
        id: "FF-ECS-001",
        severity: Severity::Medium,
        resource_type: Service::TYPE,
        title: "A Fargate service gives its tasks a public IP in private subnets",
        why: "A private subnet has no route to an internet gateway: the public IP reaches nothing and only says \
              the tasks were meant to be exposed. Moved to a public subnet, the same setting puts every task on \
              the internet.",
        fix: "`Network::public_ip(false)` for private subnets (pull images through a NAT gateway or VPC endpoints).",
        check: |d, cx| {
            let Some(service) = typed::<Service>(d) else { return Vec::new() };
            if !service.network.assign_public_ip {
                return Vec::new();
            }
            let private: Vec<String> = service
                .network
                .subnets
                .iter()
                .filter(|s| subnet_is_private(cx, s) == Some(true))
                .filter_map(|s| reference_address(s).map(str::to_string))
                .collect();
            if private.is_empty() {
                return Vec::new();
            }
            vec![Hit::new("network.assign_public_ip", format!("true, in private subnet(s) {}", private.join(", ")))]
        },
    },
    Rule {
        id: "FF-ECS-002",
        severity: Severity::High,
        resource_type: TaskDefinition::TYPE,
        title: "A container's environment holds what looks like a secret",
        why: "Task definition environments are readable by anyone who may describe the task definition, and kept \
              in every revision forever.",
        fix: "Put it in Secrets Manager or SSM and use the container's `secrets` (ECS injects it at start).",
        check: |d, _| {
            let Some(td) = typed::<TaskDefinition>(d) else { return Vec::new() };
            let mut hits = Vec::new();
            for (i, c) in td.containers.iter().enumerate() {
                for (k, v) in &c.environment {
                    if let Some(kind) = secret_kind(k, v) {
                        hits.push(Hit::new(format!("containers[{i}].environment.{k}"), format!("looks like {kind} (value not shown)")));
                    }
                }
            }
            hits
        },
    },
];

/// `Some(true)` when the subnet (a reference to a subnet of the stack) has no route table of the stack
/// routing to an internet gateway; `None` when the stack does not say (a literal subnet id).
fn subnet_is_private(cx: &Context, subnet: &str) -> Option<bool> {
    let d = cx.referenced(subnet).filter(|d| d.type_name == "aws_subnet")?;
    let routes_to_igw = cx.stack.resources().iter().filter(|r| r.type_name == "aws_route_table").any(|rt| {
        let holds = rt.inputs["subnet_ids"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|id| id.as_str().and_then(reference_address) == Some(d.address.as_str()));
        let to_igw = rt.inputs["routes"].as_array().into_iter().flatten().any(|route| {
            route["gateway_id"]
                .as_str()
                .is_some_and(|g| g.starts_with("igw-") || cx.referenced(g).is_some_and(|t| t.type_name == "aws_internet_gateway"))
        });
        holds && to_igw
    });
    Some(!routes_to_igw)
}

#[cfg(test)]
mod tests {
    use super::super::testing::{fired, from_json, stack};
    use crate::ec2::{InternetGateway, RouteTable, Subnet};
    use crate::ecs::{Service, TaskDefinition};
    use serde_json::json;

    fn reference(address: &str, field: &str) -> String {
        format!("\u{E000}${{ref:{address}.{field}}}")
    }

    #[test]
    fn ff_ecs_001_public_ip_in_private_subnets() {
        let mut s = stack();
        s.add("private", from_json::<Subnet>(json!({"vpc_id": "vpc-1", "cidr_block": "10.0.1.0/24"})));
        s.add("public", from_json::<Subnet>(json!({"vpc_id": "vpc-1", "cidr_block": "10.0.0.0/24", "map_public_ip_on_launch": true})));
        s.add("igw", from_json::<InternetGateway>(json!({"vpc_id": "vpc-1"})));
        s.add(
            "public-rt",
            from_json::<RouteTable>(json!({"vpc_id": "vpc-1", "subnet_ids": [reference("public", "id")],
                "routes": [{"destination_cidr": "0.0.0.0/0", "gateway_id": reference("igw", "id")}]})),
        );
        let service = |subnet: &str, public_ip: bool| {
            from_json::<Service>(json!({"name": "w", "cluster": "c", "task_definition": "td", "desired_count": 1,
                "network": {"subnets": [reference(subnet, "id")], "security_groups": ["sg-1"], "assign_public_ip": public_ip}}))
        };
        s.add("bad", service("private", true));
        s.add("in-public", service("public", true));
        s.add("ok", service("private", false));
        assert_eq!(fired(&s, "FF-ECS-001"), [("bad".into(), "network.assign_public_ip".into())]);
    }

    #[test]
    fn ff_ecs_002_secrets_in_container_environment() {
        let td = |env: serde_json::Value| {
            from_json::<TaskDefinition>(json!({"family": "w", "cpu": 256, "memory": 512,
                "containers": [{"name": "app", "image": "app:1", "environment": env}]}))
        };
        let mut s = stack();
        s.add("bad", td(json!({"STRIPE_API_KEY": "sk_live_0123456789abcdef"})));
        s.add("ok", td(json!({"TABLE_NAME": "orders"})));
        assert_eq!(fired(&s, "FF-ECS-002"), [("bad".into(), "containers[0].environment.STRIPE_API_KEY".into())]);
    }
}
