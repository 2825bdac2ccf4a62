//! Lock contention between two real processes: this test binary re-runs itself as the lock holder.

use ferroform_core::memory::{Cloud, Mem, Thing};
use ferroform_core::{Backend, Contexts, Engine, LocalBackend, LockInfo, PlanOptions, Stack};
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::Arc;

const CHILD: &str = "FERROFORM_LOCK_CHILD";

/// Only does something when started by the test below: takes the lock and holds it until killed.
#[tokio::test]
async fn lock_holder_child() -> anyhow::Result<()> {
    let Ok(path) = std::env::var(CHILD) else { return Ok(()) };
    let backend = LocalBackend::new(path);
    backend.lock(&LockInfo::new("apply")).await?;
    println!("LOCKED pid={}", std::process::id());
    tokio::time::sleep(std::time::Duration::from_secs(60)).await;
    Ok(())
}

#[tokio::test]
async fn a_second_process_is_refused_then_takes_over_when_the_holder_dies() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("state.json");
    let mut child = Command::new(std::env::current_exe()?)
        .args(["lock_holder_child", "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD, &path)
        .stdout(Stdio::piped())
        .spawn()?;
    let stdout = child.stdout.take().ok_or_else(|| anyhow::anyhow!("no stdout"))?;
    let mut lines = BufReader::new(stdout).lines();
    let pid = loop {
        let line = lines.next().ok_or_else(|| anyhow::anyhow!("child ended before locking"))??;
        // libtest prints "test name ... " without a newline before the test's own output.
        if let Some((_, p)) = line.split_once("LOCKED pid=") {
            break p.trim().to_string();
        }
    };

    let cloud = Cloud::new();
    let contexts = Contexts::new();
    contexts.insert(Mem(cloud.clone()));
    let engine = Engine::new(Arc::new(LocalBackend::new(&path))).contexts(contexts);
    let mut stack = Stack::new("t");
    stack.add("a", Thing::new("a"));
    let err = engine.apply(&stack, &PlanOptions::default()).await.err().map(|e| e.to_string()).unwrap_or_default();
    assert!(err.contains("is locked by") && err.contains(&format!("pid {pid}")) && err.contains("force-unlock"), "{err}");
    assert!(cloud.calls().is_empty(), "a refused run makes no call");

    // The holder dies without unlocking: the OS releases the lock, the next run takes over.
    child.kill()?;
    child.wait()?;
    engine.apply(&stack, &PlanOptions::default()).await?;
    assert_eq!(cloud.objects().len(), 1);
    Ok(())
}
