//! Taking over what Terraform manages: `import --from-terraform PATH` reads a Terraform state (format version 4,
//! what Terraform 1.x and OpenTofu write) and, for every resource of the stack, finds the Terraform resource it
//! is: the same type (ferroform's type names are Terraform's) and the same identity (the type's
//! `TERRAFORM_IDENTITY`: a name, a CIDR block, a route key...). What identity cannot settle is settled by a
//! mapping file, which the first run writes as a proposal with its reasons. Nothing is written until every
//! resource of the stack is matched or explicitly left to be created; then only ferroform's state is written
//! (under the lock), never the cloud.

use crate::error::{Error, Result};
use crate::graph::Config;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};

/// One resource instance of a Terraform state.
#[derive(Debug, Clone, PartialEq)]
pub struct TfResource {
    /// `aws_vpc.main`, `module.net.aws_subnet.private[0]`, `aws_route.r["a"]`.
    pub address: String,
    pub type_name: String,
    pub attributes: Value,
}

/// The managed resources of a Terraform state (data sources are not Terraform's to hand over).
pub fn parse_state(bytes: &[u8], location: &str) -> Result<Vec<TfResource>> {
    let bad = |why: String| Error::state(location, why);
    let doc: Value = serde_json::from_slice(bytes).map_err(|e| bad(format!("not a Terraform state (JSON: {e}); a truncated file?")))?;
    match doc.get("version").and_then(Value::as_u64) {
        Some(4) => {}
        Some(v) => return Err(bad(format!("Terraform state format version {v}; only version 4 (Terraform 1.x, OpenTofu) is read"))),
        None => return Err(bad("not a Terraform state: no `version`".into())),
    }
    let resources = doc.get("resources").and_then(Value::as_array).ok_or_else(|| bad("not a Terraform state: no `resources`".into()))?;
    let mut out = Vec::new();
    for r in resources {
        if r.get("mode").and_then(Value::as_str) != Some("managed") {
            continue;
        }
        let (Some(type_name), Some(name)) = (r.get("type").and_then(Value::as_str), r.get("name").and_then(Value::as_str)) else {
            return Err(bad("a resource without `type` or `name`".into()));
        };
        let module = r.get("module").and_then(Value::as_str).map(|m| format!("{m}.")).unwrap_or_default();
        for i in r.get("instances").and_then(Value::as_array).into_iter().flatten() {
            let index = match i.get("index_key") {
                Some(Value::Number(n)) => format!("[{n}]"),
                Some(Value::String(s)) => format!("[{s:?}]"),
                _ => String::new(),
            };
            let attributes = i.get("attributes").cloned().unwrap_or(Value::Null);
            out.push(TfResource { address: format!("{module}{type_name}.{name}{index}"), type_name: type_name.to_string(), attributes });
        }
    }
    Ok(out)
}

/// Refuses a Terraform state of another account or region than `me` (the credentials, as the account guard
/// found them): each resource's own `arn` says where Terraform made it. IAM's ARNs name no region and some
/// (API Gateway's) no account: those say nothing about it. Without this, a state of another account would
/// fail only at the first read, or worse, match same-named objects of this one.
pub fn check_place(tf: &[TfResource], me: &crate::Identity, location: &str) -> Result<()> {
    let mut problems = Vec::new();
    for r in tf {
        let Some(arn) = r.attributes.get("arn").and_then(Value::as_str) else { continue };
        let parts: Vec<&str> = arn.splitn(6, ':').collect();
        let [_, _, _, region, account, _] = parts.as_slice() else { continue };
        if account.len() == 12 && account.bytes().all(|b| b.is_ascii_digit()) && *account != me.account {
            problems.push(format!("{} is in account {account}", r.address));
        } else if !region.is_empty() && *region != me.region {
            problems.push(format!("{} is in {region}", r.address));
        }
        if problems.len() == 3 {
            break;
        }
    }
    match problems.is_empty() {
        true => Ok(()),
        false => Err(Error::WrongAccount(format!(
            "the Terraform state at {location} is not of {me} ({}{}); run with the credentials and region Terraform deployed with. Nothing was written",
            problems.join(", "),
            if problems.len() == 3 { ", ..." } else { "" }
        ))),
    }
}

/// What the user decided in the mapping file: a Terraform address for a stack address, or "create it".
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Mapping {
    pub to_terraform: BTreeMap<String, String>,
    pub create: BTreeSet<String>,
}

impl Mapping {
    /// `terraform_address = "ferroform/address"` and `create = "ferroform/address"` lines; `#` comments.
    pub fn parse(text: &str, location: &str) -> Result<Mapping> {
        let mut m = Mapping::default();
        for (n, line) in text.lines().enumerate() {
            let line = line.split(" #").next().unwrap_or("").trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let bad = || Error::Usage(format!("{location}:{}: expected `terraform_address = \"ferroform/address\"`, got `{line}`", n + 1));
            let (left, right) = line.split_once('=').ok_or_else(bad)?;
            let right = right.trim().strip_prefix('"').and_then(|r| r.strip_suffix('"')).ok_or_else(bad)?.to_string();
            match left.trim() {
                "create" => {
                    m.create.insert(right);
                }
                tf => {
                    m.to_terraform.insert(right, tf.to_string());
                }
            }
        }
        Ok(m)
    }
}

/// How each stack resource was settled, and what stays Terraform's.
#[derive(Debug, Clone, Default)]
pub struct Matching {
    /// Stack address -> (Terraform address, the cloud id, why).
    pub matched: BTreeMap<String, (String, String, String)>,
    /// Stack address -> why it is not settled (no candidate, or several: listed).
    pub unresolved: BTreeMap<String, String>,
    /// Left to be created, as the mapping says.
    pub create: BTreeSet<String>,
    /// Terraform resources folded into a matched one (`aws_iam_role_policy.fn` -> `role`).
    pub folded: BTreeMap<String, String>,
    /// Terraform resources nothing in the stack corresponds to.
    pub still_terraform: Vec<String>,
}

impl Matching {
    pub fn settled(&self) -> bool {
        self.unresolved.is_empty()
    }

    /// The mapping file proposing every decision, with the reasons, for the user to check.
    pub fn proposal(&self) -> String {
        let mut out = String::from(
            "# ferroform import --from-terraform: what each stack resource takes over, with the reasons.\n\
             # Check every line, settle the `??` ones (a Terraform address, or `create = \"ADDRESS\"` to make it anew),\n\
             # then run again with --map THIS_FILE.\n",
        );
        for (ff, (tf, _, why)) in &self.matched {
            out.push_str(&format!("{tf} = \"{ff}\"  # {why}\n"));
        }
        for ff in &self.create {
            out.push_str(&format!("create = \"{ff}\"\n"));
        }
        for (ff, why) in &self.unresolved {
            out.push_str(&format!("# ?? = \"{ff}\"  # {why}\n"));
        }
        out
    }
}

/// [`settle`] for a stack and the bytes of a Terraform state: no calls, nothing written (what `import
/// --from-terraform` decides before it reads anything).
pub fn settle_stack(stack: &crate::Stack, terraform_state: &[u8], location: &str, mapping: &Mapping) -> Result<Matching> {
    let config = crate::graph::build(stack)?;
    settle(&config, &parse_state(terraform_state, location)?, mapping, location)
}

/// Settles every stack resource against the Terraform resources (pure: no calls).
pub(crate) fn settle(config: &Config, tf: &[TfResource], mapping: &Mapping, location: &str) -> Result<Matching> {
    let by_address: BTreeMap<&str, &TfResource> = tf.iter().map(|r| (r.address.as_str(), r)).collect();
    let mut problems = Vec::new();
    for (ff, tfa) in &mapping.to_terraform {
        if !config.nodes.contains_key(ff) {
            problems.push(format!("the mapping names `{ff}`, which is not in the stack"));
        }
        if !by_address.contains_key(tfa.as_str()) {
            problems.push(format!("the mapping names `{tfa}`, which is not in the Terraform state at {location}"));
        }
    }
    for ff in &mapping.create {
        if !config.nodes.contains_key(ff) {
            problems.push(format!("the mapping names `{ff}`, which is not in the stack"));
        }
    }
    if !problems.is_empty() {
        return Err(Error::Usage(problems.join("; ")));
    }

    let mut m = Matching::default();
    let mut taken: BTreeMap<String, String> = BTreeMap::new();
    for address in &config.order {
        let node = &config.nodes[address];
        let kind = &node.kind;
        if mapping.create.contains(address) {
            m.create.insert(address.clone());
            continue;
        }
        let pick = if let Some(tfa) = mapping.to_terraform.get(address) {
            let r = by_address[tfa.as_str()];
            if r.type_name != kind.type_name() {
                return Err(Error::Usage(format!(
                    "the mapping gives `{address}` ({}) the Terraform {} `{tfa}`",
                    kind.type_name(),
                    r.type_name
                )));
            }
            Ok((r, "as the mapping file says".to_string()))
        } else {
            let same_type: Vec<&TfResource> = tf.iter().filter(|r| r.type_name == kind.type_name()).collect();
            let pairs = kind.terraform_identity();
            let known: Vec<(&str, &str, &Value)> = pairs
                .iter()
                .filter_map(|(ours, theirs)| {
                    lookup(&node.inputs, ours).filter(|v| !crate::reference::is_unknown(v)).map(|v| (*ours, *theirs, v))
                })
                .collect();
            // Both sides in the type's one form (see `Resource::terraform_identity_form`).
            let form = |path: &str, v: &Value| kind.terraform_identity_form(path, v);
            let hits: Vec<&TfResource> = if known.is_empty() {
                Vec::new()
            } else {
                same_type
                    .iter()
                    .copied()
                    .filter(|r| {
                        known.iter().all(|(ours, theirs, v)| lookup(&r.attributes, theirs).map(|t| form(ours, t)) == Some(form(ours, v)))
                    })
                    .collect()
            };
            let said = known.iter().map(|(ours, _, v)| format!("{ours} {}", show(v))).collect::<Vec<_>>().join(", ");
            match hits.as_slice() {
                [one] => Ok((*one, format!("same {said}"))),
                [] if known.is_empty()
                    && same_type.len() == 1
                    && config.nodes.values().filter(|n| n.kind.type_name() == kind.type_name()).count() == 1 =>
                {
                    Ok((same_type[0], format!("the only {} on both sides", kind.type_name())))
                }
                [] if pairs.is_empty() => Err(format!(
                    "ferroform does not match {} by identity (the mapping file says which); candidates: {}",
                    kind.type_name(),
                    list(&same_type)
                )),
                [] if known.is_empty() => Err(format!(
                    "its identity ({}) is not known before apply; candidates: {}",
                    pairs.iter().map(|(o, _)| *o).collect::<Vec<_>>().join(", "),
                    list(&same_type)
                )),
                [] => {
                    Err(format!("no Terraform {} has {said} (it will be created if you write `create = \"{address}\"`)", kind.type_name()))
                }
                many => Err(format!("several have {said}: {}", list(many))),
            }
        };
        match pick {
            Ok((r, why)) => {
                if let Some(other) = taken.insert(r.address.clone(), address.clone()) {
                    return Err(Error::Usage(format!("`{}` would be taken over by both `{other}` and `{address}`", r.address)));
                }
                match kind.terraform_id(&r.attributes) {
                    Some(id) => {
                        m.matched.insert(address.clone(), (r.address.clone(), id, why));
                    }
                    None => {
                        m.unresolved.insert(address.clone(), format!("`{}` has no id in the Terraform state", r.address));
                    }
                }
            }
            Err(why) => {
                m.unresolved.insert(address.clone(), why);
            }
        }
    }

    // Sub-resources Terraform keeps apart fold into the resource that holds them here.
    for r in tf {
        if taken.contains_key(&r.address) {
            continue;
        }
        let parent = config.nodes.values().find_map(|node| {
            let (tf_parent, _, _) = m.matched.get(&node.address)?;
            let parent_attrs = &by_address.get(tf_parent.as_str())?.attributes;
            node.kind.terraform_folds().iter().find_map(|(child_type, child_attr, parent_attr)| {
                (*child_type == r.type_name
                    && lookup(&r.attributes, child_attr).is_some()
                    && lookup(&r.attributes, child_attr) == lookup(parent_attrs, parent_attr))
                .then(|| node.address.clone())
            })
        });
        match parent {
            Some(p) => {
                m.folded.insert(r.address.clone(), p);
            }
            None => m.still_terraform.push(r.address.clone()),
        }
    }
    Ok(m)
}

/// The value at a dotted path (`tags.Name`), in inputs or in Terraform attributes: what identity pairs name.
pub fn lookup<'a>(v: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.').try_fold(v, |v, k| v.get(k)).filter(|v| !v.is_null())
}

fn show(v: &Value) -> String {
    match v {
        Value::String(s) => format!("`{s}`"),
        other => format!("`{other}`"),
    }
}

fn list(rs: &[&TfResource]) -> String {
    if rs.is_empty() {
        return "none".into();
    }
    rs.iter().map(|r| r.address.as_str()).collect::<Vec<_>>().join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn state(arns: &[&str]) -> Vec<TfResource> {
        arns.iter()
            .enumerate()
            .map(|(i, arn)| TfResource { address: format!("aws_x.r{i}"), type_name: "aws_x".into(), attributes: json!({"arn": arn}) })
            .collect()
    }

    #[test]
    fn a_state_of_another_account_or_region_is_refused() {
        let me = crate::Identity { account: "111111111111".into(), region: "us-east-1".into(), partition: "aws".into() };
        let here = [
            "arn:aws:iam::111111111111:role/r",
            "arn:aws:apigateway:us-east-1::/apis/a",
            "arn:aws:logs:us-east-1:111111111111:log-group:/g",
        ];
        assert!(check_place(&state(&here), &me, "t").is_ok());
        let err = check_place(&state(&["arn:aws:iam::222222222222:role/r"]), &me, "t.tfstate").expect_err("account").to_string();
        assert!(err.contains("t.tfstate") && err.contains("aws_x.r0 is in account 222222222222"), "{err}");
        let err = check_place(&state(&["arn:aws:dynamodb:eu-west-1:111111111111:table/t"]), &me, "t").expect_err("region").to_string();
        assert!(err.contains("aws_x.r0 is in eu-west-1"), "{err}");
    }
}
