//! `serve`: the stack's HTTP APIs, functions and tasks as local processes against the emulator, from the
//! stack's declarations and state and each function's configuration as deployed.

use crate::auth::jwt::{JwksSource, JwtAuthorizer};
use crate::auth::sigv4::Credentials;
use crate::auth::{IamAuth, RouteAuth};
use crate::gateway::{self, Api, Target};
use crate::logs::say;
use crate::program::{self, LocalProgram};
use crate::router::Router;
use crate::runtime::{Function, FunctionSpec};
use crate::tasks::{ContainerRun, TaskDef, TaskRunner};
use anyhow::{bail, Context as _};
use ferroform_aws::apigatewayv2::Cors;
use ferroform_aws::ecs::Container;
use ferroform_aws::lambda::{CargoBin, Code};
use ferroform_core::state::ResourceState;
use ferroform_core::{Stack, State};
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// The first API's port; the next APIs take the following ones.
    pub port: u16,
    /// Instances per function at most.
    pub max_instances: usize,
    /// Where JWT authorizers' keys come from (`serve --jwks`); `None`: `FERROFORM_JWKS`, else each issuer's.
    pub jwks: Option<JwksSource>,
}

impl Default for ServeOptions {
    fn default() -> Self {
        ServeOptions { port: 8080, max_instances: 8, jwks: None }
    }
}

/// `Ok(endpoint)` when the AWS SDK points at an emulator on this machine; else why `serve` refuses.
pub fn local_endpoint() -> anyhow::Result<String> {
    let endpoint = std::env::var("AWS_ENDPOINT_URL").ok();
    check_local(endpoint.as_deref())?;
    Ok(endpoint.unwrap_or_default())
}

fn check_local(endpoint: Option<&str>) -> anyhow::Result<()> {
    let Some(endpoint) = endpoint.filter(|e| !e.trim().is_empty()) else {
        bail!(
            "serve runs a stack against the local emulator only, and AWS_ENDPOINT_URL is not set: the processes it starts \
             would call real AWS with your credentials. Point it at the emulator (`scripts/deploy-local serve`, or \
             `source .ferroform/emulator.env`)"
        )
    };
    let host = endpoint.split("://").nth(1).unwrap_or(endpoint).split('/').next().unwrap_or_default();
    let host = match host.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or_default(),
        None => host.rsplit_once(':').map(|(h, _)| h).unwrap_or(host),
    };
    if !matches!(host, "localhost" | "::1") && !host.starts_with("127.") {
        bail!(
            "serve runs a stack against the local emulator only, and AWS_ENDPOINT_URL={endpoint} is not on this machine: \
             the processes it starts would act on that endpoint's real resources"
        );
    }
    Ok(())
}

fn of_type<'a>(state: &'a State, type_name: &'a str) -> impl Iterator<Item = (&'a String, &'a ResourceState)> + 'a {
    state.resources.iter().filter(move |(_, r)| r.type_name == type_name)
}

fn text(v: &Value, key: &str) -> Option<String> {
    v.get(key).and_then(Value::as_str).map(String::from)
}

/// `...:function:NAME[:qualifier]` inside a function ARN or an invoke ARN.
fn function_name_of(uri: &str) -> Option<String> {
    let rest = uri.split(":function:").nth(1)?;
    Some(rest.split(['/', ':']).next()?.to_string())
}

/// The environment every process gets from `serve`: the emulator's endpoints and credentials, the region,
/// and what a program needs to run at all.
fn base_env(region: &str) -> BTreeMap<String, String> {
    let mut env: BTreeMap<String, String> = std::env::vars()
        .filter(|(k, _)| {
            k.starts_with("AWS_ENDPOINT_URL")
                || matches!(
                    k.as_str(),
                    "AWS_ACCESS_KEY_ID" | "AWS_SECRET_ACCESS_KEY" | "AWS_SESSION_TOKEN" | "PATH" | "HOME" | "TMPDIR" | "RUST_BACKTRACE"
                )
        })
        .collect();
    env.insert("AWS_REGION".into(), region.into());
    env.insert("AWS_DEFAULT_REGION".into(), region.into());
    env
}

/// The local program of a declared function: its cargo binary, or what the stack declared for it.
fn function_program(stack: &Stack, address: &str) -> Result<LocalProgram, String> {
    if let Some(p) = program::declared_for(address, None) {
        return Ok(p);
    }
    let declared =
        stack.resources().iter().find(|d| d.address == address).ok_or_else(|| format!("{address} is not in the stack's code"))?;
    let code: Code = serde_json::from_value(declared.inputs["code"].clone()).map_err(|e| format!("{address}: its code: {e}"))?;
    match &code {
        Code::Zip { .. } => CargoBin::declared()
            .into_iter()
            .find(|(_, c)| *c == code)
            .map(|(bin, _)| LocalProgram::CargoBin { bin: bin.bin_name().to_string(), package: bin.package_name().map(String::from) })
            .ok_or_else(|| "a zip not built from a cargo binary: declare its program with ferroform::local::function(..)".to_string()),
        Code::Image { uri } => Err(format!(
            "an image ({uri}): declare its local program with ferroform::local::function(\"{address}\", LocalProgram::cargo_bin(..))"
        )),
        Code::Unavailable { error } => Err(error.clone()),
    }
}

/// Where the processes `serve` starts are pointed: the emulator's SDK configuration (what `serve` itself
/// calls) and the environment every child gets (endpoint, credentials, region, PATH).
#[derive(Debug, Clone)]
pub struct Emulator {
    pub sdk: aws_config::SdkConfig,
    pub env: BTreeMap<String, String>,
}

impl Emulator {
    /// From this process's environment; refused unless `AWS_ENDPOINT_URL` is on this machine.
    pub async fn from_env() -> anyhow::Result<Emulator> {
        local_endpoint()?;
        let sdk = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
        let region = sdk.region().map(|r| r.to_string()).unwrap_or_else(|| "us-east-1".into());
        Ok(Emulator { sdk, env: base_env(&region) })
    }

    /// An SDK configuration and the children's environment (`AWS_ENDPOINT_URL`, credentials, `AWS_REGION`);
    /// PATH and HOME are added from this process.
    pub fn new(sdk: aws_config::SdkConfig, env: impl IntoIterator<Item = (String, String)>) -> anyhow::Result<Emulator> {
        let env: BTreeMap<String, String> = env.into_iter().collect();
        check_local(env.get("AWS_ENDPOINT_URL").map(String::as_str))?;
        let mut all: BTreeMap<String, String> =
            std::env::vars().filter(|(k, _)| matches!(k.as_str(), "PATH" | "HOME" | "TMPDIR" | "RUST_BACKTRACE")).collect();
        all.extend(env);
        Ok(Emulator { sdk, env: all })
    }
}

/// Runs until `stop` turns true: [`start`], print where, wait.
pub async fn serve(stack: &Stack, state: State, opts: ServeOptions, stop: watch::Receiver<bool>) -> anyhow::Result<()> {
    let emulator = Emulator::from_env().await?;
    let served = start(stack, &state, &emulator, &opts, stop.clone()).await?;
    say("Serving; Ctrl-C stops every process.");
    served.wait(stop).await;
    Ok(())
}

/// What [`start`] started.
pub struct Served {
    /// Each API: its address in the stack, its name, where it listens.
    pub apis: Vec<(String, String, std::net::SocketAddr)>,
    servers: Vec<tokio::task::JoinHandle<()>>,
    tasks: tokio::task::JoinHandle<()>,
}

impl Served {
    /// The local URL of the API at `address` in the stack.
    pub fn url(&self, address: &str) -> Option<String> {
        self.apis.iter().find(|(a, _, _)| a == address).map(|(_, _, addr)| format!("http://{addr}"))
    }

    /// Until `stop` turns true; then every listener closes and every process is killed.
    pub async fn wait(self, mut stop: watch::Receiver<bool>) {
        while !*stop.borrow() {
            if stop.changed().await.is_err() {
                break;
            }
        }
        for s in &self.servers {
            s.abort();
        }
        self.tasks.abort();
        // Instances and task processes watch `stop` too and are killed; give them a moment.
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

/// Builds the functions' and containers' programs, opens a listener per API (from `opts.port` up; 0 for
/// any free port) and starts the task runner. Processes stop when `stop` turns true. JWT authorizers'
/// keys come from `opts.jwks`, else `FERROFORM_JWKS` (a JWKS file or URL), else from each issuer.
pub async fn start(
    stack: &Stack,
    state: &State,
    emulator: &Emulator,
    opts: &ServeOptions,
    stop: watch::Receiver<bool>,
) -> anyhow::Result<Served> {
    let jwks = opts.jwks.clone().unwrap_or_else(JwksSource::from_env);
    start_with(stack, state, emulator, opts, &jwks, stop).await
}

/// [`start`] with the keys of JWT authorizers from `jwks`.
pub async fn start_with(
    stack: &Stack,
    state: &State,
    emulator: &Emulator,
    opts: &ServeOptions,
    jwks: &JwksSource,
    stop: watch::Receiver<bool>,
) -> anyhow::Result<Served> {
    if state.resources.is_empty() {
        bail!("stack `{}` has no state yet: apply it to the emulator first (`scripts/deploy-local`)", stack.name());
    }
    if state.stack != stack.name() {
        bail!("the state is stack `{}`'s, not `{}`'s: pass this stack's --state", state.stack, stack.name());
    }
    let aws = &emulator.sdk;
    let lambda = aws_sdk_lambda::Client::new(aws);
    let logs = aws_sdk_cloudwatchlogs::Client::new(aws);
    let ecs = aws_sdk_ecs::Client::new(aws);
    let env = emulator.env.clone();
    let account_id = state.account.as_ref().map(|a| a.account.clone()).unwrap_or_else(|| "123456789012".into());

    // Integrations by target (`integrations/ID`): the function they call.
    let mut integration_function: BTreeMap<String, String> = BTreeMap::new();
    for (_, r) in of_type(state, "aws_apigatewayv2_integration") {
        if let (Some(target), Some(name)) =
            (text(&r.outputs, "target"), text(&r.inputs, "integration_uri").as_deref().and_then(function_name_of))
        {
            integration_function.insert(target, name);
        }
    }
    let function_addresses: BTreeMap<String, String> =
        of_type(state, "aws_lambda_function").filter_map(|(a, r)| Some((text(&r.inputs, "name")?, a.clone()))).collect();

    // Functions, once each, with their deployed configuration and native build.
    let mut functions: BTreeMap<String, Target> = BTreeMap::new();
    for name in integration_function.values() {
        if functions.contains_key(name) {
            continue;
        }
        let program = function_addresses
            .get(name)
            .ok_or_else(|| "not a function of this stack".to_string())
            .and_then(|address| function_program(stack, address));
        let unavailable = |why: String| {
            say(&format!("function {name} can't run here: {why}"));
            Target::Unavailable(why)
        };
        let target = match program {
            Ok(program) => {
                // Code that does not build is the user's to fix before anything is served.
                let built = build(&program).await.with_context(|| format!("function {name}: its program can't be built"))?;
                match prepare_function(name, built, &lambda, &env, &logs, opts, stop.clone()).await {
                    Ok(f) => Target::Function(f),
                    Err(why) => unavailable(why),
                }
            }
            Err(why) => unavailable(why),
        };
        functions.insert(name.clone(), target);
    }

    let runner = Arc::new(TaskRunner {
        ecs,
        logs: logs.clone(),
        clusters: of_type(state, "aws_ecs_cluster").filter_map(|(_, r)| text(&r.outputs, "arn")).collect(),
        definitions: task_definitions(state).await?,
        base_env: env.clone(),
    });
    for def in &runner.definitions {
        for c in &def.containers {
            match &c.program {
                Ok((p, _)) => say(&format!("task {} container {}: runs {}", def.arn, c.name, p.display())),
                Err(why) => say(&format!("task {} container {}: can't run here: {why}", def.arn, c.name)),
            }
        }
    }
    let seen = runner.already_running().await;

    let mut servers = Vec::new();
    let mut apis = Vec::new();
    let mut port = opts.port;
    for (address, r) in of_type(state, "aws_apigatewayv2_api") {
        let id = text(&r.outputs, "id").or_else(|| r.id.clone()).unwrap_or_default();
        let name = text(&r.inputs, "name").unwrap_or_else(|| address.clone());
        let cors: Option<Cors> =
            r.inputs.get("cors").cloned().and_then(|c| serde_json::from_value(c).ok()).filter(|c: &Cors| *c != Cors::none());
        let mut router = Router::default();
        let mut targets = BTreeMap::new();
        for (_, route) in
            of_type(state, "aws_apigatewayv2_route").filter(|(_, rt)| text(&rt.inputs, "api_id").as_deref() == Some(id.as_str()))
        {
            let Some(key) = text(&route.inputs, "route_key") else { continue };
            if let Err(e) = router.add(&key) {
                say(&format!("api {name}: {e}"));
                continue;
            }
            let target = text(&route.inputs, "target")
                .and_then(|t| integration_function.get(&t))
                .and_then(|f| functions.get(f).cloned())
                .unwrap_or_else(|| Target::Unavailable(format!("route `{key}` has no Lambda integration this stack declares")));
            targets.insert(key, target);
        }
        let auth = route_auth(state, &id, emulator, &account_id, jwks).await;
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
            .await
            .with_context(|| format!("can't listen on 127.0.0.1:{port} for API {name} (in use? pass --port)"))?;
        let local = listener.local_addr()?;
        say(&format!("API {name} ({address}): http://{local}"));
        for key in targets.keys() {
            say(&format!("  {key}{}", describe(auth.get(key))));
        }
        apis.push((address.clone(), name.clone(), local));
        let api = Arc::new(Api { id, name, account_id: account_id.clone(), cors, router, targets, auth });
        servers.push(tokio::spawn(gateway::serve(api, listener)));
        if port != 0 {
            port = port.checked_add(1).context("out of ports")?;
        }
    }

    let tasks = tokio::spawn(runner.run(seen, stop.clone()));
    Ok(Served { apis, servers, tasks })
}

/// A route's authorization as deployed: type, authorizer id, scopes.
#[derive(Debug, Clone, Default, PartialEq)]
struct Deployed {
    authorization_type: String,
    authorizer_id: Option<String>,
    scopes: Vec<String>,
}

/// A JWT authorizer as deployed: issuer, audience, identity sources.
type JwtConfig = (String, Vec<String>, Vec<String>);

/// Who may call each route of API `api_id`, by route key: what the emulator holds (GetRoutes, GetAuthorizer),
/// or the state's record of what was applied when the emulator can't say.
async fn route_auth(state: &State, api_id: &str, emulator: &Emulator, account_id: &str, jwks: &JwksSource) -> BTreeMap<String, RouteAuth> {
    let aws = ferroform_aws::Aws::from_config(emulator.sdk.clone());
    let routes = match deployed_routes(&aws, api_id).await {
        Ok(routes) => routes,
        Err(why) => {
            say(&format!("api {api_id}: GetRoutes: {why}; using the state's routes"));
            of_type(state, "aws_apigatewayv2_route")
                .filter(|(_, r)| text(&r.inputs, "api_id").as_deref() == Some(api_id))
                .filter_map(|(_, r)| {
                    let scopes = r.inputs.get("authorization_scopes").cloned().and_then(|v| serde_json::from_value(v).ok());
                    Some((
                        text(&r.inputs, "route_key")?,
                        Deployed {
                            authorization_type: text(&r.inputs, "authorization_type").unwrap_or_else(|| "NONE".into()),
                            authorizer_id: text(&r.inputs, "authorizer_id"),
                            scopes: scopes.unwrap_or_default(),
                        },
                    ))
                })
                .collect()
        }
    };
    let region = emulator.sdk.region().map(|r| r.to_string()).unwrap_or_else(|| "us-east-1".into());
    let iam = match (emulator.env.get("AWS_ACCESS_KEY_ID"), emulator.env.get("AWS_SECRET_ACCESS_KEY")) {
        (Some(id), Some(secret)) => Ok(Arc::new(IamAuth {
            credentials: Credentials {
                access_key_id: id.clone(),
                secret_access_key: secret.clone(),
                session_token: emulator.env.get("AWS_SESSION_TOKEN").filter(|t| !t.is_empty()).cloned(),
            },
            region,
            account_id: account_id.to_string(),
        })),
        _ => Err("AWS_IAM routes need the emulator's keys in AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY".to_string()),
    };
    let mut authorizers: BTreeMap<String, Result<Arc<JwtAuthorizer>, String>> = BTreeMap::new();
    let mut keys: BTreeMap<String, Result<Arc<crate::auth::jwt::Jwks>, String>> = BTreeMap::new();
    let mut out = BTreeMap::new();
    for (key, route) in routes {
        let auth = match route.authorization_type.as_str() {
            "NONE" | "" => RouteAuth::Open,
            "AWS_IAM" => match &iam {
                Ok(iam) => RouteAuth::Iam(iam.clone()),
                Err(why) => RouteAuth::Unchecked(why.clone()),
            },
            "JWT" => {
                let id = route.authorizer_id.clone().unwrap_or_default();
                if !authorizers.contains_key(&id) {
                    let made = match jwt_config(&aws, state, api_id, &id).await {
                        Ok((issuer, audience, identity_source)) => {
                            if !keys.contains_key(&issuer) {
                                let loaded = jwks.load(&issuer).await.map(Arc::new);
                                if let Err(why) = &loaded {
                                    say(&format!("api {api_id}: the keys of issuer {issuer}: {why}; its tokens are refused"));
                                }
                                keys.insert(issuer.clone(), loaded);
                            }
                            let keys = keys.get(&issuer).cloned().unwrap_or_else(|| Err("not loaded".into()));
                            Ok(Arc::new(JwtAuthorizer { issuer, audience, identity_source, keys }))
                        }
                        Err(why) => Err(why),
                    };
                    authorizers.insert(id.clone(), made);
                }
                match authorizers.get(&id) {
                    Some(Ok(authorizer)) => RouteAuth::Jwt { authorizer: authorizer.clone(), scopes: route.scopes },
                    Some(Err(why)) => RouteAuth::Unchecked(why.clone()),
                    None => RouteAuth::Unchecked(format!("authorizer {id}: not read")),
                }
            }
            other => RouteAuth::Unchecked(format!("{other} authorizers don't run here")),
        };
        if let RouteAuth::Unchecked(why) = &auth {
            say(&format!("api {api_id} route `{key}`: {why}; every call is refused"));
        }
        out.insert(key, auth);
    }
    out
}

/// Every route's authorization, by route key (GetRoutes, all pages).
async fn deployed_routes(aws: &ferroform_aws::Aws, api_id: &str) -> Result<BTreeMap<String, Deployed>, String> {
    let mut out = BTreeMap::new();
    let mut next: Option<String> = None;
    loop {
        let page = aws
            .apigatewayv2()
            .get_routes()
            .api_id(api_id)
            .set_next_token(next.take())
            .send()
            .await
            .map_err(|e| aws_sdk_lambda::error::DisplayErrorContext(&e).to_string())?;
        for route in page.items.unwrap_or_default() {
            let Some(key) = route.route_key else { continue };
            let deployed = Deployed {
                authorization_type: route.authorization_type.map(|t| t.as_str().to_string()).unwrap_or_else(|| "NONE".into()),
                authorizer_id: route.authorizer_id.filter(|id| !id.is_empty()),
                scopes: route.authorization_scopes.unwrap_or_default(),
            };
            out.insert(key, deployed);
        }
        match page.next_token.filter(|t| !t.is_empty()) {
            Some(token) => next = Some(token),
            None => return Ok(out),
        }
    }
}

/// Authorizer `id` of API `api_id` (GetAuthorizer; else the state's record of it): issuer, audience,
/// identity sources.
async fn jwt_config(aws: &ferroform_aws::Aws, state: &State, api_id: &str, id: &str) -> Result<JwtConfig, String> {
    let read = aws.apigatewayv2().get_authorizer().api_id(api_id).authorizer_id(id).send().await;
    match read {
        Ok(a) => {
            let jwt = a.jwt_configuration.ok_or_else(|| format!("authorizer {id} is not a JWT authorizer"))?;
            let issuer = jwt.issuer.ok_or_else(|| format!("authorizer {id} has no issuer"))?;
            Ok((issuer, jwt.audience.unwrap_or_default(), a.identity_source.unwrap_or_default()))
        }
        Err(e) => {
            let why = aws_sdk_lambda::error::DisplayErrorContext(&e).to_string();
            let (_, r) = of_type(state, "aws_apigatewayv2_authorizer")
                .find(|(_, r)| text(&r.outputs, "id").as_deref() == Some(id))
                .ok_or_else(|| format!("authorizer {id}: GetAuthorizer: {why}"))?;
            let list = |k: &str| r.inputs.get(k).cloned().and_then(|v| serde_json::from_value(v).ok()).unwrap_or_default();
            let issuer = text(&r.inputs, "issuer").ok_or_else(|| format!("authorizer {id} has no issuer"))?;
            Ok((issuer, list("audience"), list("identity_source")))
        }
    }
}

/// How a route is protected, for the list `serve` prints.
fn describe(auth: Option<&RouteAuth>) -> String {
    match auth {
        None | Some(RouteAuth::Open) => String::new(),
        Some(RouteAuth::Jwt { authorizer, scopes }) if scopes.is_empty() => format!("  (JWT from {})", authorizer.issuer),
        Some(RouteAuth::Jwt { authorizer, scopes }) => format!("  (JWT from {}, scopes {})", authorizer.issuer, scopes.join(" ")),
        Some(RouteAuth::Iam(_)) => "  (AWS_IAM: SigV4 with the emulator's keys)".into(),
        Some(RouteAuth::Unchecked(_)) => "  (refused: its authorizer can't be checked here)".into(),
    }
}

/// Builds a local program (cargo, when it is a cargo binary): the executable and its arguments.
async fn build(program: &LocalProgram) -> anyhow::Result<(std::path::PathBuf, Vec<String>)> {
    let p = program.clone();
    let built = tokio::task::spawn_blocking(move || p.prepare()).await.context("the build's thread")?;
    built.map_err(|why| anyhow::anyhow!("{}: {why}", program.describe()))
}

/// The function as deployed (GetFunctionConfiguration) around its built program.
async fn prepare_function(
    name: &str,
    (exe, args): (std::path::PathBuf, Vec<String>),
    lambda: &aws_sdk_lambda::Client,
    env: &BTreeMap<String, String>,
    logs: &aws_sdk_cloudwatchlogs::Client,
    opts: &ServeOptions,
    stop: watch::Receiver<bool>,
) -> Result<Arc<Function>, String> {
    let config = lambda
        .get_function_configuration()
        .function_name(name)
        .send()
        .await
        .map_err(|e| format!("GetFunctionConfiguration: {}", aws_sdk_lambda::error::DisplayErrorContext(&e)))?;
    let memory = config.memory_size.unwrap_or(128);
    let timeout = Duration::from_secs(u64::try_from(config.timeout.unwrap_or(3)).unwrap_or(3));
    let log_group = config.logging_config.as_ref().and_then(|l| l.log_group.clone()).unwrap_or_else(|| format!("/aws/lambda/{name}"));
    let mut vars = env.clone();
    vars.extend(config.environment.and_then(|e| e.variables).unwrap_or_default());
    vars.insert("AWS_LAMBDA_FUNCTION_NAME".into(), name.into());
    vars.insert("AWS_LAMBDA_FUNCTION_MEMORY_SIZE".into(), memory.to_string());
    vars.insert("AWS_LAMBDA_FUNCTION_VERSION".into(), "$LATEST".into());
    vars.insert("AWS_LAMBDA_LOG_GROUP_NAME".into(), log_group.clone());
    vars.insert("AWS_EXECUTION_ENV".into(), "AWS_Lambda_provided.al2023".into());
    let arn = config.function_arn.unwrap_or_default();
    say(&format!("function {name}: {} ({} MB, {} s timeout, logs {log_group})", exe.display(), memory, timeout.as_secs()));
    let spec = FunctionSpec {
        name: name.into(),
        arn,
        program: exe,
        args,
        env: vars,
        timeout,
        max_instances: opts.max_instances,
        log_group: Some(log_group),
    };
    Ok(Function::new(spec, Some(logs.clone()), stop))
}

/// The stack's task definitions as applied, with each container's local program (built now: a failed
/// build is an error).
async fn task_definitions(state: &State) -> anyhow::Result<Vec<TaskDef>> {
    let mut defs = Vec::new();
    for (address, r) in of_type(state, "aws_ecs_task_definition") {
        let Some(arn) = text(&r.outputs, "arn") else { continue };
        let containers: Vec<Container> =
            r.inputs.get("containers").cloned().and_then(|c| serde_json::from_value(c).ok()).unwrap_or_default();
        let mut runs = Vec::new();
        for c in containers {
            let program = match program::declared_for(address, Some(&c.name)) {
                Some(p) => Ok(build(&p)
                    .await
                    .with_context(|| format!("task definition {address} container {}: its program can't be built", c.name))?),
                None => Err(format!(
                    "image {} has no local program: declare one with ferroform::local::container(\"{address}\", \"{}\", LocalProgram::cargo_bin(..))",
                    c.image, c.name
                )),
            };
            runs.push(ContainerRun {
                name: c.name.clone(),
                essential: c.essential,
                program,
                env: c.environment.clone(),
                logs: c.logs.as_ref().map(|l| (l.group.clone(), l.stream_prefix.clone())),
            });
        }
        defs.push(TaskDef { arn, containers: runs });
    }
    Ok(defs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_endpoints_on_this_machine_are_served() {
        for ok in ["http://127.0.0.1:5000", "http://localhost:4566/", "http://[::1]:5000", "http://127.0.0.2:1"] {
            assert!(check_local(Some(ok)).is_ok(), "{ok}");
        }
        for refused in ["https://dynamodb.us-east-1.amazonaws.com", "http://10.0.0.5:4566", "http://localhost.evil.com:80"] {
            let e = check_local(Some(refused)).unwrap_err().to_string();
            assert!(e.contains("is not on this machine"), "{e}");
        }
        assert!(check_local(None).unwrap_err().to_string().contains("AWS_ENDPOINT_URL is not set"));
    }

    /// An emulator nothing calls: every refusal below comes before the first call.
    fn nowhere() -> Emulator {
        let sdk = aws_config::SdkConfig::builder()
            .behavior_version(aws_config::BehaviorVersion::latest())
            .region(aws_config::Region::new("us-east-1"))
            .endpoint_url("http://127.0.0.1:9")
            .build();
        Emulator::new(sdk, [("AWS_ENDPOINT_URL".to_string(), "http://127.0.0.1:9".to_string())]).unwrap()
    }

    fn resource(type_name: &str, inputs: Value, outputs: Value) -> ResourceState {
        serde_json::from_value(serde_json::json!({
            "type": type_name, "id": "x", "inputs": inputs, "outputs": outputs, "dependencies": [],
        }))
        .unwrap()
    }

    /// A state holding one HTTP API named `orders` (no routes).
    fn one_api(stack: &str) -> State {
        let mut state = State::new(stack);
        state.resources.insert(
            "api".into(),
            resource("aws_apigatewayv2_api", serde_json::json!({"name": "orders"}), serde_json::json!({"id": "abc"})),
        );
        state
    }

    async fn start_err(stack: &Stack, state: &State, port: u16) -> String {
        let (_stop, stopped) = watch::channel(false);
        let opts = ServeOptions { port, max_instances: 1, jwks: None };
        match start(stack, state, &nowhere(), &opts, stopped).await {
            Ok(_) => panic!("served"),
            Err(e) => format!("{e:#}"),
        }
    }

    #[tokio::test]
    async fn a_stack_with_no_state_yet_is_refused() {
        let e = start_err(&Stack::new("pedidos"), &State::new("pedidos"), 0).await;
        assert!(e.contains("stack `pedidos` has no state yet: apply it to the emulator first"), "{e}");
    }

    #[tokio::test]
    async fn another_stacks_state_is_refused() {
        let e = start_err(&Stack::new("hello"), &one_api("pedidos"), 0).await;
        assert!(e.contains("the state is stack `pedidos`'s, not `hello`'s"), "{e}");
    }

    #[tokio::test]
    async fn a_port_in_use_is_named() {
        let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = taken.local_addr().unwrap().port();
        let e = start_err(&Stack::new("pedidos"), &one_api("pedidos"), port).await;
        assert!(e.contains(&format!("can't listen on 127.0.0.1:{port} for API orders (in use? pass --port)")), "{e}");
        // The next free port serves.
        let (_stop, stopped) = watch::channel(false);
        let served = start(
            &Stack::new("pedidos"),
            &one_api("pedidos"),
            &nowhere(),
            &ServeOptions { port: 0, max_instances: 1, jwks: None },
            stopped,
        )
        .await
        .unwrap();
        assert_eq!(served.apis.len(), 1);
    }

    /// A function whose program does not build stops `serve` before anything is served, naming the
    /// function, its program and cargo's reason.
    #[tokio::test]
    async fn a_function_whose_program_does_not_build_is_named() {
        let mut state = one_api("shop");
        state
            .resources
            .insert("fn".into(), resource("aws_lambda_function", serde_json::json!({"name": "shop-api"}), serde_json::json!({})));
        state.resources.insert(
            "integration".into(),
            resource(
                "aws_apigatewayv2_integration",
                serde_json::json!({"api_id": "abc", "integration_uri": "arn:aws:lambda:us-east-1:123456789012:function:shop-api"}),
                serde_json::json!({"target": "integrations/i1"}),
            ),
        );
        program::function("fn", LocalProgram::cargo_bin("shop-api-no-such-bin"));
        let e = start_err(&Stack::new("shop"), &state, 0).await;
        assert!(e.starts_with("function shop-api: its program can't be built: cargo binary `shop-api-no-such-bin`"), "{e}");
        assert!(e.contains("`cargo build --bin shop-api-no-such-bin` failed: error: no bin target named `shop-api-no-such-bin`"), "{e}");
    }

    #[test]
    fn function_names_from_arns() {
        assert_eq!(function_name_of("arn:aws:lambda:us-east-1:123:function:pedidos-api").as_deref(), Some("pedidos-api"));
        assert_eq!(
            function_name_of(
                "arn:aws:apigateway:us-east-1:lambda:path/2015-03-31/functions/arn:aws:lambda:us-east-1:123:function:f/invocations"
            )
            .as_deref(),
            Some("f")
        );
        assert_eq!(function_name_of("https://example.com"), None);
    }
}
