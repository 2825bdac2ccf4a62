//! One function per command, each a thin adapter over an engine verb.

use crate::progress::Progress;
use crate::signals::Signals;
use crate::{Command, Opts, RunArgs, StateCommand};
use anyhow::{bail, Context as _};
use ferroform_core::{Action, Backend, Contexts, Engine, Plan, PlanOptions, Stack};
use std::io::{BufRead, IsTerminal, Write};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

pub(crate) struct Ctx<'a> {
    pub stack: Stack,
    pub backend: Arc<dyn Backend>,
    pub contexts: Contexts,
    pub opts: &'a Opts,
    pub color: bool,
    pub signals: &'a Signals,
    pub server: Option<crate::ServeFn>,
    pub extras: Vec<(String, crate::ExtraCommand)>,
}

impl Ctx<'_> {
    fn engine(&self, parallelism: usize) -> Engine {
        Engine::new(self.backend.clone())
            .contexts(self.contexts.clone())
            .parallelism(parallelism)
            .reporter(Arc::new(Progress { color: self.color }))
            .interrupt(self.signals.stop.clone())
            .abort(self.signals.abort.clone())
            .grace(Duration::from_secs(self.opts.grace))
            .lock_timeout(Duration::from_secs(self.opts.lock_timeout))
    }
}

pub(crate) async fn run(ctx: Ctx<'_>) -> anyhow::Result<ExitCode> {
    match &ctx.opts.command {
        Command::Plan { run, json, out, destroy, detailed_exitcode } => {
            plan(&ctx, run, *json, out.as_deref(), *destroy, *detailed_exitcode).await
        }
        Command::Apply { plan_file, run, auto_approve } => apply(&ctx, run, plan_file.as_deref(), *auto_approve, false).await,
        Command::Destroy { run, auto_approve } => apply(&ctx, run, None, *auto_approve, true).await,
        Command::Refresh => {
            let state = ctx.engine(10).refresh(&ctx.stack).await?;
            println!("Refreshed {} resource(s).", state.resources.len());
            Ok(ExitCode::SUCCESS)
        }
        Command::Validate => {
            ctx.engine(1).validate(&ctx.stack)?;
            println!("Success! The stack is valid ({} resources).", ctx.stack.resources().len());
            Ok(ExitCode::SUCCESS)
        }
        Command::Output { name, json, raw } => output(&ctx, name.as_deref(), *json, *raw).await,
        Command::Graph => {
            print!("{}", ctx.engine(1).graph(&ctx.stack)?);
            Ok(ExitCode::SUCCESS)
        }
        Command::Show { plan_file, json } => {
            let bytes = std::fs::read(plan_file).with_context(|| format!("reading the plan file {plan_file}"))?;
            let plan = Plan::from_json(&bytes).with_context(|| format!("plan file {plan_file}"))?;
            if *json {
                println!("{}", plan.to_json()?);
            } else {
                print!("{}", plan.render(ctx.color));
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Import { from_terraform: Some(location), map, .. } => from_terraform(&ctx, location, map.as_deref()).await,
        Command::Import { address: Some(address), id: Some(id), .. } => {
            let entry = ctx.engine(1).import(&ctx.stack, address, id).await?;
            println!("{address}: imported {} {id}. Run `plan` to see how it differs from the code.", entry.type_name);
            Ok(ExitCode::SUCCESS)
        }
        Command::Import { .. } => bail!("import takes ADDRESS ID, or --from-terraform PATH"),
        Command::State(cmd) => state(&ctx, cmd).await,
        Command::Serve { port, max_instances, jwks } => {
            let Some(server) = ctx.server.clone() else { bail!("this program was built without a local runtime: no `serve`") };
            let state = ctx.engine(1).state(ctx.stack.name()).await?;
            // The first signal asks serving to stop (every process it started is killed), not to exit at once.
            let args = crate::ServeArgs { port: *port, max_instances: *max_instances, jwks: jwks.clone() };
            server(&ctx.stack, state, args, ctx.signals.stop.clone()).await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Extra(args) => {
            let name = args.first().map(String::as_str).unwrap_or_default();
            let Some((_, run)) = ctx.extras.iter().find(|(n, _)| n == name) else {
                let known: Vec<&str> = ctx.extras.iter().map(|(n, _)| n.as_str()).collect();
                if known.is_empty() {
                    bail!("unknown command `{name}`; see --help for the commands")
                }
                bail!("unknown command `{name}` (this program adds: {}; see --help for the others)", known.join(", "))
            };
            // The outputs, when there is state: a command may need them (`smoke` calls `api_url`).
            let outputs = ctx.engine(1).outputs(ctx.stack.name()).await.unwrap_or_default();
            run(args[1..].to_vec(), outputs.into_iter().map(|(k, o)| (k, o.value)).collect()).await
        }
        // Run by `Cli::execute` before any backend exists.
        Command::Check { .. } => bail!("`check` needs no state and runs before it is opened"),
        Command::ForceUnlock { lock_id } => {
            ctx.engine(1).force_unlock(lock_id).await?;
            println!("The state lock was removed.");
            Ok(ExitCode::SUCCESS)
        }
    }
}

async fn plan(ctx: &Ctx<'_>, run: &RunArgs, json: bool, out: Option<&str>, destroy: bool, detailed: bool) -> anyhow::Result<ExitCode> {
    let plan = ctx.engine(run.parallelism).plan(&ctx.stack, &plan_options(run, destroy)).await?;
    if json {
        println!("{}", plan.to_json()?);
    } else {
        print!("{}", plan.render(ctx.color));
    }
    if let Some(path) = out {
        ferroform_core::write_atomic(std::path::Path::new(path), plan.to_json()?.as_bytes())?;
        if !json {
            println!("\nSaved the plan to {path}. To apply exactly this plan: `apply {path}`");
        }
    }
    Ok(if detailed && plan.has_changes() { ExitCode::from(2) } else { ExitCode::SUCCESS })
}

async fn apply(ctx: &Ctx<'_>, run: &RunArgs, plan_file: Option<&str>, auto_approve: bool, destroy: bool) -> anyhow::Result<ExitCode> {
    let engine = ctx.engine(run.parallelism);
    let session = match plan_file {
        Some(path) => {
            let bytes = std::fs::read(path).with_context(|| format!("reading the plan file {path}"))?;
            // Name the file in every refusal: "the plan" alone doesn't say which.
            let saved = Plan::from_json(&bytes).with_context(|| format!("plan file {path}"))?;
            if saved.destroy != destroy && destroy {
                bail!("{path} is not a destroy plan");
            }
            // A saved plan was reviewed when it was made: no second question.
            engine.begin_saved(&ctx.stack, &saved).await.with_context(|| format!("plan file {path}"))?
        }
        None => {
            let session = engine.begin(&ctx.stack, &plan_options(run, destroy)).await?;
            print!("{}", session.plan().render(ctx.color));
            if !session.plan().has_changes() {
                session.release().await;
                print_outputs(ctx).await?;
                return Ok(ExitCode::SUCCESS);
            }
            if !auto_approve {
                match confirm(destroy) {
                    Ok(true) => {}
                    Ok(false) => {
                        session.release().await;
                        println!("Apply cancelled.");
                        return Ok(ExitCode::FAILURE);
                    }
                    Err(e) => {
                        session.release().await;
                        return Err(e);
                    }
                }
            }
            session
        }
    };
    let plan = session.plan().clone();
    session.apply().await?;
    let s = plan.summary;
    let changed = plan.changes.iter().filter(|c| c.action == Action::Update).count();
    if destroy {
        println!("\nDestroy complete! Resources: {} destroyed.", s.destroy);
    } else {
        println!("\nApply complete! Resources: {} added, {changed} changed, {} destroyed.", s.add, s.destroy);
        print_outputs(ctx).await?;
    }
    Ok(ExitCode::SUCCESS)
}

fn plan_options(run: &RunArgs, destroy: bool) -> PlanOptions {
    PlanOptions {
        destroy,
        targets: run.targets.clone(),
        replace: run.replace.clone(),
        refresh_only: run.refresh_only,
        skip_refresh: !run.refresh,
    }
}

fn confirm(destroy: bool) -> anyhow::Result<bool> {
    if !std::io::stdin().is_terminal() {
        bail!("there is no terminal to confirm on; review the plan and pass --auto-approve (or apply a saved plan file)");
    }
    let what = if destroy { "destroy all these resources" } else { "perform these actions" };
    print!("\nDo you want to {what}? Only 'yes' will be accepted: ");
    std::io::stdout().flush()?;
    let mut answer = String::new();
    std::io::stdin().lock().read_line(&mut answer)?;
    Ok(answer.trim() == "yes")
}

async fn print_outputs(ctx: &Ctx<'_>) -> anyhow::Result<()> {
    let outputs = ctx.engine(1).outputs(ctx.stack.name()).await?;
    if outputs.is_empty() {
        return Ok(());
    }
    println!("\nOutputs:\n");
    for (name, o) in outputs {
        let v = if o.sensitive { "(sensitive)".to_string() } else { o.value.to_string() };
        println!("{name} = {v}");
    }
    Ok(())
}

async fn output(ctx: &Ctx<'_>, name: Option<&str>, json: bool, raw: bool) -> anyhow::Result<ExitCode> {
    let outputs = ctx.engine(1).outputs(ctx.stack.name()).await?;
    match name {
        Some(n) => {
            let o = outputs
                .get(n)
                .with_context(|| format!("no output `{n}`; outputs are: {}", outputs.keys().cloned().collect::<Vec<_>>().join(", ")))?;
            match (&o.value, raw) {
                (serde_json::Value::String(s), true) => println!("{s}"),
                (v, _) => println!("{v}"),
            }
        }
        None if json => {
            let map: serde_json::Map<String, serde_json::Value> =
                outputs.into_iter().map(|(k, o)| (k, serde_json::json!({"value": o.value, "sensitive": o.sensitive}))).collect();
            println!("{}", serde_json::to_string_pretty(&map)?);
        }
        None => {
            for (k, o) in outputs {
                println!("{k} = {}", if o.sensitive { "(sensitive)".into() } else { o.value.to_string() });
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn state(ctx: &Ctx<'_>, cmd: &StateCommand) -> anyhow::Result<ExitCode> {
    let engine = ctx.engine(1);
    match cmd {
        StateCommand::List => {
            for (address, r) in engine.state(ctx.stack.name()).await?.resources {
                println!("{address}\t{}\t{}", r.type_name, r.id.unwrap_or_default());
            }
        }
        StateCommand::Show { address } => {
            let state = engine.state(ctx.stack.name()).await?;
            let r = state.resources.get(address).with_context(|| format!("`{address}` is not in state"))?;
            println!("{}", serde_json::to_string_pretty(r)?);
        }
        StateCommand::Rm { address } => {
            engine.state_rm(ctx.stack.name(), address).await?;
            println!("Removed {address} from state (the resource itself still exists).");
        }
        StateCommand::Mv { from, to } => {
            engine.state_mv(ctx.stack.name(), from, to).await?;
            println!("Moved {from} to {to} in state (nothing in the cloud changed).");
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `import --from-terraform`: settles every stack resource against the Terraform state; writes the mapping
/// proposal and stops when something is not settled; otherwise takes them over and prints the next plan.
async fn from_terraform(ctx: &Ctx<'_>, location: &str, map: Option<&str>) -> anyhow::Result<ExitCode> {
    let readers = ctx.contexts.get::<ferroform_core::StateReaders>().await?;
    let bytes = readers.open(location)?.read().await?.with_context(|| format!("{location}: no Terraform state there"))?;
    let map_path = map.map(str::to_string).unwrap_or_else(|| format!("{}.tfmap", ctx.stack.name()));
    let mapping = match std::fs::read_to_string(&map_path) {
        Ok(text) => ferroform_core::terraform::Mapping::parse(&text, &map_path)?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Default::default(),
        Err(e) => return Err(e).with_context(|| format!("reading {map_path}")),
    };
    let m = ctx.engine(4).import_terraform(&ctx.stack, &bytes, location, &mapping).await?;
    if !m.settled() {
        std::fs::write(&map_path, m.proposal()).with_context(|| format!("writing {map_path}"))?;
        eprintln!("{} of the stack's resources are not settled:", m.unresolved.len());
        for (address, why) in &m.unresolved {
            eprintln!("  {address}: {why}");
        }
        eprintln!(
            "Nothing was written. The proposal is in {map_path}: check it, settle the `??` lines, and run again with --map {map_path}."
        );
        return Ok(ExitCode::from(1));
    }
    println!("Took over {} resource(s) from Terraform (ferroform's state written; nothing in the cloud changed):", m.matched.len());
    for (address, (tf, id, why)) in &m.matched {
        println!("  {address} <- {tf} [{id}]: {why}");
    }
    for (tf, into) in &m.folded {
        println!("  {tf}: folded into {into}");
    }
    for address in &m.create {
        println!("  {address}: will be created");
    }
    if !m.still_terraform.is_empty() {
        println!("Still Terraform's (nothing in this stack is them):");
        for tf in &m.still_terraform {
            println!("  {tf}");
        }
    }
    let taken: Vec<&str> = m.matched.values().map(|(tf, _, _)| tf.as_str()).chain(m.folded.keys().map(String::as_str)).collect();
    println!("Once this stack applies cleanly, drop them from Terraform's state (`terraform state rm {}`) so both never manage the same thing.\n", taken.join(" "));
    let plan = ctx.engine(10).plan(&ctx.stack, &PlanOptions::default()).await?;
    print!("{}", plan.render(ctx.color));
    Ok(ExitCode::SUCCESS)
}
