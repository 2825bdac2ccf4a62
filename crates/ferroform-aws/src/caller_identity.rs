//! Lookup: who the credentials are and where they act (Terraform's `aws_caller_identity`, `aws_region` and
//! `aws_partition` in one). API: STS GetCallerIdentity.
//!
//! ```ignore
//! let me = s.lookup("me", aws::CallerIdentity);
//! s.add("logs", LogGroup::new(format!("/{}/app", me.account_id())));
//! ```
//!
//! Inside `s.on(&provider, ..)` it answers for that provider's account and region.

use crate::Aws;
use async_trait::async_trait;
use ferroform_core::{Lookup, ProviderError};
use serde::{Deserialize, Serialize};

/// The caller's account, ARN, user id, partition and region. Always exactly one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CallerIdentity;

ferroform_core::outputs! {
    pub struct CallerIdentityOutputs => CallerIdentityRefs {
        /// The 12-digit account id.
        pub account_id: String,
        /// The ARN of the caller (a user, or an assumed role's session).
        pub arn: String,
        pub user_id: String,
        /// `aws`, `aws-cn`, `aws-us-gov`, read from the caller's ARN.
        pub partition: String,
        /// The region the stack's resources are made in.
        pub region: String,
    }
}

#[async_trait]
impl Lookup for CallerIdentity {
    const TYPE: &'static str = "aws_caller_identity";
    type Outputs = CallerIdentityOutputs;
    type Refs = CallerIdentityRefs;
    type Context = Aws;

    async fn find(aws: &Aws, _query: &Self) -> Result<CallerIdentityOutputs, ProviderError> {
        // Asked each time, not `Aws::whoami`'s cached answer: the ARN and user id are wanted too.
        let out = aws.sts().get_caller_identity().send().await.map_err(crate::error::sdk)?;
        let account_id = out.account.ok_or_else(|| ProviderError::new("GetCallerIdentity returned no account"))?;
        let arn = out.arn.unwrap_or_default();
        // `arn:PARTITION:...`; the region's partition if the answer has no ARN.
        let partition =
            arn.split(':').nth(1).filter(|p| arn.starts_with("arn:") && !p.is_empty()).unwrap_or(aws.region_partition()).to_string();
        Ok(CallerIdentityOutputs { account_id, arn, user_id: out.user_id.unwrap_or_default(), partition, region: aws.region() })
    }
}
