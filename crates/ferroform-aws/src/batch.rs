//! For resources whose reads are batched (`read_many` over one DescribeX call): the single read is the batch
//! of one.

use crate::Aws;
use ferroform_core::{Observed, ProviderError, Resource};

/// `R::read_many` of this one item.
pub(crate) async fn read_one<R: Resource<Context = Aws>>(aws: &Aws, id: &str, prior: &R) -> Result<Option<Observed<R>>, ProviderError> {
    R::read_many(aws, &[(id.to_string(), prior.clone())]).await.into_iter().next().unwrap_or(Ok(None))
}
