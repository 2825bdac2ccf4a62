//! Lambda: secrets in function environments.

use super::secrets::secret_kind;
use super::{typed, Hit, Rule, Severity};
use crate::lambda::Function;
use ferroform_core::Resource;

pub(super) static RULES: &[Rule] = &[Rule {
    id: "FF-LAMBDA-001",
    severity: Severity::High,
    resource_type: Function::TYPE,
    title: "A function's environment holds what looks like a secret",
    why: "Environment values are stored in the function's configuration, shown by GetFunctionConfiguration to \
          anyone allowed to read it, in the console, in state and in the stack's source: a key or password there \
          is leaked to all of them.",
    fix: "Keep the secret in Secrets Manager or SSM Parameter Store and pass its name; the function reads it \
          at start (and its role is allowed to read that one secret).",
    check: |d, _| {
        let Some(f) = typed::<Function>(d) else { return Vec::new() };
        f.environment
            .iter()
            .filter_map(|(k, v)| {
                secret_kind(k, v).map(|kind| Hit::new(format!("environment.{k}"), format!("looks like {kind} (value not shown)")))
            })
            .collect()
    },
}];

#[cfg(test)]
mod tests {
    use super::super::secrets::secret_kind;
    use super::super::testing::{fired, from_json, stack};
    use crate::lambda::Function;
    use serde_json::json;

    fn function(env: serde_json::Value) -> Function {
        from_json(
            json!({"name": "f", "role": "arn:aws:iam::1:role/r", "code": {"image": {"uri": "1.dkr.ecr.us-east-1.amazonaws.com/f:1"}}, "environment": env}),
        )
    }

    #[test]
    fn ff_lambda_001_secrets_in_environment() {
        let mut s = stack();
        s.add(
            "bad",
            function(json!({"AWS_ACCESS_KEY_ID": "AKIAIOSFODNN7EXAMPLE", "DB_PASSWORD": "hunter2hunter2", "TABLE_NAME": "orders"})),
        );
        s.add(
            "ok",
            function(json!({"TABLE_NAME": "orders", "DB_PASSWORD_SECRET_ARN": "arn:aws:secretsmanager:us-east-1:1:secret:db", "API_TOKEN": "\u{E000}${ref:secret.arn}"})),
        );
        assert_eq!(
            fired(&s, "FF-LAMBDA-001"),
            [("bad".into(), "environment.AWS_ACCESS_KEY_ID".into()), ("bad".into(), "environment.DB_PASSWORD".into())]
        );
    }

    #[test]
    fn secret_shapes() {
        assert_eq!(secret_kind("KEY", "-----BEGIN RSA PRIVATE KEY-----\nMII"), Some("a private key"));
        assert_eq!(secret_kind("DSN", "host=db user=app password=s3cret"), Some("a password or token in a key=value text"));
        assert_eq!(secret_kind("DATABASE_URL", "postgres://app:s3cret@db:5432/app"), Some("a URL with a password"));
        assert_eq!(secret_kind("DATABASE_URL", "postgres://db:5432/app"), None);
        assert_eq!(secret_kind("RUST_LOG", "info"), None);
        assert_eq!(secret_kind("TOKEN_TTL", "300"), None);
    }
}
