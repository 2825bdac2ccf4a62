//! The state journal under kill -9: a child process (this test binary re-run) applies a memory-provider stack
//! whose cloud outlives it (written through to a file), and stops inside its k-th journal append, where the
//! test kills it with SIGKILL. For every k: the recovered state holds every record the child made durable,
//! and a re-run reaches exactly the state and the cloud a clean run reaches.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use async_trait::async_trait;
use ferroform_core::memory::{Cloud, Mem, Object, Thing};
use ferroform_core::{Backend, Contexts, Engine, LocalBackend, LockInfo, PlanOptions, Stack, State};
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

type R<T = ()> = anyhow::Result<T>;

const CHILD: &str = "FERROFORM_JOURNAL_CHILD";

/// The first version of the stack.
fn v1() -> Stack {
    let mut s = Stack::new("t");
    let a = s.add("a", Thing::new("res-a"));
    let b = s.add("b", Thing::new("res-b").value(a.arn()));
    s.add("c", Thing::new("res-c").value(format!("{}/child", b.arn())));
    let d = s.add("d", Thing::new("res-d").value("one"));
    s.add("e", Thing::new("res-e").unique());
    s.add("f", Thing::new("res-f"));
    s.add("g", Thing::new("res-g").value(d.arn()));
    s.output("b_arn", b.arn());
    s
}

/// Every kind of step from v1: a replaced before destroyed (its old object deposed, b re-pointed), e
/// replaced after destroying (a unique name), d updated, f deleted, h and i created.
fn v2() -> Stack {
    let mut s = Stack::new("t");
    let a = s.add("a", Thing::new("res-a2"));
    let b = s.add("b", Thing::new("res-b").value(a.arn()));
    s.add("c", Thing::new("res-c").value(format!("{}/child", b.arn())));
    let d = s.add("d", Thing::new("res-d").value("two"));
    s.add("e", Thing::new("res-e2").unique());
    s.add("g", Thing::new("res-g").value(d.arn()));
    let h = s.add("h", Thing::new("res-h"));
    s.add("i", Thing::new("res-i").value(format!("{}+{}", h.arn(), a.arn())));
    s.output("b_arn", b.arn());
    s.output("i_value", "fixed");
    s
}

fn stack(version: &str) -> Stack {
    if version == "v1" {
        v1()
    } else {
        v2()
    }
}

fn engine(state: &Path, cloud: Arc<Cloud>, backend: Option<Arc<dyn Backend>>) -> Engine {
    let contexts = Contexts::new();
    contexts.insert(Mem(cloud));
    let backend = backend.unwrap_or_else(|| Arc::new(LocalBackend::new(state)));
    // One step at a time: the k-th record is the same point of the run every time.
    Engine::new(backend).contexts(contexts).parallelism(1)
}

/// A local backend that stops for good in the first fsync that makes k or more journal records durable,
/// once it has.
struct StopAt {
    inner: LocalBackend,
    k: usize,
    appended: AtomicUsize,
    stopped: std::sync::atomic::AtomicBool,
}

#[async_trait]
impl Backend for StopAt {
    fn location(&self) -> String {
        self.inner.location()
    }
    async fn read(&self) -> ferroform_core::Result<Option<Vec<u8>>> {
        self.inner.read().await
    }
    async fn write(&self, bytes: &[u8]) -> ferroform_core::Result<()> {
        self.inner.write(bytes).await
    }
    async fn lock(&self, info: &LockInfo) -> ferroform_core::Result<()> {
        self.inner.lock(info).await
    }
    async fn unlock(&self, id: &str) -> ferroform_core::Result<()> {
        self.inner.unlock(id).await
    }
    async fn force_unlock(&self, id: &str) -> ferroform_core::Result<()> {
        self.inner.force_unlock(id).await
    }
    fn has_journal(&self) -> bool {
        true
    }
    async fn append(&self, lines: &[u8]) -> ferroform_core::Result<()> {
        self.inner.append(lines).await?;
        self.appended.fetch_add(lines.iter().filter(|b| **b == b'\n').count(), Ordering::SeqCst);
        Ok(())
    }
    async fn sync_journal(&self) -> ferroform_core::Result<()> {
        let covered = self.appended.load(Ordering::SeqCst);
        self.inner.sync_journal().await?;
        if covered >= self.k && !self.stopped.swap(true, Ordering::SeqCst) {
            println!("STOPPED at {covered}");
            tokio::time::sleep(std::time::Duration::from_secs(600)).await;
        }
        Ok(())
    }
}

/// Only does something when started by the test below: applies `version` over the cloud in `dir` and
/// stops inside its k-th journal append (or says how many it made when the run ends first).
#[tokio::test]
async fn journal_child() -> R {
    let Ok(spec) = std::env::var(CHILD) else { return Ok(()) };
    let mut parts = spec.splitn(3, ':');
    let (Some(k), Some(version), Some(dir)) = (parts.next(), parts.next(), parts.next()) else { anyhow::bail!("bad spec {spec}") };
    let dir = PathBuf::from(dir);
    let cloud = Cloud::load(&dir.join("cloud.json"))?;
    cloud.write_through(dir.join("cloud.json"));
    let backend = Arc::new(StopAt {
        inner: LocalBackend::new(dir.join("state.json")),
        k: k.parse()?,
        appended: AtomicUsize::new(0),
        stopped: Default::default(),
    });
    let counter = backend.clone();
    engine(&dir.join("state.json"), cloud, Some(backend)).apply(&stack(version), &PlanOptions::default()).await?;
    println!("DONE after {}", counter.appended.load(Ordering::SeqCst));
    Ok(())
}

/// The child applies `version` in `dir` and is killed with SIGKILL once k records are durable; returns how
/// many were then, or `None` when it finished first.
fn run_child_and_kill(dir: &Path, version: &str, k: usize) -> R<Option<usize>> {
    let mut child = Command::new(std::env::current_exe()?)
        .args(["journal_child", "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD, format!("{k}:{version}:{}", dir.display()))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()?;
    let stdout = child.stdout.take().ok_or_else(|| anyhow::anyhow!("no stdout"))?;
    let mut stopped = None;
    for line in BufReader::new(stdout).lines() {
        let line = line?;
        // libtest prints "test name ... " without a newline before the test's own output.
        if let Some((_, n)) = line.split_once("STOPPED at ") {
            stopped = Some(n.trim().parse()?);
            break;
        }
        if line.contains("DONE after") {
            break;
        }
    }
    child.kill()?; // SIGKILL: no destructor, no flush, no unlock
    child.wait()?;
    Ok(stopped)
}

/// Ids are `<name>-<counter>`, and the counter differs between runs: each id becomes its object's name.
fn normalized(state: &State, objects: &BTreeMap<String, Object>) -> R<(serde_json::Value, Vec<String>)> {
    let mut ids: Vec<(&String, &Object)> = objects.iter().collect();
    ids.sort_by_key(|(id, _)| std::cmp::Reverse(id.len()));
    let mut text = serde_json::to_string(&(&state.resources, &state.deposed, &state.outputs))?;
    let mut cloud: Vec<String> = Vec::new();
    for (id, o) in &ids {
        text = text.replace(id.as_str(), &format!("<{}>", o.thing.name));
    }
    for o in objects.values() {
        let mut v = serde_json::to_string(o)?;
        for (id, o) in &ids {
            v = v.replace(id.as_str(), &format!("<{}>", o.thing.name));
        }
        cloud.push(v);
    }
    cloud.sort();
    Ok((serde_json::from_str(&text)?, cloud))
}

/// Killed at every journal record of an apply from nothing, and of one that replaces, updates, deletes and
/// creates: the recovered state holds every durable record, and a re-run ends exactly as a clean run does.
#[tokio::test]
async fn killed_at_every_journal_record_a_rerun_ends_as_a_clean_run() -> R {
    for (from, to) in [(None, "v1"), (Some("v1"), "v2")] {
        // The starting point, made once: a state and a cloud file.
        let base = tempfile::tempdir()?;
        let cloud = Cloud::new();
        cloud.write_through(base.path().join("cloud.json"));
        let start_state = base.path().join("state.json");
        if let Some(from) = from {
            engine(&start_state, cloud.clone(), None).apply(&stack(from), &PlanOptions::default()).await?;
        } else {
            std::fs::write(base.path().join("cloud.json"), b"{}")?;
        }
        let start_serial =
            LocalBackend::new(&start_state).read().await?.map(|b| State::parse(&b, "start")).transpose()?.map_or(0, |s| s.serial);
        let copy_base = |dir: &Path| -> R {
            for f in ["cloud.json", "state.json"] {
                if base.path().join(f).exists() {
                    std::fs::copy(base.path().join(f), dir.join(f))?;
                }
            }
            Ok(())
        };

        // A clean run from there.
        let clean_dir = tempfile::tempdir()?;
        copy_base(clean_dir.path())?;
        let clean_cloud = Cloud::load(&clean_dir.path().join("cloud.json"))?;
        let (_, clean) =
            engine(&clean_dir.path().join("state.json"), clean_cloud.clone(), None).apply(&stack(to), &PlanOptions::default()).await?;
        let clean = normalized(&clean, &clean_cloud.objects())?;

        let mut killed = 0;
        for k in 1.. {
            let dir = tempfile::tempdir()?;
            copy_base(dir.path())?;
            let Some(durable) = run_child_and_kill(dir.path(), to, k)? else { break };
            killed += 1;
            let state_path = dir.path().join("state.json");
            assert!(dir.path().join("state.json.journal").exists(), "{to} k={k}: the run was killed with its journal");
            // Readers (`state`, `output`) see the document with the journal applied, without the lock.
            let cloud = Cloud::load(&dir.path().join("cloud.json"))?;
            let e = engine(&state_path, cloud.clone(), None);
            let seen = e.state("t").await?;
            // The run wrote its document once (serial start + 1), then one record per change: every whole line
            // (the durable ones, and any written after them that reached the file before the kill).
            let lines = std::fs::read(dir.path().join("state.json.journal"))?.iter().filter(|b| **b == b'\n').count();
            assert!(lines >= durable, "{to} k={k}: {lines} lines, {durable} made durable");
            assert_eq!(seen.serial, start_serial + 1 + lines as u64, "{to} k={k}: every record is recovered");
            assert_eq!(e.outputs("t").await?, seen.outputs);

            // The next run folds the journal into the document under the lock and finishes the work.
            let (_, after) = e.apply(&stack(to), &PlanOptions::default()).await?;
            assert!(!dir.path().join("state.json.journal").exists(), "{to} k={k}: the journal is folded into the document");
            assert_eq!(State::parse(&std::fs::read(&state_path)?, "state.json")?, after, "{to} k={k}: the document is the final state");
            let got = normalized(&after, &cloud.objects())?;
            assert_eq!(got.0, clean.0, "{to} k={k}: the state is a clean run's");
            assert_eq!(got.1, clean.1, "{to} k={k}: the cloud is a clean run's (nothing duplicated or orphaned)");
            assert!(!e.plan(&stack(to), &PlanOptions::default()).await?.has_changes(), "{to} k={k}: nothing left to do");
        }
        println!("{to}: killed at {killed} points");
        assert!(killed >= 6, "{to}: only {killed} kill points");
    }
    Ok(())
}

/// A backend that writes whole documents (as S3 does), slowly, remembering each write and how many cloud
/// calls had been made when it landed.
struct Documents {
    cloud: Arc<Cloud>,
    current: std::sync::Mutex<Option<Vec<u8>>>,
    writes: std::sync::Mutex<Vec<(usize, State)>>,
}

#[async_trait]
impl Backend for Documents {
    fn location(&self) -> String {
        "documents".into()
    }
    async fn read(&self) -> ferroform_core::Result<Option<Vec<u8>>> {
        Ok(self.current.lock().unwrap().clone())
    }
    async fn write(&self, bytes: &[u8]) -> ferroform_core::Result<()> {
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        *self.current.lock().unwrap() = Some(bytes.to_vec());
        self.writes.lock().unwrap().push((self.cloud.calls().len(), State::parse(bytes, "documents")?));
        Ok(())
    }
    async fn lock(&self, _: &LockInfo) -> ferroform_core::Result<()> {
        Ok(())
    }
    async fn unlock(&self, _: &str) -> ferroform_core::Result<()> {
        Ok(())
    }
    async fn force_unlock(&self, _: &str) -> ferroform_core::Result<()> {
        Ok(())
    }
}

/// Without a journal every write is the whole document: writes carry many steps each, and still what a step
/// depends on is durable before it starts (a created object before the update that points at it).
#[tokio::test]
async fn whole_document_writes_are_coalesced_and_a_created_object_is_durable_before_its_dependents_start() -> R {
    let cloud = Cloud::new();
    let backend = Arc::new(Documents { cloud: cloud.clone(), current: Default::default(), writes: Default::default() });
    let contexts = Contexts::new();
    contexts.insert(Mem(cloud.clone()));
    let engine = Engine::new(backend.clone()).contexts(contexts).parallelism(40);
    let mut wide = v1();
    for i in 0..40 {
        wide.add(&format!("w{i}"), Thing::new(format!("wide-{i}")));
    }
    let (_, state) = engine.apply(&wide, &PlanOptions::default()).await?;
    let writes = backend.writes.lock().unwrap().len();
    // 47 creates: 94 changes, plus the first write and the outputs.
    assert!(state.serial >= 96 && writes * 4 < state.serial as usize, "{writes} writes for {} changes", state.serial);

    backend.writes.lock().unwrap().clear();
    cloud.reset_calls();
    let (_, after) = engine.apply(&v2(), &PlanOptions::default()).await?;
    let new_a = after.resources["a"].id.clone().unwrap_or_default();
    let calls = cloud.calls();
    let update_b = calls.iter().position(|c| c == "update res-b").ok_or_else(|| anyhow::anyhow!("b not updated: {calls:?}"))?;
    let durable_before = backend.writes.lock().unwrap().iter().any(|(made, s)| {
        *made <= update_b
            && s.resources
                .get("a")
                .is_some_and(|a| a.id.as_deref() == Some(new_a.as_str()) && a.status == ferroform_core::state::Status::Ready)
    });
    assert!(durable_before, "the new a was durable before b's update started pointing at it: {calls:?}");
    Ok(())
}
