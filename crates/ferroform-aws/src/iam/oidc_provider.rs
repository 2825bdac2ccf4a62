//! IAM OpenID Connect identity provider (GitHub Actions, GitLab, EKS clusters...). APIs:
//! CreateOpenIDConnectProvider, GetOpenIDConnectProvider, UpdateOpenIDConnectProviderThumbprint,
//! AddClientIDToOpenIDConnectProvider, RemoveClientIDFromOpenIDConnectProvider, TagOpenIDConnectProvider,
//! UntagOpenIDConnectProvider, DeleteOpenIDConnectProvider.
//!
//! An account holds one provider per URL, and its ARN follows from the URL
//! (`arn:aws:iam::ACCOUNT:oidc-provider/HOST/PATH`). A read costs one call.
//!
//! Every optional field is compared whether the code sets it or not: removed client ids and tags are
//! removed. Left to AWS when unset: `thumbprint_list` (IAM works the thumbprints out).

use super::{check_tags, iam_tags, sdk_tags};
use crate::error::{absent_if_not_found, create_once, sdk, Once, CREATE_ONCE};
use crate::tags::{merge_defaults, without_aws_managed, Tags};
use crate::Aws;
use async_trait::async_trait;
use ferroform_core::{is_unknown_str, CallMeta, FieldError, Observed, ProviderError, Resource, TAG_ADDRESS};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OpenIdConnectProvider {
    /// `https://HOST[/PATH]`, the issuer of the tokens. Changing it forces a new provider.
    pub url: String,
    /// The audiences (`aud`) tokens may carry (`sts.amazonaws.com` for GitHub Actions).
    pub client_id_list: BTreeSet<String>,
    /// SHA-1 thumbprints (40 hex digits) of the issuer's certificate chain. Unset: IAM works them out (and,
    /// for well-known issuers such as GitHub, trusts its own CA library instead), and they are not compared.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thumbprint_list: Option<BTreeSet<String>>,
    #[serde(default)]
    pub tags: Tags,
}

ferroform_core::outputs! {
    pub struct OpenIdConnectProviderOutputs => OpenIdConnectProviderRefs {
        pub arn: String as ferroform_core::Arn<OpenIdConnectProvider>,
        /// The URL without its scheme (`token.actions.githubusercontent.com`): the prefix of the provider's
        /// condition keys in trust policies (`token.actions.githubusercontent.com:sub`).
        pub host: String,
    }
}

/// GitHub Actions' token issuer.
pub const GITHUB_ACTIONS_URL: &str = "https://token.actions.githubusercontent.com";

impl OpenIdConnectProvider {
    pub fn new<C: Into<String>>(url: impl Into<String>, client_ids: impl IntoIterator<Item = C>) -> Self {
        Self { url: url.into(), client_id_list: client_ids.into_iter().map(Into::into).collect(), thumbprint_list: None, tags: Tags::new() }
    }

    /// GitHub Actions' issuer with the audience `aws-actions/configure-aws-credentials` asks for.
    pub fn github_actions() -> Self {
        Self::new(GITHUB_ACTIONS_URL, ["sts.amazonaws.com"])
    }

    pub fn thumbprints<T: Into<String>>(mut self, thumbprints: impl IntoIterator<Item = T>) -> Self {
        self.thumbprint_list = Some(thumbprints.into_iter().map(|t| t.into().to_ascii_lowercase()).collect());
        self
    }
    pub fn tag(mut self, k: impl Into<String>, v: impl Into<String>) -> Self {
        self.tags.insert(k.into(), v.into());
        self
    }
}

/// `https://HOST/PATH` -> `HOST/PATH`: what IAM stores, returns and builds the ARN from.
fn host_of(url: &str) -> &str {
    url.strip_prefix("https://").unwrap_or(url).trim_end_matches('/')
}

fn outputs(arn: &str, url: &str) -> OpenIdConnectProviderOutputs {
    OpenIdConnectProviderOutputs { arn: arn.to_string(), host: host_of(url).to_string() }
}

#[async_trait]
impl Resource for OpenIdConnectProvider {
    const TYPE: &'static str = "aws_iam_openid_connect_provider";
    const REPLACE_FIELDS: &'static [&'static str] = &["url"];
    /// None: the URL is kept here as `https://HOST` and by Terraform as written, so equality would miss; an
    /// account has one provider per issuer and usually one or two, settled as the only one of its type on
    /// both sides or by the mapping file. The id is the provider's ARN on both sides.
    const TERRAFORM_IDENTITY: &'static [(&'static str, &'static str)] = &[];
    /// Unset thumbprints are IAM's to work out; they can't be reverted to "absent".
    const COMPUTED: &'static [&'static str] = &["thumbprint_list"];
    type Outputs = OpenIdConnectProviderOutputs;
    type Refs = OpenIdConnectProviderRefs;
    type Context = Aws;

    fn validate(&self) -> Vec<FieldError> {
        let mut e = Vec::new();
        if !is_unknown_str(&self.url) {
            let host = self.url.strip_prefix("https://").map(|h| h.split('/').next().unwrap_or_default());
            match host {
                None => e.push(FieldError::new("url", format!("`{}` must be an https:// URL", self.url))),
                Some("") => e.push(FieldError::new("url", format!("`{}` names no host", self.url))),
                Some(_) if self.url.contains(['?', '#']) => {
                    e.push(FieldError::new("url", format!("`{}`: an issuer URL has no query or fragment", self.url)))
                }
                Some(_) if self.url.len() > 255 => e.push(FieldError::new("url", "is longer than the 255 characters IAM allows")),
                Some(_) => {}
            }
        }
        if self.client_id_list.is_empty() {
            e.push(FieldError::new("client_id_list", "needs at least one client id (the audience, `sts.amazonaws.com` for GitHub)"));
        }
        if self.client_id_list.len() > 100 {
            e.push(FieldError::new("client_id_list", "IAM allows at most 100 client ids per provider"));
        }
        for id in self.client_id_list.iter().filter(|id| !is_unknown_str(id)) {
            if id.is_empty() || id.chars().count() > 255 {
                e.push(FieldError::new("client_id_list", format!("`{id}` must be 1 to 255 characters long")));
            }
        }
        if let Some(prints) = &self.thumbprint_list {
            if prints.len() > 5 {
                e.push(FieldError::new("thumbprint_list", "IAM allows at most 5 thumbprints"));
            }
            for t in prints.iter().filter(|t| !is_unknown_str(t)) {
                if t.len() != 40 || !t.chars().all(|c| c.is_ascii_hexdigit()) {
                    e.push(FieldError::new("thumbprint_list", format!("`{t}` is not a SHA-1 thumbprint (40 hex digits)")));
                }
            }
        }
        check_tags(&mut e, &self.tags);
        e
    }

    fn normalize(&mut self) {
        // IAM keeps the URL without scheme or trailing slash; thumbprints are case-insensitive hex.
        if !is_unknown_str(&self.url) {
            self.url = format!("https://{}", host_of(&self.url));
        }
        if let Some(prints) = &mut self.thumbprint_list {
            *prints = prints.iter().map(|t| t.to_ascii_lowercase()).collect();
        }
    }

    fn set_default_tags(&mut self, tags: &Tags) {
        merge_defaults(&mut self.tags, tags);
    }

    fn delete_before_create(&self) -> bool {
        // One provider per URL in an account.
        true
    }

    async fn create(aws: &Aws, desired: &Self, meta: &CallMeta) -> Result<(String, OpenIdConnectProviderOutputs), ProviderError> {
        let iam = aws.iam();
        let tags = iam_tags(&desired.tags)?;
        let created = create_once(
            CREATE_ONCE,
            |_| false,
            || {
                iam.create_open_id_connect_provider()
                    .url(&desired.url)
                    .set_client_id_list(Some(desired.client_id_list.iter().cloned().collect()))
                    .set_thumbprint_list(desired.thumbprint_list.as_ref().map(|t| t.iter().cloned().collect()))
                    .set_tags(tags.clone())
                    .customize()
                    .config_override(Once)
                    .send()
            },
            || Self::find_by_tags(aws, desired, meta),
        )
        .await;
        let made = match created {
            Ok(made) => made,
            Err(e) if e.code.as_deref() == Some("EntityAlreadyExists") => {
                return Err(e.hint(format!(
                    "this account already has a provider for {}: import it (`import ADDRESS arn:aws:iam::ACCOUNT:oidc-provider/{}`) or use its ARN instead of declaring one",
                    desired.url,
                    host_of(&desired.url)
                )))
            }
            Err(e) => return Err(e),
        };
        let arn = made.id("CreateOpenIDConnectProvider", |out| out.open_id_connect_provider_arn())?;
        Ok((arn.clone(), outputs(&arn, &desired.url)))
    }

    async fn read(aws: &Aws, id: &str, _prior: &Self) -> Result<Option<Observed<Self>>, ProviderError> {
        let got = aws.iam().get_open_id_connect_provider().open_id_connect_provider_arn(id).send().await.map_err(sdk);
        let Some(out) = absent_if_not_found(got)? else { return Ok(None) };
        let url = format!("https://{}", host_of(out.url().unwrap_or_default()));
        Ok(Some(Observed {
            inputs: OpenIdConnectProvider {
                url: url.clone(),
                client_id_list: out.client_id_list().iter().cloned().collect(),
                thumbprint_list: Some(out.thumbprint_list().iter().map(|t| t.to_ascii_lowercase()).collect()),
                tags: without_aws_managed(sdk_tags(out.tags())),
            },
            outputs: outputs(id, &url),
        }))
    }

    async fn update(
        aws: &Aws,
        id: &str,
        prior: &Self,
        desired: &Self,
        changed: &[String],
        _meta: &CallMeta,
    ) -> Result<OpenIdConnectProviderOutputs, ProviderError> {
        let iam = aws.iam();
        let has = |f: &str| changed.iter().any(|c| c == f);
        if has("client_id_list") {
            // Add before remove: a token for an audience kept in both lists is never refused in between.
            for added in desired.client_id_list.difference(&prior.client_id_list) {
                iam.add_client_id_to_open_id_connect_provider()
                    .open_id_connect_provider_arn(id)
                    .client_id(added)
                    .send()
                    .await
                    .map_err(sdk)?;
            }
            for gone in prior.client_id_list.difference(&desired.client_id_list) {
                iam.remove_client_id_from_open_id_connect_provider()
                    .open_id_connect_provider_arn(id)
                    .client_id(gone)
                    .send()
                    .await
                    .map_err(sdk)?;
            }
        }
        if let (true, Some(prints)) = (has("thumbprint_list"), &desired.thumbprint_list) {
            iam.update_open_id_connect_provider_thumbprint()
                .open_id_connect_provider_arn(id)
                .set_thumbprint_list(Some(prints.iter().cloned().collect()))
                .send()
                .await
                .map_err(sdk)?;
        }
        if has("tags") {
            let iam = &iam;
            crate::tags::sync(
                &prior.tags,
                &desired.tags,
                |keys| async {
                    iam.untag_open_id_connect_provider()
                        .open_id_connect_provider_arn(id)
                        .set_tag_keys(Some(keys))
                        .send()
                        .await
                        .map(drop)
                        .map_err(sdk)
                },
                |tags| async move {
                    iam.tag_open_id_connect_provider()
                        .open_id_connect_provider_arn(id)
                        .set_tags(iam_tags(&tags)?)
                        .send()
                        .await
                        .map(drop)
                        .map_err(sdk)
                },
            )
            .await?;
        }
        Ok(outputs(id, &desired.url))
    }

    async fn delete(aws: &Aws, id: &str, _prior: &Self) -> Result<(), ProviderError> {
        let gone = aws.iam().delete_open_id_connect_provider().open_id_connect_provider_arn(id).send().await.map_err(sdk);
        absent_if_not_found(gone).map(|_| ())
    }

    /// The ARN follows from account and URL: ours when it carries our address tag.
    async fn find_by_tags(aws: &Aws, desired: &Self, meta: &CallMeta) -> Result<Option<String>, ProviderError> {
        // IAM ARNs name no region.
        let arn = format!("arn:{}:iam::{}:oidc-provider/{}", aws.partition().await?, aws.account_id().await?, host_of(&desired.url));
        let got = aws.iam().get_open_id_connect_provider().open_id_connect_provider_arn(&arn).send().await.map_err(sdk);
        let Some(out) = absent_if_not_found(got)? else { return Ok(None) };
        Ok((sdk_tags(out.tags()).get(TAG_ADDRESS) == Some(&meta.address)).then_some(arn))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(p: &OpenIdConnectProvider) -> Vec<String> {
        p.validate().into_iter().map(|e| e.field).collect()
    }

    #[test]
    fn url_must_be_https_and_client_ids_present() {
        assert!(OpenIdConnectProvider::github_actions().validate().is_empty());
        assert_eq!(fields(&OpenIdConnectProvider::new("http://token.example.com", ["a"])), ["url"]);
        assert_eq!(fields(&OpenIdConnectProvider::new("token.example.com", ["a"])), ["url"]);
        assert_eq!(fields(&OpenIdConnectProvider::new("https://", ["a"])), ["url"]);
        assert_eq!(fields(&OpenIdConnectProvider::new("https://x.example.com/?a=b", ["a"])), ["url"]);
        assert_eq!(fields(&OpenIdConnectProvider::new(GITHUB_ACTIONS_URL, Vec::<String>::new())), ["client_id_list"]);
        assert_eq!(fields(&OpenIdConnectProvider::new(GITHUB_ACTIONS_URL, [""])), ["client_id_list"]);
        assert!(OpenIdConnectProvider::new("\u{e000}${ref:a.b}", ["x"]).validate().is_empty());
    }

    #[test]
    fn thumbprints_are_forty_hex_digits() {
        let good = "6938FD4D98BAB03FAADB97B34396831E3780AEA1";
        assert!(OpenIdConnectProvider::github_actions().thumbprints([good]).validate().is_empty());
        assert_eq!(fields(&OpenIdConnectProvider::github_actions().thumbprints(["abc"])), ["thumbprint_list"]);
        let six = (0..6).map(|i| format!("{i:040}"));
        assert_eq!(fields(&OpenIdConnectProvider::github_actions().thumbprints(six)), ["thumbprint_list"]);
    }

    #[test]
    fn urls_compare_as_iam_keeps_them() {
        let mut p = OpenIdConnectProvider::new("https://token.actions.githubusercontent.com/", ["sts.amazonaws.com"]);
        p.normalize();
        assert_eq!(p.url, GITHUB_ACTIONS_URL);
        assert_eq!(host_of(&p.url), "token.actions.githubusercontent.com");
    }
}
