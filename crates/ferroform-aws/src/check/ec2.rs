//! EC2: security groups open to the internet.

use super::{typed, Hit, Rule, Severity};
use crate::ec2::SecurityGroup;
use ferroform_core::Resource;

pub(super) static RULES: &[Rule] = &[Rule {
    id: "FF-EC2-001",
    severity: Severity::High,
    resource_type: SecurityGroup::TYPE,
    title: "A security group lets the whole internet in on a port other than 80/443",
    why: "SSH, databases, admin and debug ports open to 0.0.0.0/0 or ::/0 are scanned within minutes of \
          existing; only a web front door belongs there.",
    fix: "Allow the port from a security group (`Rule::tcp(5432).group(app_sg.id())`) or a known range, or \
          reach the host through SSM Session Manager instead of SSH.",
    check: |d, _| {
        let Some(sg) = typed::<SecurityGroup>(d) else { return Vec::new() };
        let mut hits = Vec::new();
        for (i, rule) in sg.ingress.iter().enumerate() {
            let world: Vec<&str> = rule.cidr_blocks.iter().map(String::as_str).filter(|c| *c == "0.0.0.0/0" || *c == "::/0").collect();
            if world.is_empty() {
                continue;
            }
            let protocol = rule.protocol.to_ascii_lowercase();
            // ICMP's "ports" are types and codes: ping from anywhere is not this rule's concern.
            if ["icmp", "icmpv6", "1", "58"].contains(&protocol.as_str()) {
                continue;
            }
            let all = protocol == "-1" || protocol == "all";
            let web_only = !all && rule.from_port == rule.to_port && (rule.from_port == 80 || rule.from_port == 443);
            if !web_only {
                let ports = if all {
                    "every protocol and port".to_string()
                } else if rule.from_port == rule.to_port {
                    format!("{protocol} {}", rule.from_port)
                } else {
                    format!("{protocol} {}-{}", rule.from_port, rule.to_port)
                };
                hits.push(Hit::new(format!("ingress[{i}].cidr_blocks"), format!("{} may reach {ports}", world.join(" and "))));
            }
        }
        hits
    },
}];

#[cfg(test)]
mod tests {
    use super::super::testing::{fired, from_json, stack};
    use crate::ec2::SecurityGroup;
    use serde_json::json;

    fn sg(ingress: serde_json::Value) -> SecurityGroup {
        from_json(json!({"name": "sg", "description": "d", "vpc_id": "vpc-1", "ingress": ingress}))
    }

    #[test]
    fn ff_ec2_001_open_to_the_world() {
        let mut s = stack();
        s.add("ssh", sg(json!([{"protocol": "tcp", "from_port": 22, "to_port": 22, "cidr_blocks": ["0.0.0.0/0"]}])));
        s.add("all", sg(json!([{"protocol": "-1", "from_port": 0, "to_port": 0, "cidr_blocks": ["::/0"]}])));
        s.add("range", sg(json!([{"protocol": "tcp", "from_port": 80, "to_port": 443, "cidr_blocks": ["0.0.0.0/0"]}])));
        s.add(
            "web",
            sg(json!([{"protocol": "tcp", "from_port": 443, "to_port": 443, "cidr_blocks": ["0.0.0.0/0", "::/0"]},
                      {"protocol": "tcp", "from_port": 80, "to_port": 80, "cidr_blocks": ["0.0.0.0/0"]}])),
        );
        s.add("internal", sg(json!([{"protocol": "tcp", "from_port": 5432, "to_port": 5432, "cidr_blocks": ["10.0.0.0/16"]}])));
        s.add("group", sg(json!([{"protocol": "tcp", "from_port": 5432, "to_port": 5432, "source_security_group_id": "sg-1"}])));
        let fired = fired(&s, "FF-EC2-001");
        assert_eq!(fired.iter().map(|(a, _)| a.as_str()).collect::<Vec<_>>(), ["all", "range", "ssh"]);
        assert_eq!(fired[2].1, "ingress[0].cidr_blocks");
    }
}
