//! API Gateway (HTTP APIs): access logs of stages, authorization of routes.

use super::{typed, Hit, Rule, Severity};
use crate::apigatewayv2::{Route, Stage};
use ferroform_core::Resource;

pub(super) static RULES: &[Rule] = &[
    Rule {
        id: "FF-APIGW-001",
        severity: Severity::Medium,
        resource_type: Stage::TYPE,
        title: "An API stage writes no access logs",
        why: "Without access logs there is no record of who called what, when, and with which answer: abuse, \
              errors and incidents cannot be traced.",
        fix: "`http_api::default_stage(s, &api, Some(AccessLog::json(log_group.arn())))` with a log group that \
              has a retention.",
        check: |d, _| {
            typed::<Stage>(d)
                .filter(|st| st.access_log.is_none())
                .map(|_| Hit::new("access_log", "unset: no access logs"))
                .into_iter()
                .collect()
        },
    },
    Rule {
        id: "FF-APIGW-002",
        severity: Severity::Info,
        resource_type: Route::TYPE,
        title: "A route has no authorization (advisory)",
        why: "Anyone on the internet may call it. Right for a public API; for anything else, an authorizer \
              (JWT, IAM or a Lambda) should decide who may.",
        fix: "`Route::jwt(authorizer.id(), scopes)` or `Route::aws_iam()`; or allow the rule on a public route.",
        check: |d, _| {
            let Some(route) = typed::<Route>(d) else { return Vec::new() };
            // Preflights are answered before any authorizer runs, as browsers send them without credentials.
            let preflight = route.route_key.starts_with("OPTIONS ");
            let open = route.authorization_type.as_deref().is_none_or(|t| t.eq_ignore_ascii_case("NONE"));
            if open && !preflight {
                vec![Hit::new("authorization_type", format!("`{}` is open to anyone", route.route_key))]
            } else {
                Vec::new()
            }
        },
    },
];

#[cfg(test)]
mod tests {
    use super::super::testing::{fired, from_json, stack};
    use crate::apigatewayv2::{Route, Stage};
    use serde_json::json;

    #[test]
    fn ff_apigw_001_access_logs() {
        let mut s = stack();
        s.add("bad", from_json::<Stage>(json!({"api_id": "a1", "name": "$default"})));
        s.add(
            "ok",
            from_json::<Stage>(json!({"api_id": "a1", "name": "prod",
                "access_log": {"destination_arn": "arn:aws:logs:us-east-1:1:log-group:/api", "format": "$context.requestId"}})),
        );
        assert_eq!(fired(&s, "FF-APIGW-001"), [("bad".into(), "access_log".into())]);
    }

    #[test]
    fn ff_apigw_002_routes_without_authorization() {
        let mut s = stack();
        s.add("bad", from_json::<Route>(json!({"api_id": "a1", "route_key": "GET /orders"})));
        s.add("none", from_json::<Route>(json!({"api_id": "a1", "route_key": "DELETE /orders/{id}", "authorization_type": "NONE"})));
        s.add(
            "jwt",
            from_json::<Route>(json!({"api_id": "a1", "route_key": "GET /me", "authorization_type": "JWT", "authorizer_id": "x"})),
        );
        s.add("preflight", from_json::<Route>(json!({"api_id": "a1", "route_key": "OPTIONS /orders"})));
        let fired = fired(&s, "FF-APIGW-002");
        assert_eq!(fired, [("bad".into(), "authorization_type".into()), ("none".into(), "authorization_type".into())]);
    }
}
