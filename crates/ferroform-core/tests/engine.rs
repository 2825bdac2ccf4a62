//! The engine's rules, proven against the in-memory provider.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use ferroform_core::memory::{Cloud, Mem, Thing, Vault};
use ferroform_core::{Action, Contexts, Engine, Error, Event, LocalBackend, Options, PlanOptions, ReplaceMode, Reporter, Stack, State};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

type R<T = ()> = anyhow::Result<T>;

struct Env {
    cloud: Arc<Cloud>,
    dir: tempfile::TempDir,
    events: Arc<Events>,
}

#[derive(Default)]
struct Events(Mutex<Vec<Event>>);
impl Reporter for Events {
    fn event(&self, e: Event) {
        if let Ok(mut v) = self.0.lock() {
            v.push(e);
        }
    }
}
impl Events {
    fn finished(&self) -> Vec<String> {
        self.0
            .lock()
            .map(|v| {
                v.iter()
                    .filter_map(
                        |e| if let Event::Finished { address, action, .. } = e { Some(format!("{action} {address}")) } else { None },
                    )
                    .collect()
            })
            .unwrap_or_default()
    }
}

impl Env {
    fn new() -> Self {
        Self::with_cloud(Cloud::new())
    }
    fn with_cloud(cloud: Arc<Cloud>) -> Self {
        Self { cloud, dir: tempfile::tempdir().expect("tempdir"), events: Arc::default() }
    }
    fn state_path(&self) -> PathBuf {
        self.dir.path().join("state.json")
    }
    fn engine(&self) -> Engine {
        let contexts = Contexts::new();
        contexts.insert(Mem(self.cloud.clone()));
        Engine::new(Arc::new(LocalBackend::new(self.state_path()))).contexts(contexts).reporter(self.events.clone()).parallelism(10)
    }
    async fn apply(&self, stack: &Stack) -> R<State> {
        Ok(self.engine().apply(stack, &PlanOptions::default()).await?.1)
    }
    async fn plan(&self, stack: &Stack) -> R<ferroform_core::Plan> {
        Ok(self.engine().plan(stack, &PlanOptions::default()).await?)
    }
    fn state(&self) -> R<State> {
        Ok(serde_json::from_slice(&std::fs::read(self.state_path())?)?)
    }
    fn id(&self, address: &str) -> R<String> {
        self.state()?.resources.get(address).and_then(|r| r.id.clone()).ok_or_else(|| anyhow::anyhow!("{address} not in state"))
    }
}

/// a <- b <- c (c needs b needs a), and an independent d.
fn chain(value: &str) -> Stack {
    let mut s = Stack::new("t");
    let a = s.add("a", Thing::new("a").value(value));
    let b = s.add("b", Thing::new("b").value(a.arn()));
    s.add("c", Thing::new("c").value(format!("{}/child", b.arn())));
    s.add("d", Thing::new("d"));
    s.output("c_name", b.name());
    s
}

fn action(plan: &ferroform_core::Plan, address: &str) -> Option<Action> {
    plan.changes.iter().find(|c| c.address == address && !c.deposed).map(|c| c.action)
}

#[tokio::test]
async fn create_then_no_changes() -> R {
    let env = Env::new();
    let plan = env.plan(&chain("v1")).await?;
    assert_eq!(plan.summary.add, 4);
    assert_eq!(plan.summary_line(), "Plan: 4 to add, 0 to change, 0 to destroy.");
    let text = plan.render(false);
    assert!(text.contains("  + a"), "{text}");
    // b's value comes from a, which does not exist yet.
    let b = plan.changes.iter().find(|c| c.address == "b").ok_or_else(|| anyhow::anyhow!("no b"))?;
    assert!(b.fields.iter().any(|f| f.name == "value" && f.after_unknown));
    assert!(text.contains("value = (known after apply)"), "{text}");

    let state = env.apply(&chain("v1")).await?;
    assert_eq!(state.resources.len(), 4);
    assert_eq!(env.cloud.objects().len(), 4);
    // The reference resolved to a's real ARN, inside a larger string too.
    let a_id = env.id("a")?;
    let objects = env.cloud.objects();
    assert_eq!(objects[&env.id("b")?].thing.value.as_deref(), Some(format!("arn:mem:{a_id}").as_str()));
    assert_eq!(objects[&env.id("c")?].thing.value.as_deref(), Some(format!("arn:mem:{}/child", env.id("b")?).as_str()));
    assert_eq!(state.outputs["c_name"].value, serde_json::json!("b"));

    let again = env.plan(&chain("v1")).await?;
    assert!(!again.has_changes(), "{}", again.render(false));
    assert_eq!(again.summary_line(), "No changes. Your infrastructure matches the configuration.");
    Ok(())
}

#[tokio::test]
async fn dependencies_are_created_first_and_destroyed_last() -> R {
    let env = Env::new();
    env.apply(&chain("v1")).await?;
    let creates: Vec<String> = env.cloud.calls().into_iter().filter(|c| c.starts_with("create")).collect();
    let pos = |n: &str| creates.iter().position(|c| c == n).unwrap_or(usize::MAX);
    assert!(pos("create a") < pos("create b") && pos("create b") < pos("create c"), "{creates:?}");

    env.cloud.reset_calls();
    env.engine().destroy(&chain("v1")).await?;
    let deletes: Vec<String> = env.cloud.calls().into_iter().filter(|c| c.starts_with("delete")).collect();
    let pos = |n: &str| deletes.iter().position(|c| c == n).unwrap_or(usize::MAX);
    assert!(pos("delete c") < pos("delete b") && pos("delete b") < pos("delete a"), "{deletes:?}");
    assert!(env.cloud.objects().is_empty());
    assert!(env.state()?.resources.is_empty());
    Ok(())
}

#[tokio::test]
async fn update_in_place_keeps_the_id() -> R {
    let env = Env::new();
    env.apply(&chain("v1")).await?;
    let id = env.id("a")?;
    let plan = env.plan(&chain("v2")).await?;
    assert_eq!(action(&plan, "a"), Some(Action::Update));
    assert!(plan.render(false).contains("~ value = \"v1\" -> \"v2\""), "{}", plan.render(false));
    assert_eq!(action(&plan, "b"), Some(Action::NoOp), "a's outputs are known: b does not change");
    env.apply(&chain("v2")).await?;
    assert_eq!(env.id("a")?, id);
    assert_eq!(env.cloud.objects()[&id].thing.value.as_deref(), Some("v2"));
    Ok(())
}

fn named(a_name: &str, unique: bool) -> Stack {
    let mut s = Stack::new("t");
    let t = if unique { Thing::new(a_name).unique() } else { Thing::new(a_name) };
    let a = s.add("a", t);
    s.add("b", Thing::new("b").value(a.arn()));
    s
}

#[tokio::test]
async fn replace_creates_before_destroying_and_repoints_dependents() -> R {
    let env = Env::new();
    env.apply(&named("one", false)).await?;
    let old = env.id("a")?;
    let plan = env.plan(&named("two", false)).await?;
    let a = plan.changes.iter().find(|c| c.address == "a").ok_or_else(|| anyhow::anyhow!("no a"))?;
    assert_eq!(a.action, Action::Replace);
    assert_eq!(a.replace_mode, Some(ReplaceMode::CreateBeforeDestroy));
    assert!(a.fields.iter().any(|f| f.name == "name" && f.forces_replacement));
    assert!(a.reasons.iter().any(|r| r.contains("`name` forces replacement")));
    assert!(plan.render(false).contains("# forces replacement"));
    assert_eq!(action(&plan, "b"), Some(Action::Update), "b's value becomes unknown");

    env.cloud.reset_calls();
    env.apply(&named("two", false)).await?;
    let calls = env.cloud.calls();
    let pos = |n: &str| calls.iter().position(|c| c == n).unwrap_or(usize::MAX);
    assert!(pos("create two") < pos("update b") && pos("update b") < pos("delete one"), "{calls:?}");
    let new = env.id("a")?;
    assert_ne!(new, old);
    assert!(!env.cloud.objects().contains_key(&old));
    assert_eq!(env.cloud.objects()[&env.id("b")?].thing.value, Some(format!("arn:mem:{new}")));
    assert!(env.state()?.deposed.is_empty());
    Ok(())
}

#[tokio::test]
async fn replace_of_a_unique_name_deletes_first() -> R {
    let env = Env::new();
    env.apply(&named("one", true)).await?;
    let mut s = Stack::new("t");
    // Same unique name, another field forcing replacement is simulated by renaming then back: use name.
    let a = s.add("a", Thing::new("uno").unique());
    s.add("b", Thing::new("b").value(a.arn()));
    let plan = env.plan(&s).await?;
    let a = plan.changes.iter().find(|c| c.address == "a").ok_or_else(|| anyhow::anyhow!("no a"))?;
    assert_eq!(a.replace_mode, Some(ReplaceMode::DeleteBeforeCreate));
    assert!(plan.render(false).contains("-/+ a"));
    env.cloud.reset_calls();
    env.apply(&s).await?;
    let calls = env.cloud.calls();
    let pos = |n: &str| calls.iter().position(|c| c == n).unwrap_or(usize::MAX);
    assert!(pos("delete one") < pos("create uno"), "{calls:?}");
    Ok(())
}

#[tokio::test]
async fn lifecycle_overrides_the_replace_mode() -> R {
    let env = Env::new();
    let build = |name: &str| {
        let mut s = Stack::new("t");
        s.add_with("a", Thing::new(name), Options::new().create_before_destroy(false));
        s
    };
    env.apply(&build("one")).await?;
    let plan = env.plan(&build("two")).await?;
    assert_eq!(plan.changes[0].replace_mode, Some(ReplaceMode::DeleteBeforeCreate));
    Ok(())
}

#[tokio::test]
async fn resources_dropped_from_code_are_deleted() -> R {
    let env = Env::new();
    env.apply(&chain("v1")).await?;
    let d = env.id("d")?;
    let mut s = chain("v1");
    s = {
        let mut t = Stack::new("t");
        for r in s.resources().iter().filter(|r| r.address != "d") {
            let thing: Thing = serde_json::from_value(r.inputs.clone())?;
            t.add(&r.address, thing);
        }
        t
    };
    let plan = env.plan(&s).await?;
    assert_eq!(action(&plan, "d"), Some(Action::Delete));
    assert!(plan.render(false).contains("  - d"));
    assert_eq!(plan.summary.destroy, 1);
    env.apply(&s).await?;
    assert!(!env.cloud.objects().contains_key(&d));
    assert!(!env.state()?.resources.contains_key("d"));
    Ok(())
}

#[tokio::test]
async fn a_failure_stops_new_work_and_state_holds_exactly_what_was_made() -> R {
    let env = Env::new();
    env.cloud.fail_on("create b");
    let err = env.engine().apply(&chain("v1"), &PlanOptions::default()).await.err().ok_or_else(|| anyhow::anyhow!("apply should fail"))?;
    let msg = err.to_string();
    assert!(msg.contains("b: create failed") && msg.contains("InjectedFailure"), "{msg}");
    let state = env.state()?;
    // c needs b: never started. Whatever was created is in state with its id, and nothing else.
    assert!(!env.cloud.calls().contains(&"create c".to_string()));
    let made: std::collections::BTreeSet<String> = env.cloud.objects().keys().cloned().collect();
    let recorded: std::collections::BTreeSet<String> = state.resources.values().filter_map(|r| r.id.clone()).collect();
    assert_eq!(made, recorded);
    assert!(state.resources.contains_key("a"));
    // The next run converges.
    env.cloud.clear_failures();
    env.apply(&chain("v1")).await?;
    assert_eq!(env.cloud.objects().len(), 4);
    assert!(!env.plan(&chain("v1")).await?.has_changes());
    Ok(())
}

#[tokio::test]
async fn apply_runs_independent_steps_concurrently_up_to_the_limit() -> R {
    let env = Env::with_cloud(Cloud::with_latency(Duration::from_millis(30)));
    let mut s = Stack::new("t");
    for i in 0..12 {
        s.add(&format!("r{i}"), Thing::new(format!("r{i}")));
    }
    let engine = env.engine().parallelism(4);
    engine.apply(&s, &PlanOptions::default()).await?;
    assert_eq!(env.cloud.max_in_flight(), 4, "observed overlap must reach, and never pass, the limit");
    Ok(())
}

#[tokio::test]
async fn a_step_starts_when_its_own_dependencies_finish_not_its_level() -> R {
    let env = Env::new();
    env.cloud.slow("slow", Duration::from_millis(300));
    let mut s = Stack::new("t");
    let fast = s.add("fast", Thing::new("fast"));
    s.add("slow", Thing::new("slow"));
    s.add("after-fast", Thing::new("after-fast").value(fast.arn()));
    env.apply(&s).await?;
    let done = env.events.finished();
    let pos = |n: &str| done.iter().position(|c| c == n).unwrap_or(usize::MAX);
    assert!(pos("create after-fast") < pos("create slow"), "{done:?}");
    Ok(())
}

#[tokio::test]
async fn invalid_stacks_make_no_calls_and_name_address_and_field() -> R {
    let env = Env::new();
    let mut s = Stack::new("t");
    s.add("big", Thing::new("x").size(5000));
    s.add("dup", Thing::new("x"));
    s.add("dup", Thing::new("y"));
    s.add("dangling", Thing::new("z").value(ferroform_core::Ref::<String>::new("ghost", "arn")));
    s.add_with("dep", Thing::new("w"), Options::new().depends_on_address("nowhere"));
    s.add("", Thing::new(""));
    let err = env.plan(&s).await.err().ok_or_else(|| anyhow::anyhow!("should fail"))?.to_string();
    for want in [
        "big: field `size`: must be at most 1000",
        "dup: the address is used twice",
        "dangling: field `value`: refers to `ghost`, which is not in the stack",
        "dep: field `depends_on`: `nowhere` is not in the stack",
        "field `name`: must be 1 to 64 characters",
    ] {
        assert!(err.contains(want), "missing `{want}` in:\n{err}");
    }
    assert!(env.cloud.calls().is_empty());
    assert!(!env.state_path().exists());
    Ok(())
}

#[tokio::test]
async fn a_cycle_is_printed_as_a_path() -> R {
    let env = Env::new();
    let mut s = Stack::new("t");
    let b_ref = ferroform_core::Ref::<String>::new("b", "arn");
    let a = s.add("a", Thing::new("a").value(b_ref));
    let b = s.add("b", Thing::new("b").value(a.arn()));
    s.add("c", Thing::new("c").value(b.arn()));
    let err = env.plan(&s).await.err().ok_or_else(|| anyhow::anyhow!("should fail"))?.to_string();
    assert!(err.contains("dependency cycle: a -> b -> a") || err.contains("dependency cycle: b -> a -> b"), "{err}");
    assert!(env.cloud.calls().is_empty());
    Ok(())
}

#[tokio::test]
async fn saved_plans_apply_exactly_or_are_refused_when_stale() -> R {
    let env = Env::new();
    let plan = env.plan(&chain("v1")).await?;
    let json = plan.to_json()?;
    let saved = ferroform_core::Plan::from_json(json.as_bytes())?;
    assert_eq!(saved, plan);
    let engine = env.engine();
    engine.begin_saved(&chain("v1"), &saved).await?.apply().await?;
    assert_eq!(env.cloud.objects().len(), 4);

    // The code moved on.
    let plan = env.plan(&chain("v2")).await?;
    let err = env.engine().begin_saved(&chain("v3"), &plan).await.err().ok_or_else(|| anyhow::anyhow!("stale"))?.to_string();
    assert!(err.contains("the code changed since"), "{err}");
    // The state moved on.
    env.apply(&chain("v2")).await?;
    let err = env.engine().begin_saved(&chain("v2"), &plan).await.err().ok_or_else(|| anyhow::anyhow!("stale"))?.to_string();
    assert!(err.contains("the state changed since"), "{err}");
    // The live resources moved on.
    let plan = env.plan(&chain("v3")).await?;
    env.cloud.tamper(&env.id("d")?, |t| t.value = Some("drift".into()));
    let err = env.engine().begin_saved(&chain("v3"), &plan).await.err().ok_or_else(|| anyhow::anyhow!("stale"))?.to_string();
    assert!(err.contains("live resources changed"), "{err}");
    // A tampered file.
    let err = ferroform_core::Plan::from_json(b"{\"format_version\": 99}").err().map(|e| e.to_string()).unwrap_or_default();
    assert!(err.contains("format version 99"), "{err}");
    Ok(())
}

#[tokio::test]
async fn json_plan_carries_actions_fields_and_unknowns() -> R {
    let env = Env::new();
    let plan = env.plan(&chain("v1")).await?;
    let v: serde_json::Value = serde_json::from_str(&plan.to_json()?)?;
    assert_eq!(v["format_version"], 2);
    assert_eq!(v["summary"]["add"], 4);
    let b = v["changes"].as_array().and_then(|c| c.iter().find(|c| c["address"] == "b").cloned()).unwrap_or_default();
    assert_eq!(b["action"], "create");
    assert_eq!(b["type"], "mem_thing");
    let value = b["fields"].as_array().and_then(|f| f.iter().find(|f| f["name"] == "value").cloned()).unwrap_or_default();
    assert_eq!(value["after_unknown"], true);
    assert_eq!(value["path"], "value");
    assert_eq!(v["outputs"]["c_name"]["after_unknown"], true);
    Ok(())
}

#[tokio::test]
async fn drift_is_planned_and_fixed_and_deleted_resources_are_recreated() -> R {
    let env = Env::new();
    env.apply(&chain("v1")).await?;
    env.cloud.tamper(&env.id("a")?, |t| t.value = Some("changed".into()));
    let plan = env.plan(&chain("v1")).await?;
    assert_eq!(action(&plan, "a"), Some(Action::Update));
    assert!(plan.render(false).contains("\"changed\" -> \"v1\""));
    env.apply(&chain("v1")).await?;
    assert_eq!(env.cloud.objects()[&env.id("a")?].thing.value.as_deref(), Some("v1"));

    let d = env.id("d")?;
    env.cloud.remove(&d);
    let plan = env.plan(&chain("v1")).await?;
    let c = plan.changes.iter().find(|c| c.address == "d").ok_or_else(|| anyhow::anyhow!("d"))?;
    assert_eq!(c.action, Action::Create);
    assert!(c.reasons[0].contains("deleted outside ferroform"), "{:?}", c.reasons);
    env.apply(&chain("v1")).await?;
    assert!(!env.plan(&chain("v1")).await?.has_changes());
    Ok(())
}

#[tokio::test]
async fn ignore_changes_hides_drift_in_named_fields() -> R {
    let env = Env::new();
    let build = || {
        let mut s = Stack::new("t");
        s.add_with("a", Thing::new("a").value("v"), Options::new().ignore_changes(["value"]));
        s
    };
    env.apply(&build()).await?;
    env.cloud.tamper(&env.id("a")?, |t| t.value = Some("theirs".into()));
    assert!(!env.plan(&build()).await?.has_changes());
    Ok(())
}

#[tokio::test]
async fn protected_resources_refuse_destroy_and_replace_unless_opted_out() -> R {
    let env = Env::new();
    let build = |name: &str, opt_out: bool| {
        let mut s = Stack::new("t");
        let opts = if opt_out { Options::new().prevent_destroy(false) } else { Options::new() };
        s.add_with("vault", Vault(Thing::new(name)), opts);
        s
    };
    env.apply(&build("v", false)).await?;
    let err = env.engine().destroy(&build("v", false)).await.err().map(|e| e.to_string()).unwrap_or_default();
    assert!(err.contains("vault: field `prevent_destroy`") && err.contains("protected"), "{err}");
    let err = env.plan(&build("other", false)).await.err().map(|e| e.to_string()).unwrap_or_default();
    assert!(err.contains("forces replacement") && err.contains("protected"), "{err}");
    // Dropped from the code: still protected (as last applied).
    let mut empty = Stack::new("t");
    empty.register_types(&ferroform_core::memory::registry());
    let err = env.plan(&empty).await.err().map(|e| e.to_string()).unwrap_or_default();
    assert!(err.contains("no longer in the code"), "{err}");
    assert_eq!(env.cloud.objects().len(), 1);
    // Opting out, then destroying, works.
    env.apply(&build("v", true)).await?;
    env.engine().destroy(&build("v", true)).await?;
    assert!(env.cloud.objects().is_empty());
    Ok(())
}

#[tokio::test]
async fn moved_addresses_keep_their_resource() -> R {
    let env = Env::new();
    let mut s = Stack::new("t");
    s.add("old", Thing::new("x"));
    env.apply(&s).await?;
    let id = env.id("old")?;
    let mut s = Stack::new("t");
    s.add("new", Thing::new("x"));
    s.moved("old", "new");
    let plan = env.plan(&s).await?;
    assert_eq!(plan.summary.add + plan.summary.destroy, 0);
    assert_eq!(plan.summary.moves, 1);
    assert!(plan.render(false).contains("(moved from old)"));
    env.apply(&s).await?;
    assert_eq!(env.id("new")?, id);
    assert!(!env.plan(&s).await?.has_changes());
    Ok(())
}

#[tokio::test]
async fn target_limits_the_run_to_the_resource_and_what_it_needs() -> R {
    let env = Env::new();
    let opts = PlanOptions { targets: vec!["b".into()], ..PlanOptions::default() };
    let mut s = chain("v1");
    let e = s.add("e", Thing::new("e"));
    s.output("e_name", e.name());
    env.engine().apply(&s, &opts).await?;
    let state = env.state()?;
    let mut got: Vec<&String> = state.resources.keys().collect();
    got.sort();
    assert_eq!(got, ["a", "b"]);
    // An output of something not made yet is left out, not shown as its placeholder.
    assert_eq!(state.outputs.get("c_name").map(|o| o.value.clone()), Some(serde_json::json!("b")));
    assert!(!state.outputs.contains_key("e_name"), "{:?}", state.outputs);
    Ok(())
}

#[tokio::test]
async fn a_create_interrupted_by_a_crash_is_adopted_not_duplicated() -> R {
    let env = Env::new();
    env.apply(&chain("v1")).await?;
    // Simulate a run killed after the cloud made `d` but before state recorded it.
    let mut state = env.state()?;
    if let Some(d) = state.resources.get_mut("d") {
        d.id = None;
        d.status = ferroform_core::state::Status::Creating;
    }
    std::fs::write(env.state_path(), state.to_bytes()?)?;
    let plan = env.plan(&chain("v1")).await?;
    assert_eq!(action(&plan, "d"), Some(Action::NoOp), "{}", plan.render(false));
    env.apply(&chain("v1")).await?;
    assert_eq!(env.cloud.objects().len(), 4);
    Ok(())
}

#[tokio::test]
async fn damaged_or_newer_state_is_refused_and_left_untouched() -> R {
    for (content, want) in [
        (&b"{\"format_version\": 1, \"serial\": 3, \"lin"[..], "is not valid JSON"),
        (&b"{\"format_version\": 7, \"serial\": 1}"[..], "newer than this ferroform understands"),
        (&b"{\"hello\": 1}"[..], "not a ferroform state file"),
        (&b"{\"format_version\": 1, \"serial\": \"x\"}"[..], "is damaged"),
    ] {
        let env = Env::new();
        std::fs::write(env.state_path(), content)?;
        let err = env.engine().apply(&chain("v1"), &PlanOptions::default()).await.err().map(|e| e.to_string()).unwrap_or_default();
        assert!(err.contains(want), "{err}");
        assert_eq!(std::fs::read(env.state_path())?, content);
        assert!(env.cloud.calls().is_empty());
    }
    Ok(())
}

#[tokio::test]
async fn state_of_another_stack_is_refused() -> R {
    let env = Env::new();
    env.apply(&chain("v1")).await?;
    let mut other = Stack::new("other");
    other.add("x", Thing::new("x"));
    let err = env.plan(&other).await.err().map(|e| e.to_string()).unwrap_or_default();
    assert!(err.contains("belongs to stack `t`"), "{err}");
    Ok(())
}

#[tokio::test]
async fn state_is_versioned_and_saved_after_every_step() -> R {
    let env = Env::new();
    let state = env.apply(&chain("v1")).await?;
    assert_eq!(state.format_version, 1);
    // One write before each create, one after, plus renames and outputs.
    assert!(state.serial >= 8, "serial {}", state.serial);
    assert!(uuid_like(&state.lineage));
    let lineage = state.lineage.clone();
    let state = env.apply(&chain("v2")).await?;
    assert_eq!(state.lineage, lineage);
    assert!(env.dir.path().join("state.json.backup").exists());
    Ok(())
}

fn uuid_like(s: &str) -> bool {
    s.len() == 36 && s.chars().filter(|c| *c == '-').count() == 4
}

#[tokio::test]
async fn an_interrupt_finishes_running_steps_and_saves_state() -> R {
    let env = Env::with_cloud(Cloud::with_latency(Duration::from_millis(50)));
    let (tx, rx) = tokio::sync::watch::channel(false);
    let engine = env.engine().parallelism(1).interrupt(rx);
    let run = tokio::spawn(async move {
        let mut s = Stack::new("t");
        for i in 0..10 {
            s.add(&format!("r{i}"), Thing::new(format!("r{i}")));
        }
        engine.apply(&s, &PlanOptions::default()).await.map(|_| ())
    });
    tokio::time::sleep(Duration::from_millis(120)).await;
    tx.send(true)?;
    let result = run.await?;
    assert!(matches!(result, Err(Error::Interrupted)), "{result:?}");
    let made = env.cloud.objects().len();
    assert!(made > 0 && made < 10, "{made}");
    assert_eq!(env.state()?.resources.values().filter(|r| r.id.is_some()).count(), made);
    Ok(())
}

#[tokio::test]
async fn graph_is_dot_with_an_edge_per_reference() -> R {
    let env = Env::new();
    let dot = env.engine().graph(&chain("v1"))?;
    assert!(dot.starts_with("digraph"));
    assert!(dot.contains("\"b\" -> \"a\""));
    assert!(dot.contains("\"c\" -> \"b\""));
    Ok(())
}

#[tokio::test]
async fn import_adopts_an_existing_object() -> R {
    let env = Env::new();
    env.apply(&chain("v1")).await?;
    let d = env.id("d")?;
    env.engine().state_rm("t", "d").await?;
    assert!(!env.state()?.resources.contains_key("d"));
    env.engine().import(&chain("v1"), "d", &d).await?;
    assert_eq!(env.id("d")?, d);
    assert!(!env.plan(&chain("v1")).await?.has_changes());
    Ok(())
}

#[tokio::test]
async fn refresh_records_drift_in_state() -> R {
    let env = Env::new();
    env.apply(&chain("v1")).await?;
    env.cloud.tamper(&env.id("a")?, |t| t.value = Some("drifted".into()));
    let state = env.engine().refresh(&chain("v1")).await?;
    assert_eq!(state.resources["a"].inputs["value"], "drifted");
    Ok(())
}

#[tokio::test]
async fn removing_a_setting_reverts_it_and_computed_fields_are_left_alone() -> R {
    let env = Env::new();
    let with = |size: Option<u64>, zone: Option<&str>| {
        let mut s = Stack::new("t");
        let mut t = Thing::new("a").value("v");
        t.size = size;
        t.zone = zone.map(str::to_string);
        s.add("a", t);
        s
    };
    env.apply(&with(Some(7), Some("mem-2b"))).await?;
    // The settings leave the code: size goes back to the cloud's default, zone (computed) stays.
    let plan = env.plan(&with(None, None)).await?;
    assert_eq!(action(&plan, "a"), Some(Action::Update));
    let a = plan.changes.iter().find(|c| c.address == "a").ok_or_else(|| anyhow::anyhow!("no a"))?;
    let fields: Vec<(String, String)> = a.fields.iter().map(|f| (f.path.clone(), format!("{:?} -> {:?}", f.before, f.after))).collect();
    assert_eq!(fields, [("size".to_string(), "Some(Number(7)) -> Some(Number(1))".to_string())], "{}", plan.render(false));
    assert!(plan.render(false).contains("~ size = 7 -> 1"), "{}", plan.render(false));
    env.apply(&with(None, None)).await?;
    let obj = env.cloud.objects().remove(&env.id("a")?).ok_or_else(|| anyhow::anyhow!("gone"))?;
    assert_eq!((obj.thing.size, obj.thing.zone.as_deref()), (Some(1), Some("mem-2b")), "read straight from the cloud");
    assert!(!env.plan(&with(None, None)).await?.has_changes());
    // A map key removed from the code is removed.
    env.cloud.tamper(&env.id("a")?, |t| {
        t.tags.insert("extra".into(), "x".into());
    });
    let plan = env.plan(&with(None, None)).await?;
    let text = plan.render(false);
    assert!(text.contains("- tags.extra = \"x\""), "{text}");
    Ok(())
}

#[tokio::test]
async fn outputs_an_update_changes_are_unknown_to_dependents_and_one_apply_converges() -> R {
    let env = Env::new();
    let stack = |v: &str| {
        let mut s = Stack::new("t");
        let a = s.add("a", Thing::new("a").value(v));
        s.add("b", Thing::new("b").value(a.version()));
        s
    };
    env.apply(&stack("v1")).await?;
    let plan = env.plan(&stack("v2")).await?;
    assert_eq!(action(&plan, "a"), Some(Action::Update));
    assert_eq!(action(&plan, "b"), Some(Action::Update), "{}", plan.render(false));
    assert!(plan.render(false).contains("~ value = \"1\" -> (known after apply)"), "{}", plan.render(false));
    env.apply(&stack("v2")).await?;
    let b = env.cloud.objects().remove(&env.id("b")?).ok_or_else(|| anyhow::anyhow!("gone"))?;
    assert_eq!(b.thing.value.as_deref(), Some("2"), "b follows a's new version in the same apply");
    assert!(!env.plan(&stack("v2")).await?.has_changes());
    Ok(())
}

#[tokio::test]
async fn nested_changes_and_sensitive_paths_in_text_and_json() -> R {
    let env = Env::new();
    let stack = |secret: &str, extra: bool| {
        let mut s = Stack::new("t");
        let mut t = Thing::new("a");
        t.tags.insert("SECRET".into(), secret.into());
        t.tags.insert("team".into(), "x".repeat(300));
        if extra {
            t.tags.insert("added".into(), "1".into());
        }
        s.add_with("a", t, Options::new().sensitive("tags.SECRET"));
        s
    };
    let plan = env.plan(&stack("hunter2", false)).await?;
    let (text, json) = (plan.render(false), plan.to_json()?);
    assert!(!text.contains("hunter2") && !json.contains("hunter2"), "{text}\n{json}");
    assert!(text.contains("(sensitive)"), "{text}");
    // Long values are shown whole.
    assert!(text.contains(&"x".repeat(300)), "{text}");
    env.apply(&stack("hunter2", false)).await?;
    let plan = env.plan(&stack("hunter3", true)).await?;
    let (text, json) = (plan.render(false), plan.to_json()?);
    assert!(!text.contains("hunter") && !json.contains("hunter"), "{text}\n{json}");
    assert!(text.contains("~ tags.SECRET = \"(sensitive)\" -> \"(sensitive)\""), "{text}");
    assert!(text.contains("+ tags.added = \"1\""), "{text}");
    let v: serde_json::Value = serde_json::from_str(&json)?;
    let paths: Vec<&str> = v["changes"][0]["fields"].as_array().into_iter().flatten().filter_map(|f| f["path"].as_str()).collect();
    assert_eq!(paths, ["tags.SECRET", "tags.added"]);
    // The code stops declaring the secret: the plan that removes it still hides its value (state remembers).
    env.apply(&stack("hunter3", true)).await?;
    let mut s = Stack::new("t");
    let mut t = Thing::new("a");
    t.tags.insert("team".into(), "x".repeat(300));
    s.add("a", t);
    let plan = env.plan(&s).await?;
    let (text, json) = (plan.render(false), plan.to_json()?);
    assert!(!text.contains("hunter") && !json.contains("hunter"), "{text}\n{json}");
    assert!(text.contains("- tags.SECRET = \"(sensitive)\""), "{text}");
    Ok(())
}

#[tokio::test]
async fn another_account_or_region_is_refused_before_any_read() -> R {
    let env = Env::new();
    env.cloud.set_identity("111111111111", "eu-west-1");
    env.apply(&chain("v1")).await?;
    assert_eq!(env.state()?.account.map(|a| a.account).as_deref(), Some("111111111111"));
    for (account, region) in [("222222222222", "eu-west-1"), ("111111111111", "us-east-1")] {
        env.cloud.set_identity(account, region);
        env.cloud.reset_calls();
        let err = env.plan(&chain("v1")).await.err().map(|e| e.to_string()).unwrap_or_default();
        assert!(err.contains("belongs to account 111111111111 in eu-west-1") && err.contains(account) && err.contains(region), "{err}");
        assert_eq!(env.cloud.calls(), ["identify"], "nothing read after the identity call");
        let err = env.engine().apply(&chain("v2"), &PlanOptions::default()).await.err().map(|e| e.to_string()).unwrap_or_default();
        assert!(err.contains("refusing to run"), "{err}");
    }
    // allowed_accounts refuses a fresh state too.
    let fresh = Env::new();
    fresh.cloud.set_identity("333333333333", "eu-west-1");
    let mut s = chain("v1");
    s.allowed_accounts(["444444444444"]);
    let err = fresh.plan(&s).await.err().map(|e| e.to_string()).unwrap_or_default();
    assert!(err.contains("allows only account(s) 444444444444") && err.contains("333333333333"), "{err}");
    assert_eq!(fresh.cloud.calls(), ["identify"]);
    Ok(())
}

/// `a` (named `name`, replaced create-before-destroy) and `b`, which uses a's ARN.
fn replaceable(name: &str) -> Stack {
    let mut s = Stack::new("t");
    let a = s.add_with("a", Thing::new(name), Options::new().create_before_destroy(true));
    s.add("b", Thing::new("b").value(a.arn()));
    s
}

/// Applies `replaceable("a1")`, then a2 with b's update failing: the replacement's new object is made, the old
/// a stays deposed with b still pointing at it. Returns the old a's id.
async fn leave_a_deposed(env: &Env) -> R<String> {
    env.apply(&replaceable("a1")).await?;
    let old = env.id("a")?;
    env.cloud.fail_on("update b");
    assert!(env.apply(&replaceable("a2")).await.is_err());
    let deposed: Vec<Option<String>> = env.state()?.deposed.iter().map(|d| d.resource.id.clone()).collect();
    assert_eq!(deposed, [Some(old.clone())]);
    Ok(old)
}

#[tokio::test]
async fn a_deposed_object_is_deleted_only_after_its_dependents_moved_on() -> R {
    let env = Env::new();
    let stack = replaceable;
    let old = leave_a_deposed(&env).await?;
    // Retried: b (slow) must be re-pointed before the deposed a goes.
    env.cloud.clear_failures();
    env.cloud.slow("b", Duration::from_millis(200));
    env.events.0.lock().map(|mut e| e.clear()).ok();
    env.apply(&stack("a2")).await?;
    let order = env.events.finished();
    let pos = |s: &str| order.iter().position(|o| o == s);
    assert!(pos("update b").is_some() && pos("update b") < pos("delete a"), "{order:?}");
    assert!(!env.cloud.objects().contains_key(&old));
    assert!(env.state()?.deposed.is_empty());
    Ok(())
}

#[tokio::test]
async fn sensitive_outputs_never_appear_in_plans_but_their_changes_do() -> R {
    let env = Env::new();
    let stack = |v: &str| {
        let mut s = Stack::new("t");
        s.add("a", Thing::new("a"));
        s.output_sensitive("password", format!("pw-{v}"));
        s
    };
    env.apply(&stack("one")).await?;
    assert_eq!(env.state()?.outputs["password"].value, "pw-one", "state holds the value (for `output --raw`)");
    let plan = env.plan(&stack("two")).await?;
    let (text, json) = (plan.render(false), plan.to_json()?);
    assert!(!text.contains("pw-") && !json.contains("pw-"), "{text}\n{json}");
    assert!(plan.has_changes() && text.contains("~ password = (sensitive)"), "{text}");
    assert!(!env.plan(&stack("one")).await?.has_changes());
    Ok(())
}

#[tokio::test]
async fn destroying_what_is_already_gone_clears_it_from_state_without_calls() -> R {
    let env = Env::new();
    env.apply(&chain("v1")).await?;
    for id in env.cloud.objects().keys() {
        env.cloud.remove(id);
    }
    env.cloud.reset_calls();
    env.engine().destroy(&chain("v1")).await?;
    assert!(env.state()?.resources.is_empty());
    assert!(env.cloud.calls().iter().all(|c| c.starts_with("read")), "{:?}", env.cloud.calls());
    Ok(())
}

#[tokio::test]
async fn adoption_never_takes_the_deposed_object_for_the_new_one() -> R {
    let env = Env::new();
    let stack = replaceable;
    let old = leave_a_deposed(&env).await?;
    let new = env.id("a")?;
    // As if the run had died after the new object was made but before state recorded it: both the old
    // (deposed) and the new object carry a's tags, and the old one sorts first.
    let mut state = env.state()?;
    if let Some(a) = state.resources.get_mut("a") {
        a.id = None;
        a.status = ferroform_core::state::Status::Creating;
    }
    std::fs::write(env.state_path(), state.to_bytes()?)?;
    assert!(old < new, "{old} {new}: the old one comes first in a lookup");
    env.cloud.clear_failures();
    env.apply(&stack("a2")).await?;
    assert_eq!(env.id("a")?, new, "the new object was adopted");
    let names: Vec<String> = env.cloud.objects().values().map(|o| o.thing.name.clone()).collect();
    assert_eq!(names, ["a2", "b"], "the old one deleted, nothing duplicated");
    Ok(())
}

#[tokio::test]
async fn a_broken_reference_is_a_validation_error_and_a_typed_one_is_text() -> R {
    let env = Env::new();
    let mut s = Stack::new("t");
    let a = s.add("a", Thing::new("a"));
    let cut: String = a.arn().token().chars().take(6).collect();
    s.add("b", Thing::new("b").value(format!("{cut}...")));
    // Text that looks like a token is text: no edge, no unknown.
    s.add("c", Thing::new("c").value("${ref:a.arn}"));
    let err = env.plan(&s).await.err().map(|e| e.to_string()).unwrap_or_default();
    assert!(err.contains("b: field `value`") && err.contains("cut or altered"), "{err}");
    assert!(!err.contains("c:"), "{err}");
    assert!(env.cloud.calls().is_empty(), "refused before any call");
    Ok(())
}

#[tokio::test]
async fn adoption_never_takes_an_object_another_address_holds() -> R {
    let env = Env::new();
    let mut first = Stack::new("t");
    first.add("a", Thing::new("one"));
    env.apply(&first).await?;
    let held = env.id("a")?;
    // `a` becomes `b`; b's retag fails, so its object still carries a's tags. Then a new `a` is added.
    let mut renamed = Stack::new("t");
    renamed.add("b", Thing::new("one"));
    renamed.moved("a", "b");
    env.cloud.fail_on("update one");
    assert!(env.apply(&renamed).await.is_err());
    let mut second = Stack::new("t");
    second.add("b", Thing::new("one"));
    second.add("a", Thing::new("two"));
    assert!(env.apply(&second).await.is_err());
    let new = env.id("a")?;
    assert_eq!(env.id("b")?, held);
    // As if the run had died before state recorded the new a: two objects carry a's tags, and the one b
    // holds sorts first.
    let mut state = env.state()?;
    if let Some(a) = state.resources.get_mut("a") {
        a.id = None;
        a.status = ferroform_core::state::Status::Creating;
    }
    std::fs::write(env.state_path(), state.to_bytes()?)?;
    assert!(held < new, "{held} {new}: b's object comes first in a lookup");
    env.cloud.clear_failures();
    env.apply(&second).await?;
    assert_eq!((env.id("a")?, env.id("b")?), (new, held), "each address keeps its own object");
    assert_eq!(env.cloud.objects().len(), 2, "nothing duplicated");
    Ok(())
}

/// A lookup (a data source) reads something made outside the stack at every plan: what uses it is planned
/// with the real value, the lookup itself is never created, changed, deleted or put in state.
#[tokio::test]
async fn lookups_are_read_every_plan_and_never_managed() -> R {
    use ferroform_core::memory::FindThing;
    let env = Env::new();
    env.cloud.put("shared-1", Thing::new("shared").value("team-a").size(7));
    let stack = || {
        let mut s = Stack::new("app");
        let shared = s.lookup("shared", FindThing { value: "team-a".into() });
        s.add("user", Thing::new("user").value(shared.name()));
        s.output("shared_id", shared.id());
        s
    };
    let plan = env.plan(&stack()).await?;
    let user = plan.changes.iter().find(|c| c.address == "user").expect("user planned");
    assert_eq!(user.action, Action::Create);
    assert!(plan.to_json()?.contains("\"shared\""), "the looked-up value is known at plan time:\n{}", plan.render(false));
    assert!(plan.changes.iter().all(|c| c.address != "shared"), "a lookup is not a change");

    let state = env.apply(&stack()).await?;
    let objects = env.cloud.objects();
    assert_eq!(
        objects.values().filter(|o| o.thing.name == "user").map(|o| o.thing.value.clone()).collect::<Vec<_>>(),
        [Some("shared".into())]
    );
    assert_eq!(objects.len(), 2, "nothing made for the lookup");
    assert!(!state.resources.contains_key("shared"), "a lookup is not in state");
    assert_eq!(state.outputs["shared_id"].value, "shared-1");
    assert!(!env.plan(&stack()).await?.has_changes());

    // Read again on every plan: a change outside shows as an update of what uses it.
    env.cloud.tamper("shared-1", |t| t.name = "renamed".into());
    let plan = env.plan(&stack()).await?;
    assert_eq!(action(&plan, "user"), Some(Action::Update), "{}", plan.render(false));

    // Nothing found, or several: a plan error naming the lookup; nothing changed.
    env.cloud.remove("shared-1");
    let err = env.plan(&stack()).await.expect_err("nothing to find").to_string();
    assert!(err.contains("shared") && err.contains("no thing has value `team-a`"), "{err}");
    env.cloud.put("a-1", Thing::new("a").value("team-a"));
    env.cloud.put("b-1", Thing::new("b").value("team-a"));
    let err = env.plan(&stack()).await.expect_err("two match").to_string();
    assert!(err.contains("2 things have value `team-a` (a-1, b-1)"), "{err}");

    // Destroy needs nothing from a lookup: it works while the lookup finds nothing.
    env.cloud.remove("a-1");
    env.cloud.remove("b-1");
    env.engine().destroy(&stack()).await?;
    assert!(env.cloud.objects().is_empty());
    Ok(())
}

/// A lookup may use another lookup or a resource that exists; one that needs a resource not made yet is
/// refused with the reason, before anything is changed; one that names nothing in the stack is a
/// validation error.
#[tokio::test]
async fn lookups_use_known_values_only() -> R {
    use ferroform_core::memory::FindThing;
    let env = Env::new();
    env.cloud.put("tag-1", Thing::new("team-a").value("root"));
    env.cloud.put("leaf-1", Thing::new("leaf").value("team-a"));
    let mut s = Stack::new("app");
    let root = s.lookup("root", FindThing { value: "root".into() });
    let leaf = s.lookup("leaf", FindThing { value: format!("{}", root.name()) });
    s.add("user", Thing::new("user").value(leaf.name()));
    env.apply(&s).await?;
    assert!(env.cloud.objects().values().any(|o| o.thing.name == "user" && o.thing.value.as_deref() == Some("leaf")));

    let mut s = Stack::new("other");
    let made = s.add("made", Thing::new("made").value("x"));
    s.lookup("needs-made", FindThing { value: made.name().to_string() });
    let err = Env::with_cloud(env.cloud.clone()).plan(&s).await.expect_err("made is not created yet").to_string();
    assert!(err.contains("needs-made") && err.contains("made.name") && err.contains("not known before it is created"), "{err}");

    let mut s = Stack::new("bad");
    s.lookup("dangling", FindThing { value: ferroform_core::Ref::<String>::new("ghost", "name").token() });
    let err = Env::with_cloud(env.cloud.clone()).plan(&s).await.expect_err("ghost").to_string();
    assert!(err.contains("dangling") && err.contains("`ghost`, which is not in the stack"), "{err}");
    Ok(())
}

/// Another stack's outputs, read from its state without its lock, typed as the caller names them, read
/// again on every plan; an output it does not have, or a state that is not there, is a plan error.
#[tokio::test]
async fn stack_outputs_are_read_from_the_other_stacks_state() -> R {
    use ferroform_core::{LockInfo, Ref};
    let cloud = Cloud::new();
    let net = Env::with_cloud(cloud.clone());
    let network = |size: u64| {
        let mut s = Stack::new("network");
        let t = s.add("vpc", Thing::new("vpc").size(size));
        s.output("vpc_name", t.name());
        s.output("size", size);
        s
    };
    net.apply(&network(3)).await?;
    let location = net.state_path().to_string_lossy().into_owned();

    let app_env = Env::with_cloud(cloud.clone());
    let app = |output: &str| {
        let mut s = Stack::new("app");
        let remote = s.stack_outputs("network", &location);
        let name: Ref<String> = remote.get(output);
        s.add("user", Thing::new("user").value(name));
        s.output("network_size", remote.get::<Ref<u64>>("size"));
        s
    };
    // The other stack is being applied (its lock is held): reading its outputs takes no lock.
    let other = LocalBackend::new(net.state_path());
    let held = LockInfo::new("apply");
    ferroform_core::Backend::lock(&other, &held).await?;
    let state = app_env.apply(&app("vpc_name")).await?;
    ferroform_core::Backend::unlock(&other, &held.id).await?;
    assert!(cloud.objects().values().any(|o| o.thing.name == "user" && o.thing.value.as_deref() == Some("vpc")));
    assert_eq!(state.outputs["network_size"].value, 3, "a number stays a number");
    assert!(!app_env.plan(&app("vpc_name")).await?.has_changes());

    // Read on every plan: the other stack's new output value is planned here.
    net.apply(&network(5)).await?;
    let plan = app_env.plan(&app("vpc_name")).await?;
    assert!(plan.has_changes() && plan.render(false).contains("network_size = 5"), "{}", plan.render(false));

    let err = app_env.plan(&app("subnet_name")).await.expect_err("no such output").to_string();
    assert!(err.contains("user") && err.contains("`network` has no `subnet_name`"), "{err}");

    let mut s = Stack::new("app2");
    s.stack_outputs("network", &app_env.dir.path().join("nowhere.json").to_string_lossy());
    let err = Env::with_cloud(cloud).plan(&s).await.expect_err("no state there").to_string();
    assert!(err.contains("stack `network` has no state at"), "{err}");
    Ok(())
}

/// Resources on another provider (a second region or account) are made, read, updated and deleted through
/// it, state records each one's provider (a resource dropped from the code is still deleted where it is), the
/// plan groups changes by provider, and the account guard checks each provider on its own.
#[tokio::test]
async fn resources_on_another_provider_live_there() -> R {
    use ferroform_core::memory::OtherCloud;
    let env = Env::new();
    let other = Cloud::new();
    env.cloud.set_identity("111111111111", "eu-west-1");
    other.set_identity("222222222222", "us-east-1");
    let stack = |with_far: bool, value: &str| {
        let mut s = Stack::new("app");
        let use1 = s.provider("use1", OtherCloud(other.clone()));
        let here = s.add("here", Thing::new("here"));
        if with_far {
            // A reference across providers is an ordinary edge.
            s.add_with("far", Thing::new("far").value(here.name()), Options::new().on(&use1));
            s.on(&use1, |s| s.add("also-far", Thing::new("also-far").value(value)));
        }
        s
    };
    let plan = env.plan(&stack(true, "v1")).await?;
    let text = plan.render(false);
    let (default_part, use1_part) = text.split_once("On provider `use1`:").expect("a heading for use1");
    assert!(default_part.contains("+ here") && !default_part.contains("far"), "{text}");
    assert!(use1_part.contains("+ far") && use1_part.contains("+ also-far"), "{text}");
    assert_eq!(plan.changes.iter().find(|c| c.address == "far").and_then(|c| c.provider.clone()).as_deref(), Some("use1"));

    let state = env.apply(&stack(true, "v1")).await?;
    let names = |c: &Cloud| c.objects().values().map(|o| o.thing.name.clone()).collect::<std::collections::BTreeSet<_>>();
    assert_eq!(names(&env.cloud), ["here".to_string()].into());
    assert_eq!(names(&other), ["also-far".to_string(), "far".to_string()].into());
    assert_eq!(state.resources["far"].provider.as_deref(), Some("use1"));
    assert_eq!(state.resources["here"].provider, None);
    assert_eq!(state.provider_accounts["use1"].as_ref().map(|i| i.account.as_str()), Some("222222222222"));
    assert!(!env.plan(&stack(true, "v1")).await?.has_changes(), "read back through the right provider");

    // An update goes to the other cloud; drift there is seen there.
    env.apply(&stack(true, "v2")).await?;
    assert!(other.objects().values().any(|o| o.thing.name == "also-far" && o.thing.value.as_deref() == Some("v2")));

    // Another account behind the alias is refused, before anything is read or changed.
    other.set_identity("333333333333", "us-east-1");
    let err = env.plan(&stack(true, "v2")).await.expect_err("use1 is another account now").to_string();
    assert!(err.contains("provider `use1`") && err.contains("222222222222") && err.contains("333333333333"), "{err}");
    other.set_identity("222222222222", "us-east-1");

    // Dropped from the code: deleted in the cloud it lives in.
    env.apply(&stack(false, "v2")).await?;
    assert!(other.objects().is_empty());
    assert_eq!(names(&env.cloud), ["here".to_string()].into());

    // A resource on a provider the stack does not declare: a validation error naming it.
    let mut s = Stack::new("app");
    let ghost = Stack::new("x").provider("ghost", OtherCloud(other.clone()));
    s.add_with("lost", Thing::new("lost"), Options::new().on(&ghost));
    let err = env.plan(&s).await.expect_err("undeclared provider").to_string();
    assert!(err.contains("lost") && err.contains("provider `ghost` is not declared"), "{err}");
    Ok(())
}

/// The create of a create-before-destroy replacement is told to leave the old object alone: its own lookups
/// (after an answer that may be lost) would otherwise find the old one, which carries the same tags.
#[tokio::test]
async fn a_replacements_create_excludes_the_object_it_replaces() -> R {
    let env = Env::new();
    env.cloud.record_excludes();
    env.apply(&replaceable("a1")).await?;
    let old = env.id("a")?;
    env.apply(&replaceable("a2")).await?;
    assert!(env.cloud.create_excludes("a2").contains(&old), "{:?}", env.cloud.create_excludes("a2"));
    Ok(())
}

/// A delete the service carried out but whose answer was lost (the retries' answers too) is settled by a
/// read: the object is gone, so the destroy goes on and state forgets it. A delete that failed before acting
/// stays an error, and state keeps the object.
#[tokio::test]
async fn a_delete_whose_answer_is_lost_is_settled_by_a_read() -> R {
    let env = Env::new();
    env.apply(&chain("v1")).await?;
    env.cloud.lose_answer_of("delete b");
    env.engine().destroy(&chain("v1")).await?;
    assert!(env.cloud.objects().is_empty());
    assert!(env.state()?.resources.is_empty());

    env.cloud.clear_failures();
    env.apply(&chain("v1")).await?;
    env.cloud.fail_on("delete b");
    let err = env.engine().destroy(&chain("v1")).await.err().map(|e| format!("{e:#}")).unwrap_or_default();
    assert!(err.contains("delete b failed on purpose"), "{err}");
    let left: Vec<String> = env.cloud.objects().values().map(|o| o.thing.name.clone()).collect();
    assert!(left.contains(&"b".to_string()), "{left:?}");
    assert!(env.state()?.resources.contains_key("b"));
    Ok(())
}

/// An update whose answer was lost after the service made it is settled by a read that finds the object as
/// the code wants it; one that failed before acting stays an error and state keeps the old inputs.
#[tokio::test]
async fn an_update_whose_answer_is_lost_is_settled_by_a_read() -> R {
    let env = Env::new();
    env.apply(&chain("v1")).await?;
    env.cloud.lose_answer_of("update a");
    let state = env.apply(&chain("v2")).await?;
    assert_eq!(state.resources["a"].inputs["value"], "v2");
    assert_eq!(state.resources["a"].outputs["version"], "2", "outputs from the read");
    assert_eq!(env.cloud.objects()[&env.id("a")?].thing.value.as_deref(), Some("v2"));
    assert!(!env.plan(&chain("v2")).await?.has_changes());

    env.cloud.clear_failures();
    env.cloud.fail_on("update a");
    assert!(env.apply(&chain("v3")).await.is_err());
    assert_eq!(env.state()?.resources["a"].inputs["value"], "v2");
    assert_eq!(env.cloud.objects()[&env.id("a")?].thing.value.as_deref(), Some("v2"));
    Ok(())
}

/// A create whose object was made but whose answer was lost is settled by the object its tags find, as
/// desired: one object, the one in state. A create that failed before acting stays an error.
#[tokio::test]
async fn a_create_whose_answer_is_lost_is_settled_by_its_tags() -> R {
    let env = Env::new();
    env.cloud.lose_answer_of("create b");
    let state = env.apply(&chain("v1")).await?;
    let bs: Vec<String> = env.cloud.objects().iter().filter(|(_, o)| o.thing.name == "b").map(|(id, _)| id.clone()).collect();
    assert_eq!(bs.len(), 1, "one b: {bs:?}");
    assert_eq!(state.resources["b"].id.as_ref(), Some(&bs[0]));
    assert_eq!(state.resources["b"].outputs["arn"], format!("arn:mem:{}", bs[0]));
    assert!(!env.plan(&chain("v1")).await?.has_changes());

    let env = Env::new();
    env.cloud.fail_on("create b");
    assert!(env.apply(&chain("v1")).await.is_err());
    assert!(env.cloud.objects().values().all(|o| o.thing.name != "b"));
    Ok(())
}
