//! A Lambda runtime written in shell (`bash` and `curl`) for the tests: a real process speaking the real
//! runtime API. What it does depends on the event's text: `fail` posts an error, `sleep` sleeps past any
//! short timeout, `wait` waits until the file `$GO` exists, `echo-event` answers 200 with the event itself;
//! otherwise it answers 200 with its pid and the invoked function ARN. With `INIT_FAIL` set it posts an init error and exits.

use std::collections::BTreeMap;
use std::path::PathBuf;

pub const SCRIPT: &str = r#"#!/usr/bin/env bash
api="http://$AWS_LAMBDA_RUNTIME_API/2018-06-01/runtime"
if [ -n "$INIT_FAIL" ]; then
  curl -s -X POST "$api/init/error" -d '{"errorMessage":"bad config","errorType":"InitError"}' >/dev/null
  exit 1
fi
echo "started $AWS_LAMBDA_FUNCTION_NAME"
headers=$(mktemp)
while true; do
  event=$(curl -s -D "$headers" "$api/invocation/next")
  id=$(grep -i '^lambda-runtime-aws-request-id:' "$headers" | cut -d' ' -f2 | tr -d '\r')
  arn=$(grep -i '^lambda-runtime-invoked-function-arn:' "$headers" | cut -d' ' -f2 | tr -d '\r')
  deadline=$(grep -i '^lambda-runtime-deadline-ms:' "$headers" | cut -d' ' -f2 | tr -d '\r')
  case "$event" in
    *echo-event*)
      body=$(printf '%s' "$event" | base64 | tr -d '\n')
      curl -s -X POST "$api/invocation/$id/response" -d "{\"statusCode\":200,\"isBase64Encoded\":true,\"body\":\"$body\"}" >/dev/null
      continue ;;
  esac
  case "$event" in
    *sleep*) sleep 600 ;;
    *wait*) while [ ! -f "$GO" ]; do sleep 0.02; done ;;
  esac
  case "$event" in
    *fail*) curl -s -X POST "$api/invocation/$id/error" -d '{"errorMessage":"boom","errorType":"Boom"}' >/dev/null ;;
    *) curl -s -X POST "$api/invocation/$id/response" -d "{\"statusCode\":200,\"body\":\"$$ $arn $deadline\"}" >/dev/null ;;
  esac
done
"#;

/// Writes the script into `dir`; its path.
pub fn script(dir: &std::path::Path) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let path = dir.join("runtime.sh");
    std::fs::write(&path, SCRIPT).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

pub fn env(extra: &[(&str, &str)]) -> BTreeMap<String, String> {
    let mut env: BTreeMap<String, String> = std::env::vars().filter(|(k, _)| k == "PATH" || k == "HOME").collect();
    env.insert("AWS_LAMBDA_FUNCTION_NAME".into(), "f".into());
    env.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    env
}
