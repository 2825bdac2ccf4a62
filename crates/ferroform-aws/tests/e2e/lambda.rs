//! Lambda functions and permissions against the emulator, checked with independent SDK reads.
//!
//! No cargo build runs here (too slow for CI): a function's "binary" is a few bytes written to the test's
//! temp dir and packaged by `Code::binary` into a reproducible zip.

use crate::common::change;
use aws_sdk_lambda::types::{LastUpdateStatus, PackageType, State};
use ferroform_aws::iam::{generated_name, Role};
use ferroform_aws::lambda::{sha256_base64, Code, Function, Permission};
use ferroform_aws::{Aws, CallCounter};
use ferroform_core::{Action, Stack};
use ferroform_testkit::Harness;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

const STACK: &str = "lambdatest";

async fn harness() -> anyhow::Result<(Harness, CallCounter, aws_sdk_lambda::Client)> {
    let h = Harness::new().await?;
    let aws = Aws::from_config(h.account.config.clone());
    let calls = aws.calls().clone();
    h.contexts.insert(aws);
    let lambda = aws_sdk_lambda::Client::new(&h.account.config);
    Ok((h, calls, lambda))
}

/// Calls of one operation (`Service:Operation` keys end in `:Operation`).
fn count(calls: &BTreeMap<String, usize>, operation: &str) -> usize {
    calls.iter().filter(|(k, _)| k.rsplit(':').next() == Some(operation)).map(|(_, n)| n).sum()
}

/// Plans, asserts nothing would change, and returns the API calls the plan made.
async fn no_op(h: &Harness, calls: &CallCounter, stack: &Stack) -> anyhow::Result<BTreeMap<String, usize>> {
    calls.reset();
    let plan = h.plan(stack).await?;
    assert!(!plan.has_changes(), "expected no changes:\n{}", plan.render(false));
    Ok(calls.snapshot())
}

/// A pretend `provided.al2023` executable: Lambda never runs it on the emulator, only stores and hashes it.
fn write_binary(dir: &Path, content: &str) -> PathBuf {
    let path = dir.join("bootstrap-bin");
    std::fs::write(&path, format!("#!/bin/sh\n# {content}\n")).unwrap();
    path
}

async fn get_function(
    lambda: &aws_sdk_lambda::Client,
    name: &str,
) -> anyhow::Result<aws_sdk_lambda::operation::get_function::GetFunctionOutput> {
    Ok(lambda.get_function().function_name(name).send().await?)
}

/// True when Lambda says there is no such function.
async fn gone(lambda: &aws_sdk_lambda::Client, name: &str) -> bool {
    let err = lambda.get_function().function_name(name).send().await.err();
    err.and_then(|e| e.into_service_error().meta().code().map(str::to_string)).as_deref() == Some("ResourceNotFoundException")
}

/// A role for Lambda and a function using it, in one stack.
fn fn_stack(f: Function) -> Stack {
    let mut s = Stack::new(STACK);
    let role = s.add("role", Role::for_service("lambda.amazonaws.com"));
    s.add("fn", f.role(role.arn()));
    s
}

#[tokio::test]
async fn function_from_a_binary_lifecycle() -> anyhow::Result<()> {
    let (h, calls, lambda) = harness().await?;
    let iam = aws_sdk_iam::Client::new(&h.account.config);
    let dir = h.dir.path();

    // Reproducible packaging: the same bytes (written again, with a later mtime) give the same zip, byte for
    // byte, and the same hash; the zip holds the bytes as an executable `bootstrap`.
    let bin = write_binary(dir, "v1");
    let code = Code::binary(&bin);
    let zip_v1 = std::fs::read(format!("{}.zip", bin.display()))?;
    std::thread::sleep(std::time::Duration::from_millis(20));
    write_binary(dir, "v1");
    assert_eq!(Code::binary(&bin), code);
    assert_eq!(std::fs::read(format!("{}.zip", bin.display()))?, zip_v1);
    let sha_v1 = code.sha256().unwrap().to_string();
    assert_eq!(sha_v1, sha256_base64(&zip_v1));
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(zip_v1.clone()))?;
    assert_eq!(archive.len(), 1);
    let mut entry = archive.by_name("bootstrap")?;
    assert_eq!(entry.unix_mode().map(|m| m & 0o777), Some(0o755));
    let mut content = String::new();
    std::io::Read::read_to_string(&mut entry, &mut content)?;
    assert_eq!(content, "#!/bin/sh\n# v1\n");
    drop(entry);

    let v1 = |code: Code| Function::new("hello").code(code).memory_size(128).timeout(10).env("GREETING", "hola").tag("team", "web");
    let state = h.apply(&fn_stack(v1(code.clone()))).await?;

    // Independent reads: the configuration, the code's hash, the role made in the same stack.
    let got = get_function(&lambda, "hello").await?;
    let c = got.configuration().unwrap();
    let arn = c.function_arn().unwrap().to_string();
    assert_eq!(c.code_sha256(), Some(sha_v1.as_str()), "Lambda's CodeSha256 is the zip's sha256");
    assert_eq!(c.package_type(), Some(&PackageType::Zip));
    assert_eq!(c.runtime().map(|r| r.as_str()), Some("provided.al2023"));
    assert_eq!(c.handler(), Some("bootstrap"));
    assert_eq!((c.memory_size(), c.timeout()), (Some(128), Some(10)));
    assert_eq!(c.environment().and_then(|e| e.variables()).and_then(|v| v.get("GREETING")).map(String::as_str), Some("hola"));
    // moto reports `State: Active` always and `LastUpdateStatus: Successful` on every read but the create's
    // own response; the engine waited for both.
    assert_eq!(c.state(), Some(&State::Active));
    assert_eq!(c.last_update_status(), Some(&LastUpdateStatus::Successful));
    let role = iam.get_role().role_name(generated_name(STACK, "role")).send().await?.role.unwrap();
    assert_eq!(c.role(), Some(role.arn()));
    let tags = got.tags().cloned().unwrap_or_default();
    assert_eq!(tags.get("team").map(String::as_str), Some("web"));
    assert_eq!(tags.get("ferroform:address").map(String::as_str), Some("fn"));
    let outputs = &state.resources["fn"].outputs;
    assert_eq!(outputs["arn"], arn);
    assert_eq!(outputs["code_sha256"], sha_v1);
    assert!(outputs["invoke_arn"].as_str().unwrap_or_default().ends_with(&format!("/functions/{arn}/invocations")));

    // No-op: the same binary, packaged again, is no change and no upload (a plan, then an apply).
    let reads = no_op(&h, &calls, &fn_stack(v1(Code::binary(&bin)))).await?;
    println!("no-op plan of a role + a function: {reads:?}");
    assert_eq!(count(&reads, "GetFunction"), 1, "{reads:?}");
    calls.reset();
    h.apply(&fn_stack(v1(Code::binary(&bin)))).await?;
    let applied = calls.snapshot();
    assert_eq!(count(&applied, "UpdateFunctionCode") + count(&applied, "UpdateFunctionConfiguration"), 0, "{applied:?}");

    // New bytes: an update of `code` only, the same function, the new hash read back.
    write_binary(dir, "v2");
    let code_v2 = Code::binary(&bin);
    let sha_v2 = code_v2.sha256().unwrap().to_string();
    assert_ne!(sha_v2, sha_v1);
    let plan = h.plan(&fn_stack(v1(code_v2.clone()))).await?;
    assert_eq!(change(&plan, "fn"), (Action::Update, vec!["code".into()]), "{}", plan.render(false));
    calls.reset();
    let state = h.apply(&fn_stack(v1(code_v2.clone()))).await?;
    let applied = calls.snapshot();
    assert_eq!((count(&applied, "UpdateFunctionCode"), count(&applied, "UpdateFunctionConfiguration")), (1, 0), "{applied:?}");
    let c = get_function(&lambda, "hello").await?.configuration.unwrap();
    assert_eq!(c.function_arn(), Some(arn.as_str()));
    assert_eq!(c.code_sha256(), Some(sha_v2.as_str()));
    assert_eq!(state.resources["fn"].outputs["code_sha256"], sha_v2);
    no_op(&h, &calls, &fn_stack(v1(code_v2.clone()))).await?;

    // In place: memory, timeout, environment; no code upload, the same function.
    let v2 = || {
        Function::new("hello")
            .code(code_v2.clone())
            .memory_size(256)
            .timeout(30)
            .env("GREETING", "hello")
            .env("MODE", "prod")
            .tag("team", "web")
    };
    let plan = h.plan(&fn_stack(v2())).await?;
    let fields = vec!["environment".to_string(), "memory_size".into(), "timeout".into()];
    assert_eq!(change(&plan, "fn"), (Action::Update, fields), "{}", plan.render(false));
    calls.reset();
    h.apply(&fn_stack(v2())).await?;
    let applied = calls.snapshot();
    assert_eq!((count(&applied, "UpdateFunctionCode"), count(&applied, "UpdateFunctionConfiguration")), (0, 1), "{applied:?}");
    let c = get_function(&lambda, "hello").await?.configuration.unwrap();
    assert_eq!(c.function_arn(), Some(arn.as_str()));
    assert_eq!((c.memory_size(), c.timeout()), (Some(256), Some(30)));
    let env = c.environment().and_then(|e| e.variables()).cloned().unwrap_or_default();
    assert_eq!(
        env.into_iter().collect::<BTreeMap<_, _>>(),
        BTreeMap::from([("GREETING".into(), "hello".into()), ("MODE".into(), "prod".into())])
    );
    assert_eq!(c.code_sha256(), Some(sha_v2.as_str()));
    no_op(&h, &calls, &fn_stack(v2())).await?;

    // Drift: memory, the environment and a tag changed behind the engine's back: the plan shows them, apply
    // restores them.
    lambda
        .update_function_configuration()
        .function_name("hello")
        .memory_size(512)
        .environment(aws_sdk_lambda::types::Environment::builder().variables("GREETING", "sneaky").build())
        .send()
        .await?;
    lambda.untag_resource().resource(&arn).tag_keys("team").send().await?;
    let plan = h.plan(&fn_stack(v2())).await?;
    let text = plan.render(false);
    assert_eq!(change(&plan, "fn"), (Action::Update, vec!["environment".into(), "memory_size".into(), "tags".into()]), "{text}");
    assert!(text.contains("memory_size = 512 -> 256"), "{text}");
    h.apply(&fn_stack(v2())).await?;
    let c = get_function(&lambda, "hello").await?.configuration.unwrap();
    assert_eq!(c.memory_size(), Some(256));
    assert_eq!(c.environment().and_then(|e| e.variables()).map(|v| v.len()), Some(2));
    let tags = lambda.list_tags().resource(&arn).send().await?.tags.unwrap_or_default();
    assert_eq!(tags.get("team").map(String::as_str), Some("web"));
    no_op(&h, &calls, &fn_stack(v2())).await?;

    // Replace: a new name is a new function (the old one goes first: the name is the identity).
    let renamed = || Function { name: "hello2".into(), ..v2() };
    let plan = h.plan(&fn_stack(renamed())).await?;
    assert_eq!(change(&plan, "fn").0, Action::Replace, "{}", plan.render(false));
    h.apply(&fn_stack(renamed())).await?;
    let c = get_function(&lambda, "hello2").await?.configuration.unwrap();
    assert_ne!(c.function_arn(), Some(arn.as_str()));
    assert_eq!(c.code_sha256(), Some(sha_v2.as_str()));
    assert!(gone(&lambda, "hello").await);
    no_op(&h, &calls, &fn_stack(renamed())).await?;

    h.destroy(&fn_stack(renamed())).await?;
    assert!(gone(&lambda, "hello2").await);
    assert!(iam.get_role().role_name(generated_name(STACK, "role")).send().await.is_err());
    Ok(())
}

#[tokio::test]
async fn function_from_an_image() -> anyhow::Result<()> {
    let (h, calls, lambda) = harness().await?;
    let repo = format!("{}.dkr.ecr.us-east-1.amazonaws.com/hello", h.account.id);
    // moto stubs ECR for image functions by default (MOTO_LAMBDA_STUB_ECR): the image need not exist.
    let image = |tag: &str| Function::new("img").code(Code::image(format!("{repo}:{tag}"))).memory_size(512);
    h.apply(&fn_stack(image("1"))).await?;
    let got = get_function(&lambda, "img").await?;
    let c = got.configuration().unwrap();
    let arn = c.function_arn().unwrap().to_string();
    assert_eq!(c.package_type(), Some(&PackageType::Image));
    assert_eq!(c.runtime(), None);
    assert_eq!(c.handler(), None);
    assert_eq!(got.code().and_then(|c| c.image_uri()), Some(format!("{repo}:1").as_str()));
    no_op(&h, &calls, &fn_stack(image("1"))).await?;

    // A new tag: an update of the code, the same function.
    let plan = h.plan(&fn_stack(image("2"))).await?;
    assert_eq!(change(&plan, "fn"), (Action::Update, vec!["code".into()]), "{}", plan.render(false));
    h.apply(&fn_stack(image("2"))).await?;
    let got = get_function(&lambda, "img").await?;
    assert_eq!(got.configuration().and_then(|c| c.function_arn()), Some(arn.as_str()));
    assert_eq!(got.code().and_then(|c| c.image_uri()), Some(format!("{repo}:2").as_str()));
    no_op(&h, &calls, &fn_stack(image("2"))).await?;

    // From an image to a zip: Lambda can't change the package type, so it is a new function.
    let bin = write_binary(h.dir.path(), "zip");
    let zipped = || Function::new("img").code(Code::binary(&bin)).memory_size(512);
    let plan = h.plan(&fn_stack(zipped())).await?;
    let text = plan.render(false);
    assert_eq!(change(&plan, "fn").0, Action::Replace, "{text}");
    assert!(text.contains("`package_type` forces replacement"), "{text}");
    h.apply(&fn_stack(zipped())).await?;
    let c = get_function(&lambda, "img").await?.configuration.unwrap();
    assert_eq!(c.package_type(), Some(&PackageType::Zip));
    no_op(&h, &calls, &fn_stack(zipped())).await?;

    h.destroy(&fn_stack(zipped())).await?;
    assert!(gone(&lambda, "img").await);
    Ok(())
}

#[tokio::test]
async fn invalid_functions_are_refused_before_any_call() -> anyhow::Result<()> {
    let (h, calls, _) = harness().await?;
    let bin = write_binary(h.dir.path(), "ok");
    let ok =
        || Function::new("ok").code(Code::binary(&bin)).role(ferroform_core::Arn::literal(format!("arn:aws:iam::{}:role/r", h.account.id)));
    let cases: Vec<(Function, &str)> = vec![
        (Function { name: String::new(), ..ok() }, "name"),
        (Function { name: "x".repeat(65), ..ok() }, "name"),
        (Function { name: "has space".into(), ..ok() }, "name"),
        (Function { name: "dots.not.allowed".into(), ..ok() }, "name"),
        (ok().memory_size(127), "memory_size"),
        (ok().memory_size(10241), "memory_size"),
        (ok().timeout(0), "timeout"),
        (ok().timeout(901), "timeout"),
        (ok().code(Code::binary(h.dir.path().join("missing"))), "code"),
        (ok().code(Code::Unavailable { error: "cargo exited with 101".into() }), "code"),
    ];
    for (f, field) in cases {
        let what = format!("{f:?}");
        let mut s = Stack::new(STACK);
        s.add("fn", f);
        let err = h.plan(&s).await.err().map(|e| e.to_string()).unwrap_or_default();
        assert!(err.contains(&format!("fn: field `{field}`")), "{what}: {err}");
        assert_eq!(calls.total(), 0, "{what}: {:?}", calls.snapshot());
    }
    // The limits themselves are fine.
    for f in [Function { name: "a".repeat(64), ..ok() }, ok().memory_size(128).timeout(1), ok().memory_size(10240).timeout(900)] {
        let mut s = Stack::new(STACK);
        s.add("fn", f);
        h.plan(&s).await?;
    }
    Ok(())
}

/// `GetPolicy` of `function`, its statements by `Sid`.
async fn policy(lambda: &aws_sdk_lambda::Client, function: &str) -> anyhow::Result<BTreeMap<String, serde_json::Value>> {
    let out = lambda.get_policy().function_name(function).send().await?;
    let doc: serde_json::Value = serde_json::from_str(out.policy().unwrap_or("{}"))?;
    let list = doc["Statement"].as_array().cloned().unwrap_or_default();
    Ok(list.into_iter().map(|s| (s["Sid"].as_str().unwrap_or_default().to_string(), s)).collect())
}

fn source_arn(statement: &serde_json::Value) -> Option<&str> {
    statement["Condition"]["ArnLike"]["AWS:SourceArn"].as_str()
}

/// Two functions, each invocable by API Gateway from `routes` (`(statement id, source ARN)`).
fn permission_stack(dir: &Path, routes: &[(&str, String)]) -> Stack {
    let mut s = Stack::new(STACK);
    let role = s.add("role", Role::for_service("lambda.amazonaws.com"));
    let bin = write_binary(dir, "perm");
    for f in ["a", "b"] {
        let func = s.add(&format!("fn-{f}"), Function::new(format!("fn-{f}")).code(Code::binary(&bin)).role(role.arn()));
        for (sid, arn) in routes {
            s.add(&format!("perm-{f}-{sid}"), Permission::api_gateway(func.name(), *sid, arn.clone()));
        }
    }
    s
}

#[tokio::test]
async fn permissions_scoped_by_source_arn() -> anyhow::Result<()> {
    let (h, calls, lambda) = harness().await?;
    let api = |path: &str| format!("arn:aws:execute-api:us-east-1:{}:abc123/*/{path}", h.account.id);
    let routes = vec![("get", api("GET/pedidos")), ("post", api("POST/pedidos")), ("delete", api("DELETE/pedidos/*"))];
    let stack = || permission_stack(h.dir.path(), &routes);
    h.apply(&stack()).await?;

    // Independent read: each function's policy, parsed.
    for f in ["fn-a", "fn-b"] {
        let stmts = policy(&lambda, f).await?;
        assert_eq!(stmts.len(), 3, "{stmts:?}");
        for (sid, arn) in &routes {
            let s = &stmts[*sid];
            assert_eq!(s["Effect"], "Allow");
            assert_eq!(s["Principal"]["Service"], "apigateway.amazonaws.com");
            assert_eq!(s["Action"], "lambda:InvokeFunction");
            assert_eq!(source_arn(s), Some(arn.as_str()), "{s}");
        }
    }

    // A no-op plan reads every permission of a function with one GetPolicy: 2 here, not 6.
    let reads = no_op(&h, &calls, &stack()).await?;
    println!("no-op plan of 1 role, 2 functions, 6 permissions: {reads:?}");
    assert_eq!(count(&reads, "GetPolicy"), 2, "{reads:?}");
    assert_eq!(count(&reads, "GetFunction"), 2, "{reads:?}");

    // A new source ARN is a new statement (Lambda has no update): replaced, the other statements untouched.
    let narrowed = vec![("get", api("GET/pedidos/*")), routes[1].clone(), routes[2].clone()];
    let plan = h.plan(&permission_stack(h.dir.path(), &narrowed)).await?;
    assert_eq!(change(&plan, "perm-a-get"), (Action::Replace, vec!["source_arn".into()]), "{}", plan.render(false));
    let mut touched: Vec<&str> = plan.changes.iter().filter(|c| c.action != Action::NoOp).map(|c| c.address.as_str()).collect();
    touched.sort();
    assert_eq!(touched, ["perm-a-get", "perm-b-get"], "{}", plan.render(false));
    h.apply(&permission_stack(h.dir.path(), &narrowed)).await?;
    let stmts = policy(&lambda, "fn-a").await?;
    assert_eq!(stmts.len(), 3);
    assert_eq!(source_arn(&stmts["get"]), Some(api("GET/pedidos/*").as_str()));
    assert_eq!(source_arn(&stmts["post"]), Some(api("POST/pedidos").as_str()));
    no_op(&h, &calls, &permission_stack(h.dir.path(), &narrowed)).await?;

    // Drift: one statement removed, another swapped for a wider grant under the same id.
    lambda.remove_permission().function_name("fn-b").statement_id("post").send().await?;
    lambda.remove_permission().function_name("fn-b").statement_id("delete").send().await?;
    lambda
        .add_permission()
        .function_name("fn-b")
        .statement_id("delete")
        .action("lambda:InvokeFunction")
        .principal("apigateway.amazonaws.com")
        .source_arn(api("*"))
        .send()
        .await?;
    let plan = h.plan(&permission_stack(h.dir.path(), &narrowed)).await?;
    let text = plan.render(false);
    assert_eq!(change(&plan, "perm-b-post").0, Action::Create, "{text}");
    assert_eq!(change(&plan, "perm-b-delete"), (Action::Replace, vec!["source_arn".into()]), "{text}");
    h.apply(&permission_stack(h.dir.path(), &narrowed)).await?;
    let stmts = policy(&lambda, "fn-b").await?;
    assert_eq!(source_arn(&stmts["post"]), Some(api("POST/pedidos").as_str()));
    assert_eq!(source_arn(&stmts["delete"]), Some(api("DELETE/pedidos/*").as_str()));
    no_op(&h, &calls, &permission_stack(h.dir.path(), &narrowed)).await?;

    // Destroy: no statement left (no policy at all), no function.
    h.destroy(&permission_stack(h.dir.path(), &narrowed)).await?;
    assert!(gone(&lambda, "fn-a").await && gone(&lambda, "fn-b").await);
    Ok(())
}

#[tokio::test]
async fn removing_one_permission_leaves_the_others() -> anyhow::Result<()> {
    let (h, calls, lambda) = harness().await?;
    let api = |path: &str| format!("arn:aws:execute-api:us-east-1:{}:abc123/*/{path}", h.account.id);
    let both = vec![("get", api("GET/x")), ("post", api("POST/x"))];
    h.apply(&permission_stack(h.dir.path(), &both)).await?;
    let one = vec![both[0].clone()];
    let plan = h.plan(&permission_stack(h.dir.path(), &one)).await?;
    assert_eq!(change(&plan, "perm-a-post").0, Action::Delete, "{}", plan.render(false));
    h.apply(&permission_stack(h.dir.path(), &one)).await?;
    let stmts = policy(&lambda, "fn-a").await?;
    assert_eq!(stmts.keys().collect::<Vec<_>>(), ["get"]);
    no_op(&h, &calls, &permission_stack(h.dir.path(), &one)).await?;
    h.destroy(&permission_stack(h.dir.path(), &one)).await?;
    Ok(())
}

/// Optional settings removed from the code go back to Lambda's defaults, and a secret's value never shows.
#[tokio::test]
async fn function_settings_removed_from_the_code_go_back_to_lambdas_defaults() -> anyhow::Result<()> {
    let (h, calls, lambda) = harness().await?;
    let bin = write_binary(h.dir.path(), "defaults");
    let bare = || Function::new("defaults").code(Code::binary(&bin));
    // moto 5.2.5 keeps the architecture it was created with (UpdateFunctionCode ignores `Architectures`) and
    // has no logging config, so those two are covered by the unit tests, not here.
    let set = |secret: &str| {
        bare()
            .description("set by the code")
            .memory_size(512)
            .timeout(15)
            .env("TABLE", "pedidos")
            .secret_env("DB_PASSWORD", secret)
            .tag("team", "orders")
    };
    // The create plan shows the variable and hides its value, in text and JSON.
    let plan = h.plan(&fn_stack(set("first-secret-value"))).await?;
    for shown in [plan.render(false), plan.to_json()?] {
        assert!(shown.contains("(sensitive)") && shown.contains("pedidos"), "{shown}");
        assert!(!shown.contains("secret-value"), "{shown}");
    }
    h.apply(&fn_stack(set("first-secret-value"))).await?;
    no_op(&h, &calls, &fn_stack(set("first-secret-value"))).await?;

    // A new secret value: the change shows, the values do not.
    let plan = h.plan(&fn_stack(set("second-secret-value"))).await?;
    assert_eq!(change(&plan, "fn"), (Action::Update, vec!["environment".into()]));
    for shown in [plan.render(false), plan.to_json()?] {
        assert!(shown.contains("environment.DB_PASSWORD") && shown.contains("(sensitive)"), "{shown}");
        assert!(!shown.contains("secret-value"), "{shown}");
    }
    h.apply(&fn_stack(set("second-secret-value"))).await?;

    let plan = h.plan(&fn_stack(bare())).await?;
    let text = plan.render(false);
    assert_eq!(
        change(&plan, "fn"),
        (Action::Update, ["description", "environment", "memory_size", "tags", "timeout"].map(String::from).to_vec()),
        "{text}"
    );
    assert!(text.contains("512 -> 128") && text.contains("15 -> 3"), "{text}");
    // Not asserted: the removed secret's old value stays hidden. The engine takes sensitive paths from the
    // code only, so a secret the code no longer declares shows its last value as removed (reported).
    h.apply(&fn_stack(bare())).await?;

    let got = get_function(&lambda, "defaults").await?;
    let c = got.configuration().unwrap();
    assert_eq!(c.description().unwrap_or_default(), "");
    assert_eq!((c.memory_size(), c.timeout()), (Some(128), Some(3)));
    assert!(c.environment().and_then(|e| e.variables()).is_none_or(|v| v.is_empty()), "{:?}", c.environment());
    let tags = got.tags().cloned().unwrap_or_default();
    assert!(!tags.contains_key("team") && tags.contains_key("ferroform:address"), "{tags:?}");
    no_op(&h, &calls, &fn_stack(bare())).await?;

    h.destroy(&fn_stack(bare())).await?;
    Ok(())
}

/// State and plans hold the code's hash and size, not the path it was built at: the same bytes packaged
/// in another directory (another checkout, CI) plan as no change, and new bytes from there upload.
#[tokio::test]
async fn the_same_code_from_another_directory_plans_no_changes() -> anyhow::Result<()> {
    let (h, calls, lambda) = harness().await?;
    let (first, second) = (tempfile::tempdir()?, tempfile::tempdir()?);
    let code_in = |dir: &Path, content: &str| Code::binary(write_binary(dir, content));
    let func = |code: Code| Function::new("portable").code(code);

    h.apply(&fn_stack(func(code_in(first.path(), "v1")))).await?;
    let state = std::fs::read_to_string(h.state_path())?;
    assert!(!state.contains(first.path().to_str().unwrap()), "state names the build directory:\n{state}");
    let sha_v1 = get_function(&lambda, "portable").await?.configuration().and_then(|c| c.code_sha256()).map(str::to_string);

    // The first checkout is gone; the same code built in the second one.
    let first_path = first.path().to_path_buf();
    first.close()?;
    let from_second = fn_stack(func(code_in(second.path(), "v1")));
    no_op(&h, &calls, &from_second).await?;
    let plan = h.plan(&from_second).await?;
    assert!(!plan.to_json()?.contains(first_path.to_str().unwrap()));

    // New code from the second checkout is found by its hash at upload.
    let v2 = fn_stack(func(code_in(second.path(), "v2")));
    let plan = h.plan(&v2).await?;
    assert_eq!(change(&plan, "fn"), (Action::Update, vec!["code".into()]), "{}", plan.render(false));
    assert!(!plan.to_json()?.contains(second.path().to_str().unwrap()));
    h.apply(&v2).await?;
    let sha_v2 = get_function(&lambda, "portable").await?.configuration().and_then(|c| c.code_sha256()).map(str::to_string);
    assert_ne!(sha_v1, sha_v2);
    assert_eq!(sha_v2.as_deref(), Code::binary(second.path().join("bootstrap-bin")).sha256());
    no_op(&h, &calls, &v2).await?;

    h.destroy(&v2).await?;
    Ok(())
}

/// A permission's conditions removed from the code: the statement is made again without them.
#[tokio::test]
async fn permission_conditions_removed_from_the_code_are_removed() -> anyhow::Result<()> {
    let (h, calls, lambda) = harness().await?;
    let bin = write_binary(h.dir.path(), "perm");
    let account = h.account.id.clone();
    let mk = |conditions: bool| {
        let mut s = Stack::new(STACK);
        let role = s.add("role", Role::for_service("lambda.amazonaws.com"));
        let f = s.add("fn", Function::new("perm").code(Code::binary(&bin)).role(role.arn()));
        let mut p = Permission::new(f.name(), "from-account", account.clone());
        if conditions {
            p = p.source_arn(format!("arn:aws:execute-api:us-east-1:{account}:abc/*/*")).source_account(account.clone());
        }
        s.add("perm", p);
        s
    };
    h.apply(&mk(true)).await?;
    assert!(source_arn(&policy(&lambda, "perm").await?["from-account"]).is_some());
    no_op(&h, &calls, &mk(true)).await?;

    let plan = h.plan(&mk(false)).await?;
    assert_eq!(change(&plan, "perm"), (Action::Replace, vec!["source_account".into(), "source_arn".into()]), "{}", plan.render(false));
    h.apply(&mk(false)).await?;
    let statements = policy(&lambda, "perm").await?;
    let statement = &statements["from-account"];
    assert!(statement.get("Condition").is_none_or(|c| c.is_null()), "{statement}");
    no_op(&h, &calls, &mk(false)).await?;

    h.destroy(&mk(false)).await?;
    Ok(())
}

/// New code changes the function's `code_sha256` output: what uses it is planned "(known after apply)" and
/// follows in the same apply (`Function::UPDATE_CHANGES`).
#[tokio::test]
async fn what_uses_the_code_hash_follows_a_code_update_in_one_apply() -> anyhow::Result<()> {
    let (h, calls, lambda) = harness().await?;
    let mk = |content: &str| {
        let mut s = Stack::new(STACK);
        let role = s.add("role", Role::for_service("lambda.amazonaws.com"));
        let f = s.add("fn", Function::new("upstream").code(Code::binary(write_binary(h.dir.path(), content))).role(role.arn()));
        let bin = h.dir.path().join("consumer-bin");
        std::fs::write(&bin, "#!/bin/sh\n# consumer\n").unwrap();
        s.add("consumer", Function::new("consumer").code(Code::binary(bin)).role(role.arn()).env("UPSTREAM_SHA", f.code_sha256()));
        s
    };
    let env_sha = || async {
        let c = lambda.get_function_configuration().function_name("consumer").send().await?;
        anyhow::Ok(c.environment().and_then(|e| e.variables()).and_then(|v| v.get("UPSTREAM_SHA")).cloned())
    };
    h.apply(&mk("v1")).await?;
    no_op(&h, &calls, &mk("v1")).await?;

    let v2 = mk("v2");
    let plan = h.plan(&v2).await?;
    let text = plan.render(false);
    assert_eq!(change(&plan, "fn"), (Action::Update, vec!["code".into()]), "{text}");
    assert_eq!(change(&plan, "consumer"), (Action::Update, vec!["environment".into()]), "{text}");
    assert!(text.contains("environment.UPSTREAM_SHA") && text.contains("(known after apply)"), "{text}");
    h.apply(&v2).await?;
    let live = get_function(&lambda, "upstream").await?.configuration().and_then(|c| c.code_sha256()).map(str::to_string);
    assert!(live.is_some());
    assert_eq!(env_sha().await?, live, "the consumer got the new hash in the same apply");
    no_op(&h, &calls, &v2).await?;
    h.destroy(&v2).await?;
    Ok(())
}
