//! Lookup: an IAM role made elsewhere, by name (Terraform's `aws_iam_role` data source). API: GetRole.
//!
//! ```ignore
//! let deploy = s.lookup("deploy-role", iam::FindRole::named("lambda-deploy"));
//! s.add("fn", lambda::Function::new("api").role(deploy.arn()));
//! ```

use crate::error::{absent_if_not_found, sdk};
use crate::lookup::exactly_one;
use crate::Aws;
use async_trait::async_trait;
use ferroform_core::{Arn, Id, Lookup, Name, ProviderError};
use serde::{Deserialize, Serialize};

/// The role with this name (a name is unique in an account, so there is one or none).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FindRole {
    pub name: String,
}

ferroform_core::outputs! {
    pub struct FoundRoleOutputs => FoundRoleRefs {
        pub arn: String as Arn<super::Role>,
        pub name: String as Name<super::Role>,
        /// The role's unique id (`AROA...`).
        pub id: String as Id<super::Role>,
        pub path: String,
    }
}

impl FindRole {
    pub fn named(name: impl Into<String>) -> Self {
        Self { name: name.into() }
    }
}

#[async_trait]
impl Lookup for FindRole {
    const TYPE: &'static str = "aws_iam_role";
    type Outputs = FoundRoleOutputs;
    type Refs = FoundRoleRefs;
    type Context = Aws;

    async fn find(aws: &Aws, query: &Self) -> Result<FoundRoleOutputs, ProviderError> {
        let out = absent_if_not_found(aws.iam().get_role().role_name(&query.name).send().await.map_err(sdk))?;
        let found = out.and_then(|o| o.role).map(|r| {
            let outputs = FoundRoleOutputs { arn: r.arn, name: r.role_name, id: r.role_id, path: r.path };
            (outputs.id.clone(), outputs)
        });
        exactly_one("IAM role", &format!("name {}", query.name), found.into_iter().collect())
    }
}
