//! The GitHub OIDC provider and deploy roles against the emulator, checked with independent IAM reads.
#![cfg(all(feature = "iam", feature = "s3"))]

use crate::common::harness;
use ferroform_aws::components::{github_deploy_role, GithubDeploy};
use ferroform_aws::iam::{generated_name, OpenIdConnectProvider};
use ferroform_core::{Action, Error, Stack};
use serde_json::Value;

const STACK: &str = "ghdeploy";

fn stack(cfg: GithubDeploy) -> anyhow::Result<Stack> {
    let mut s = Stack::new(STACK);
    github_deploy_role(&mut s, cfg)?;
    Ok(s)
}

fn config() -> GithubDeploy {
    GithubDeploy::new("acme/orders", ferroform_core::Name::literal("acme-ferroform-state"))
        .allow(["lambda:UpdateFunctionCode"], ["arn:aws:lambda:*:*:function:orders-*"])
        .plan_allow(["lambda:GetFunction"], ["*"])
}

/// IAM returns documents URL-encoded (RFC 3986): decoded here by hand, independently of the library's parser.
fn url_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let Ok(b) = u8::from_str_radix(std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("zz"), 16) {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `"x"` or `["x"]` -> `["x"]`.
fn strings(v: &Value) -> Vec<String> {
    match v {
        Value::String(s) => vec![s.clone()],
        Value::Array(a) => a.iter().filter_map(|x| x.as_str().map(str::to_string)).collect(),
        _ => vec![],
    }
}

async fn trust(iam: &aws_sdk_iam::Client, role: &str) -> anyhow::Result<Value> {
    let out = iam.get_role().role_name(role).send().await?;
    let text = out.role().and_then(|r| r.assume_role_policy_document()).unwrap_or_default();
    let text = if text.trim_start().starts_with('{') { text.to_string() } else { url_decode(text) };
    Ok(serde_json::from_str(&text)?)
}

async fn inline(iam: &aws_sdk_iam::Client, role: &str) -> anyhow::Result<Value> {
    let out = iam.get_role_policy().role_name(role).policy_name("state-and-deploy").send().await?;
    let text = out.policy_document();
    let text = if text.trim_start().starts_with('{') { text.to_string() } else { url_decode(text) };
    Ok(serde_json::from_str(&text)?)
}

/// Every (action, resource) pair the document allows.
fn allowed(doc: &Value) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for st in doc["Statement"].as_array().into_iter().flatten() {
        assert_eq!(st["Effect"], "Allow");
        for a in strings(&st["Action"]) {
            for r in strings(&st["Resource"]) {
                out.push((a.clone(), r));
            }
        }
    }
    out
}

#[tokio::test]
async fn github_deploy_role_lifecycle() -> anyhow::Result<()> {
    let (h, calls) = harness().await?;
    let iam = aws_sdk_iam::Client::new(&h.account.config);
    h.apply(&stack(config())?).await?;

    // The provider: GitHub's issuer, our audience, tagged with its address.
    let providers = iam.list_open_id_connect_providers().send().await?;
    let arns: Vec<&str> = providers.open_id_connect_provider_list().iter().filter_map(|p| p.arn()).collect();
    let arn = format!("arn:aws:iam::{}:oidc-provider/token.actions.githubusercontent.com", h.account.id);
    assert_eq!(arns, [arn.as_str()]);
    let p = iam.get_open_id_connect_provider().open_id_connect_provider_arn(&arn).send().await?;
    assert_eq!(p.url(), Some("token.actions.githubusercontent.com"));
    assert_eq!(p.client_id_list(), ["sts.amazonaws.com"]);
    assert!(p.tags().iter().any(|t| t.key() == "ferroform:address" && t.value() == "github/oidc-provider"));

    // The deploy role: only pushes to main of acme/orders, with GitHub's audience, through that provider.
    let deploy = generated_name(STACK, "github/deploy-role");
    let t = trust(&iam, &deploy).await?;
    let st = &t["Statement"][0];
    assert_eq!(t["Statement"].as_array().map(Vec::len), Some(1));
    assert_eq!(strings(&st["Action"]), ["sts:AssumeRoleWithWebIdentity"]);
    assert_eq!(strings(&st["Principal"]["Federated"]), [arn.as_str()]);
    let cond = st["Condition"].as_object().cloned().unwrap_or_default();
    assert_eq!(cond.keys().collect::<Vec<_>>(), ["StringEquals"], "exact matches only, no StringLike wildcards");
    assert_eq!(strings(&cond["StringEquals"]["token.actions.githubusercontent.com:aud"]), ["sts.amazonaws.com"]);
    assert_eq!(strings(&cond["StringEquals"]["token.actions.githubusercontent.com:sub"]), ["repo:acme/orders:ref:refs/heads/main"]);
    let can = allowed(&inline(&iam, &deploy).await?);
    for action in ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"] {
        assert!(can.contains(&(action.into(), "arn:aws:s3:::acme-ferroform-state/*".into())), "{action}: {can:?}");
    }
    assert!(can.contains(&("s3:ListBucket".into(), "arn:aws:s3:::acme-ferroform-state".into())));
    assert!(can.contains(&("lambda:UpdateFunctionCode".into(), "arn:aws:lambda:*:*:function:orders-*".into())));

    // The plan role: pull requests, state read-only.
    let plan_role = generated_name(STACK, "github/plan-role");
    let t = trust(&iam, &plan_role).await?;
    let sub = &t["Statement"][0]["Condition"]["StringEquals"]["token.actions.githubusercontent.com:sub"];
    assert_eq!(strings(sub), ["repo:acme/orders:pull_request"]);
    let can = allowed(&inline(&iam, &plan_role).await?);
    assert!(can.contains(&("s3:GetObject".into(), "arn:aws:s3:::acme-ferroform-state/*".into())));
    assert!(!can.iter().any(|(a, _)| a == "s3:PutObject" || a == "s3:DeleteObject" || a.starts_with("lambda:Update")), "{can:?}");

    let plan = h.plan(&stack(config())?).await?;
    assert!(!plan.has_changes(), "{}", plan.render(false));

    // In place: deploys move to the `production` environment, the provider gets a tag. (Changing the
    // client ids can't be exercised here: moto 5.2.5 answers AddClientIDToOpenIDConnectProvider with a 500.)
    let v2 = || config().environment("production").tag("team", "platform");
    let plan = h.plan(&stack(v2())?).await?;
    for address in ["github/oidc-provider", "github/deploy-role", "github/plan-role"] {
        let c = plan.changes.iter().find(|c| c.address == address).map(|c| c.action);
        assert_eq!(c, Some(Action::Update), "{address}: {}", plan.render(false));
    }
    h.apply(&stack(v2())?).await?;
    let sub = &trust(&iam, &deploy).await?["Statement"][0]["Condition"]["StringEquals"]["token.actions.githubusercontent.com:sub"];
    assert_eq!(strings(sub), ["repo:acme/orders:environment:production"]);
    let p = iam.get_open_id_connect_provider().open_id_connect_provider_arn(&arn).send().await?;
    assert!(p.tags().iter().any(|t| t.key() == "team" && t.value() == "platform"));
    assert!(!h.plan(&stack(v2())?).await?.has_changes());

    h.destroy(&stack(v2())?).await?;
    assert!(iam.get_open_id_connect_provider().open_id_connect_provider_arn(&arn).send().await.is_err());
    assert!(iam.get_role().role_name(&deploy).send().await.is_err());
    assert!(iam.get_role().role_name(&plan_role).send().await.is_err());

    // Refused before any call: a non-https issuer, no client id, a wildcard repository.
    calls.reset();
    let mut bad = Stack::new(STACK);
    bad.add("p", OpenIdConnectProvider::new("http://token.actions.githubusercontent.com", Vec::<String>::new()));
    let err = h.plan(&bad).await.err().map(|e| e.to_string()).unwrap_or_default();
    assert!(err.contains("p") && err.contains("url") && err.contains("client_id_list"), "{err}");
    let refused = github_deploy_role(&mut Stack::new(STACK), GithubDeploy::new("acme/*", ferroform_core::Name::literal("b")));
    assert!(matches!(&refused, Err(Error::Validation(d)) if d[0].field.as_deref() == Some("repo")), "{:?}", refused.err());
    assert_eq!(calls.total(), 0);
    Ok(())
}

/// Thumbprints: unset is not compared (IAM fills them in); declared, they are set and then compared.
#[tokio::test]
async fn provider_thumbprints() -> anyhow::Result<()> {
    let (h, _) = harness().await?;
    let iam = aws_sdk_iam::Client::new(&h.account.config);
    let print = "6938fd4d98bab03faadb97b34396831e3780aea1";
    let mut s3 = Stack::new("thumbs");
    let p3 = || OpenIdConnectProvider::new("https://issuer.example.com/tenant", ["app-1"]);
    s3.add("p", p3());
    h.apply(&s3).await?;
    assert!(!h.plan(&s3).await?.has_changes(), "unset thumbprints are not compared");
    let mut s3b = Stack::new("thumbs");
    s3b.add("p", p3().thumbprints([print.to_uppercase()]));
    h.apply(&s3b).await?;
    let arn3 = format!("arn:aws:iam::{}:oidc-provider/issuer.example.com/tenant", h.account.id);
    let got = iam.get_open_id_connect_provider().open_id_connect_provider_arn(&arn3).send().await?;
    assert_eq!(got.thumbprint_list().iter().map(|t| t.to_lowercase()).collect::<Vec<_>>(), [print]);
    assert!(!h.plan(&s3b).await?.has_changes(), "declared in upper case, compared as IAM keeps them");
    h.destroy(&s3b).await?;
    assert!(iam.get_open_id_connect_provider().open_id_connect_provider_arn(&arn3).send().await.is_err());
    Ok(())
}
