//! Another region or account for part of a stack (Terraform's provider aliases):
//!
//! ```ignore
//! let use1 = s.provider("use1", Aws::in_region("us-east-1"));
//! let audit = s.provider("audit", Aws::assume_role("arn:aws:iam::123456789012:role/deployer"));
//! s.add_with("cert-logs", LogGroup::new("/certs"), Options::new().on(&use1));
//! s.on(&audit, |s| s.add("trail-bucket", Bucket::new("org-trail")));
//! ```
//!
//! A provider starts from the stack's default credentials and settings (the standard chain, the emulator's
//! endpoint) and changes what it names: the region, and/or the credentials, by `sts:AssumeRole`.

use crate::Aws;
use async_trait::async_trait;
use aws_config::Region;
use aws_types::sdk_config::{SharedCredentialsProvider, SharedTimeSource};
use ferroform_core::{Contexts, ProviderConfig, ProviderError};

/// How an AWS provider differs from the default one.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AwsProvider {
    pub region: Option<String>,
    pub role_arn: Option<String>,
    pub external_id: Option<String>,
    pub session_name: Option<String>,
}

impl Aws {
    /// The default credentials in another region (`s.provider("use1", Aws::in_region("us-east-1"))`).
    pub fn in_region(region: impl Into<String>) -> AwsProvider {
        AwsProvider { region: Some(region.into()), ..Default::default() }
    }
    /// Another account (or role) by `sts:AssumeRole` from the default credentials, in their region.
    pub fn assume_role(role_arn: impl Into<String>) -> AwsProvider {
        AwsProvider { role_arn: Some(role_arn.into()), ..Default::default() }
    }
}

impl AwsProvider {
    /// In this region (with an assumed role: the role's calls go there).
    pub fn in_region(mut self, region: impl Into<String>) -> Self {
        self.region = Some(region.into());
        self
    }
    /// Also assumes this role.
    pub fn assume_role(mut self, role_arn: impl Into<String>) -> Self {
        self.role_arn = Some(role_arn.into());
        self
    }
    /// The external id the role's trust policy asks for.
    pub fn external_id(mut self, id: impl Into<String>) -> Self {
        self.external_id = Some(id.into());
        self
    }
    /// The session name CloudTrail shows (`ferroform` unless set).
    pub fn session_name(mut self, name: impl Into<String>) -> Self {
        self.session_name = Some(name.into());
        self
    }
}

#[async_trait]
impl ProviderConfig for AwsProvider {
    type Context = Aws;

    async fn make(&self, base: &Contexts) -> Result<Aws, ProviderError> {
        let base = base.get::<Aws>().await?;
        let mut config = base.config.to_builder();
        if let Some(region) = &self.region {
            config.set_region(Some(Region::new(region.clone())));
        }
        if let Some(role) = &self.role_arn {
            // The role is assumed with the default credentials; a hand-built default config (tests, a
            // program's own) may lack the clock and timer the credentials provider needs.
            let mut sts = base.config.to_builder();
            if base.config.time_source().is_none() {
                sts.set_time_source(Some(SharedTimeSource::default()));
            }
            if base.config.sleep_impl().is_none() {
                sts.set_sleep_impl(aws_smithy_async::rt::sleep::default_async_sleep());
            }
            let mut assume = aws_config::sts::AssumeRoleProvider::builder(role)
                .session_name(self.session_name.clone().unwrap_or_else(|| "ferroform".into()))
                .configure(&sts.build());
            if let Some(id) = &self.external_id {
                assume = assume.external_id(id);
            }
            config.set_credentials_provider(Some(SharedCredentialsProvider::new(assume.build().await)));
        }
        Ok(Aws::from_config(config.build()))
    }

    fn describe(&self) -> String {
        let mut parts = Vec::new();
        if let Some(r) = &self.role_arn {
            parts.push(format!("role {r}"));
        }
        if let Some(r) = &self.region {
            parts.push(format!("region {r}"));
        }
        if parts.is_empty() {
            "the default AWS settings".into()
        } else {
            parts.join(", ")
        }
    }
}
