//! API Gateway v2 (`aws-sdk-apigatewayv2`): HTTP APIs, their Lambda integrations, routes, stages and JWT
//! authorizers.
//!
//! The parts of an API (integration, route, stage, authorizer) are known by `API_ID/PART_ID`, the form
//! Terraform imports them by, so a read needs nothing but the id.

mod api;
mod authorizer;
mod integration;
mod route;
mod stage;

pub use api::{Cors, HttpApi, HttpApiOutputs, HttpApiRefs};
pub use authorizer::{Authorizer, AuthorizerOutputs, AuthorizerRefs};
pub use integration::{Integration, IntegrationOutputs, IntegrationRefs};
pub use route::{check_route_key, Route, RouteOutputs, RouteRefs, METHODS};
pub use stage::{AccessLog, Stage, StageOutputs, StageRefs, DEFAULT_STAGE};

use crate::error::sdk;
use crate::tags::Tags;
use crate::Aws;
use ferroform_core::ProviderError;

pub(crate) fn register(reg: &mut ferroform_core::Registry) {
    reg.register::<HttpApi>();
    reg.register::<Integration>();
    reg.register::<Route>();
    reg.register::<Stage>();
    reg.register::<Authorizer>();
}

/// Reads parts of APIs (routes, integrations) with one listing per API instead of one call per part.
/// `list(api)` gives every part of that API by id, or `None` when the API itself is gone.
pub(crate) async fn read_parts<R: ferroform_core::Resource, T, Fut>(
    items: &[(String, R)],
    api_of: impl Fn(&R) -> &str,
    list: impl Fn(String) -> Fut,
    observe: impl Fn(&str, &str, &T) -> ferroform_core::Observed<R>,
) -> Vec<Result<Option<ferroform_core::Observed<R>>, ProviderError>>
where
    Fut: std::future::Future<Output = Result<Option<std::collections::HashMap<String, T>>, ProviderError>>,
{
    let parts: Vec<(&str, &str)> = items.iter().map(|(id, prior)| split_part_id(id, api_of(prior))).collect();
    let apis: std::collections::BTreeSet<&str> = parts.iter().map(|(api, _)| *api).collect();
    let listings = ferroform_core::join_bounded(apis.iter().map(|api| list(api.to_string()))).await;
    let by_api: std::collections::BTreeMap<&str, _> = apis.into_iter().zip(listings).collect();
    parts
        .into_iter()
        .map(|(api, part)| match by_api.get(api) {
            Some(Ok(Some(all))) => Ok(all.get(part).map(|t| observe(api, part, t))),
            Some(Ok(None)) | None => Ok(None),
            Some(Err(e)) => Err(e.clone()),
        })
        .collect()
}

/// Every page of a listing ([`crate::pages::all_pages`]); `None` when the API is gone.
pub(crate) async fn all_pages<T, Fut>(page: impl Fn(Option<String>) -> Fut) -> Result<Option<Vec<T>>, ProviderError>
where
    Fut: std::future::Future<Output = Result<(Vec<T>, Option<String>), ProviderError>>,
{
    crate::error::absent_if_not_found(crate::pages::all_pages(page).await)
}

/// What a create of an API's part made, after `create_once`: its `API_ID/PART_ID` and the part's own id, from
/// the answer (`part` reads the id in it; `call` names the call when it holds none) or as the lookup found it.
pub(crate) fn made_part<T>(
    made: crate::error::Made<T>,
    api_id: &str,
    part: impl FnOnce(&T) -> Option<&str>,
    call: &str,
) -> Result<(String, String), ProviderError> {
    let id = match made {
        crate::error::Made::Answered(out) => {
            part_id(api_id, part(&out).ok_or_else(|| ProviderError::new(format!("{call} returned no id")))?)
        }
        crate::error::Made::Found(id) => id,
    };
    let own = split_part_id(&id, api_id).1.to_string();
    Ok((id, own))
}

/// `API_ID/PART_ID`.
pub(crate) fn part_id(api_id: &str, part: &str) -> String {
    format!("{api_id}/{part}")
}

/// Splits `API_ID/PART_ID`; a bare id is taken with the API id of the prior inputs.
pub(crate) fn split_part_id<'a>(id: &'a str, prior_api: &'a str) -> (&'a str, &'a str) {
    match id.split_once('/') {
        Some((api, part)) if !api.is_empty() && !part.is_empty() => (api, part),
        _ => (prior_api, id),
    }
}

/// The ARN tagging calls take: `arn:PARTITION:apigateway:REGION::/apis/ID` (and `/stages/NAME` for a stage).
pub(crate) fn resource_arn(aws: &Aws, path: &str) -> String {
    format!("arn:{}:apigateway:{}::{path}", aws.region_partition(), aws.region())
}

/// Brings the live tags of `arn` from `prior` to `desired`.
pub(crate) async fn sync_tags(aws: &Aws, arn: &str, prior: &Tags, desired: &Tags) -> Result<(), ProviderError> {
    let client = aws.apigatewayv2();
    crate::tags::sync(
        prior,
        desired,
        |keys| async { client.untag_resource().resource_arn(arn).set_tag_keys(Some(keys)).send().await.map(drop).map_err(sdk) },
        |tags| async {
            client.tag_resource().resource_arn(arn).set_tags(Some(tags.into_iter().collect())).send().await.map(drop).map_err(sdk)
        },
    )
    .await
}

/// The SDK's tag map as ours.
pub(crate) fn tags_of(t: Option<&std::collections::HashMap<String, String>>) -> Tags {
    crate::tags::without_aws_managed(t.map(|t| t.clone().into_iter().collect()).unwrap_or_default())
}

/// `None` for an empty map (the SDK then sends nothing).
pub(crate) fn sdk_tags(t: &Tags) -> Option<std::collections::HashMap<String, String>> {
    (!t.is_empty()).then(|| t.clone().into_iter().collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn part_ids_split_at_the_first_slash() {
        assert_eq!(split_part_id("abc123/def", "x"), ("abc123", "def"));
        assert_eq!(split_part_id("abc123/$default", "x"), ("abc123", "$default"));
        assert_eq!(split_part_id("def", "abc"), ("abc", "def"));
        assert_eq!(part_id("a", "b"), "a/b");
    }
}
