//! Route authorization as API Gateway's HTTP APIs enforce it, before the integration runs: JWT authorizers
//! ([`jwt`]) and `AWS_IAM` (SigV4, [`sigv4`]) routes. Refusals are API Gateway's: 401
//! `{"message":"Unauthorized"}` for a missing or bad token, 403 `{"message":"Forbidden"}` for a missing
//! scope or signature, each with its reason where API Gateway gives one (`www-authenticate`, the message).

pub mod crypto;
pub mod jwt;
pub mod sigv4;

use crate::event::{Request, Response};
use serde_json::{json, Value};
use std::sync::Arc;

/// Who may call a route, as deployed.
#[derive(Debug, Clone, Default)]
pub enum RouteAuth {
    /// `NONE`.
    #[default]
    Open,
    /// `JWT`: a token the authorizer accepts, with one of `scopes` when there are any.
    Jwt { authorizer: Arc<jwt::JwtAuthorizer>, scopes: Vec<String> },
    /// `AWS_IAM`: signed with the emulator's keys.
    Iam(Arc<IamAuth>),
    /// What `serve` can't check here (a `CUSTOM` Lambda authorizer, an authorizer it could not read): why.
    /// Every call is refused, so nothing runs unprotected.
    Unchecked(String),
}

/// The keys `AWS_IAM` routes take (the emulator's), and where.
#[derive(Debug, Clone)]
pub struct IamAuth {
    pub credentials: sigv4::Credentials,
    pub region: String,
    pub account_id: String,
}

/// 401 `{"message":"Unauthorized"}` with the reason in `www-authenticate`, as API Gateway's JWT authorizer.
fn unauthorized(why: &str) -> Response {
    let mut r = Response::gateway_error(401, "Unauthorized");
    r.headers.push(("www-authenticate".into(), format!("Bearer scope=\"\" error=\"invalid_token\" error_description=\"{why}\"")));
    r
}

/// Checks `req` against `auth` at `now`: `Ok` with what goes into `requestContext.authorizer` (`None` for an
/// open route), or the gateway's refusal.
pub fn authorize(auth: &RouteAuth, req: &Request, now: chrono::DateTime<chrono::Utc>) -> Result<Option<Value>, Response> {
    match auth {
        RouteAuth::Open => Ok(None),
        RouteAuth::Jwt { authorizer, scopes } => {
            let token = jwt::token_of(&authorizer.identity_source, &req.headers);
            match authorizer.check(token, scopes, now.timestamp()) {
                Ok(accepted) => Ok(Some(json!({ "jwt": accepted.context() }))),
                Err(jwt::Denied::Unauthorized(why)) => Err(unauthorized(&why)),
                Err(jwt::Denied::Forbidden(why)) => {
                    let mut r = Response::gateway_error(403, "Forbidden");
                    r.headers.push((
                        "www-authenticate".into(),
                        format!("Bearer scope=\"{}\" error=\"insufficient_scope\" error_description=\"{why}\"", scopes.join(" ")),
                    ));
                    Err(r)
                }
            }
        }
        RouteAuth::Iam(iam) => {
            let m = sigv4::Message { method: &req.method, path: &req.path, query: &req.query, headers: &req.headers, body: &req.body };
            match sigv4::verify(&m, &iam.credentials, &iam.region, "execute-api", now) {
                Ok(access_key) => Ok(Some(json!({ "iam": {
                    "accessKey": access_key,
                    "accountId": iam.account_id,
                    "callerId": Value::Null,
                    "cognitoIdentity": Value::Null,
                    "principalOrgId": Value::Null,
                    "userArn": Value::Null,
                    "userId": Value::Null,
                }}))),
                Err(sigv4::Refused(message)) => Err(Response::gateway_error(403, &message)),
            }
        }
        RouteAuth::Unchecked(_) => Err(unauthorized("serve can't check this route's authorizer")),
    }
}
