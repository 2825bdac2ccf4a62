//! Who may call the pedidos API, chosen with variables (all optional):
//!
//! | variables                                   | every route                                                     |
//! |---------------------------------------------|-----------------------------------------------------------------|
//! | none (or `auth=none`)                       | open to anyone, as today (`check` reports it: FF-APIGW-002)     |
//! | `jwt_issuer=URL`, `jwt_audience=AUD[,AUD]`  | a JWT from that issuer for one of those audiences (`auth=jwt`)  |
//! | `auth=iam`                                  | a SigV4-signed call by a principal allowed `execute-api:Invoke` |
//!
//! JWT: the authorizer `api/jwt` reads `Authorization: Bearer TOKEN`; the GETs need the scope
//! [`READ_SCOPE`], POST, PUT and DELETE [`WRITE_SCOPE`]. IAM: the managed policy `invoke-policy`
//! (`NAME-invoke`, output `invoke_policy_arn`) allows `execute-api:Invoke` on exactly the API's routes:
//! attach it to the callers' roles.

use crate::stack::{Config, ROUTES};
use ferroform::aws::apigatewayv2::{Authorizer, HttpApiRefs};
use ferroform::aws::components::http_api::{invoke_resource, RouteAuth};
use ferroform::aws::iam::{Policy, PolicyDocument};
use ferroform::prelude::*;

/// What a token needs for the GET routes.
pub const READ_SCOPE: &str = "pedidos:read";
/// What a token needs for POST, PUT and DELETE.
pub const WRITE_SCOPE: &str = "pedidos:write";

/// The API's protection, from the stack's variables.
#[derive(Debug, Clone, PartialEq)]
pub enum Auth {
    Open,
    Jwt { issuer: String, audience: Vec<String> },
    Iam,
}

impl Auth {
    /// From `auth`, `jwt_issuer` and `jwt_audience`; a half-given or contradictory choice is an error.
    pub fn from_stack(s: &Stack) -> Result<Auth> {
        let issuer = s.var("jwt_issuer").map(|v| v.trim().to_string()).filter(|v| !v.is_empty());
        let audience: Vec<String> = s
            .var("jwt_audience")
            .map(|v| v.split(',').map(str::trim).filter(|a| !a.is_empty()).map(String::from).collect())
            .unwrap_or_default();
        let mode = s.var("auth").map(|v| v.trim().to_ascii_lowercase()).unwrap_or_default();
        let jwt_given = issuer.is_some() || !audience.is_empty();
        match (mode.as_str(), jwt_given) {
            ("" | "jwt", true) | ("jwt", false) => match issuer {
                Some(issuer) if !audience.is_empty() => Ok(Auth::Jwt { issuer, audience }),
                _ => bail!("JWT authorization needs both --var jwt_issuer=URL and --var jwt_audience=AUD[,AUD]"),
            },
            ("" | "none", false) => Ok(Auth::Open),
            ("iam", false) => Ok(Auth::Iam),
            ("none" | "iam", true) => bail!("var auth={mode} can't go with jwt_issuer or jwt_audience: choose one"),
            (other, _) => bail!("var auth: `{other}` is not none, jwt or iam"),
        }
    }
}

/// What [`declare`] made: each route's authorization.
#[derive(Debug, Clone)]
pub struct Declared {
    read: RouteAuth,
    write: RouteAuth,
}

impl Declared {
    /// The authorization of `route_key`: reads for GET, writes for the rest.
    pub fn route(&self, route_key: &str) -> &RouteAuth {
        if route_key.starts_with("GET ") {
            &self.read
        } else {
            &self.write
        }
    }
}

/// Declares what `cfg.auth` needs next to `api` (the authorizer, or the callers' policy and its output) and
/// hands back each route's authorization.
pub fn declare(s: &mut Stack, cfg: &Config, api: &HttpApiRefs) -> Declared {
    match &cfg.auth {
        Auth::Open => Declared { read: RouteAuth::Open, write: RouteAuth::Open },
        Auth::Jwt { issuer, audience } => {
            let authorizer = s.add(
                &format!("{}/jwt", api.address()),
                Authorizer::jwt(api.id(), format!("{}-jwt", cfg.name), issuer.as_str(), audience.iter().cloned()),
            );
            let scoped = |scope: &str| RouteAuth::Jwt { authorizer: authorizer.id(), scopes: vec![scope.to_string()] };
            Declared { read: scoped(READ_SCOPE), write: scoped(WRITE_SCOPE) }
        }
        Auth::Iam => {
            let routes: Vec<String> = ROUTES.iter().map(|r| invoke_resource(api, r)).collect();
            let policy = s.add(
                "invoke-policy",
                Policy::new(format!("{}-invoke", cfg.name), PolicyDocument::new().allow(["execute-api:Invoke"], routes))
                    .description(format!("Calls {}'s API: its routes, nothing else", cfg.name)),
            );
            s.output("invoke_policy_arn", policy.arn());
            Declared { read: RouteAuth::Iam, write: RouteAuth::Iam }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn auth(vars: &[(&str, &str)]) -> Result<Auth> {
        let mut s = Stack::new("pedidos");
        for (k, v) in vars {
            s.set_var(k, v);
        }
        Auth::from_stack(&s)
    }

    #[test]
    fn variables_choose_the_protection() {
        assert_eq!(auth(&[]).unwrap(), Auth::Open);
        assert_eq!(auth(&[("auth", "none")]).unwrap(), Auth::Open);
        assert_eq!(auth(&[("auth", "IAM")]).unwrap(), Auth::Iam);
        let jwt = Auth::Jwt { issuer: "https://id.example.com".into(), audience: vec!["a".into(), "b".into()] };
        assert_eq!(auth(&[("jwt_issuer", "https://id.example.com"), ("jwt_audience", "a, b")]).unwrap(), jwt);
        assert_eq!(auth(&[("auth", "jwt"), ("jwt_issuer", "https://id.example.com"), ("jwt_audience", "a,b")]).unwrap(), jwt);
        for (vars, says) in [
            (&[("jwt_issuer", "https://id.example.com")][..], "needs both"),
            (&[("auth", "jwt")][..], "needs both"),
            (&[("auth", "iam"), ("jwt_audience", "a")][..], "can't go with"),
            (&[("auth", "cognito")][..], "`cognito` is not none, jwt or iam"),
        ] {
            let e = auth(vars).unwrap_err().to_string();
            assert!(e.contains(says), "{vars:?}: {e}");
        }
    }
}
