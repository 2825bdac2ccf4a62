//! Lookup: an ECR repository made elsewhere, by name (Terraform's `aws_ecr_repository` data source). API:
//! DescribeRepositories.
//!
//! ```ignore
//! let repo = s.lookup("images", ecr::FindRepository::named("shared/base"));
//! let image = format!("{}:v1", repo.repository_url());
//! ```

use crate::error::{absent_if_not_found, sdk};
use crate::lookup::{criteria, exactly_one};
use crate::tags::Tags;
use crate::Aws;
use async_trait::async_trait;
use ferroform_core::{Arn, Lookup, Name, ProviderError};
use serde::{Deserialize, Serialize};

/// The repository with this name, in this account's registry unless `registry_id` names another.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FindRepository {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub registry_id: Option<String>,
}

ferroform_core::outputs! {
    pub struct FoundRepositoryOutputs => FoundRepositoryRefs {
        pub arn: String as Arn<super::Repository>,
        pub name: String as Name<super::Repository>,
        /// `ACCOUNT.dkr.ecr.REGION.amazonaws.com/NAME`, what `docker push` takes.
        pub repository_url: String,
        pub registry_id: String,
    }
}

impl FindRepository {
    pub fn named(name: impl Into<String>) -> Self {
        Self { name: name.into(), registry_id: None }
    }
    /// In another account's registry (one shared with this account).
    pub fn in_registry(mut self, account_id: impl Into<String>) -> Self {
        self.registry_id = Some(account_id.into());
        self
    }
}

#[async_trait]
impl Lookup for FindRepository {
    const TYPE: &'static str = "aws_ecr_repository";
    type Outputs = FoundRepositoryOutputs;
    type Refs = FoundRepositoryRefs;
    type Context = Aws;

    async fn find(aws: &Aws, query: &Self) -> Result<FoundRepositoryOutputs, ProviderError> {
        let asked = aws.ecr().describe_repositories().repository_names(&query.name).set_registry_id(query.registry_id.clone());
        // One name asked for: one repository, or RepositoryNotFoundException.
        let out = absent_if_not_found(asked.send().await.map_err(sdk))?;
        let found = out
            .and_then(|o| o.repositories)
            .unwrap_or_default()
            .into_iter()
            .filter(|r| r.repository_name() == Some(query.name.as_str()))
            .map(|r| {
                let text = |v: Option<String>| v.unwrap_or_default();
                let outputs = FoundRepositoryOutputs {
                    arn: text(r.repository_arn),
                    name: text(r.repository_name),
                    repository_url: text(r.repository_uri),
                    registry_id: text(r.registry_id),
                };
                (outputs.arn.clone(), outputs)
            })
            .collect();
        let searched = criteria(&Tags::new(), &[("name", Some(&query.name)), ("registry", query.registry_id.as_deref())]);
        exactly_one("ECR repository", &searched, found)
    }
}
