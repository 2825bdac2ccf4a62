//! The task runner: tasks started with `RunTask` in the emulator (which records them but runs nothing) are
//! run as local processes, one per container that has a local program, with the container's environment
//! plus the RunTask overrides. When the essential container's process exits, the task is stopped in the
//! emulator with the exit code in the reason; output goes to the container's `awslogs` stream
//! (`PREFIX/CONTAINER/TASK_ID`) and to the terminal.

use crate::logs::{say, LogStream};
use std::collections::{BTreeMap, HashSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// A container of a known task definition and how to run it here.
#[derive(Debug, Clone)]
pub struct ContainerRun {
    pub name: String,
    pub essential: bool,
    /// The executable and arguments, or why there is none.
    pub program: Result<(PathBuf, Vec<String>), String>,
    /// The container's environment as applied.
    pub env: BTreeMap<String, String>,
    /// `awslogs` group and stream prefix.
    pub logs: Option<(String, String)>,
}

/// A task definition `serve` knows.
#[derive(Debug, Clone)]
pub struct TaskDef {
    /// With its revision: `arn:aws:ecs:REGION:ACCOUNT:task-definition/FAMILY:N`.
    pub arn: String,
    pub containers: Vec<ContainerRun>,
}

/// Polls the clusters for new tasks and runs them until `stop`.
pub struct TaskRunner {
    pub ecs: aws_sdk_ecs::Client,
    pub logs: aws_sdk_cloudwatchlogs::Client,
    pub clusters: Vec<String>,
    pub definitions: Vec<TaskDef>,
    /// The environment every process gets (the emulator's endpoint, credentials, region, PATH).
    pub base_env: BTreeMap<String, String>,
}

impl TaskRunner {
    /// The tasks running now: started before serving, they are not this run's to run. Taken before the
    /// APIs open, so no task they start is missed.
    pub async fn already_running(&self) -> HashSet<String> {
        let mut seen = HashSet::new();
        for cluster in &self.clusters {
            seen.extend(self.running(cluster).await);
        }
        seen
    }

    /// Runs every task started from now on (not in `seen`) until `stop`.
    pub async fn run(self: Arc<Self>, mut seen: HashSet<String>, stop: watch::Receiver<bool>) {
        let mut stop_rx = stop.clone();
        loop {
            for cluster in &self.clusters {
                let fresh: Vec<String> = self.running(cluster).await.into_iter().filter(|a| !seen.contains(a)).collect();
                if fresh.is_empty() {
                    continue;
                }
                seen.extend(fresh.iter().cloned());
                let described = self.ecs.describe_tasks().cluster(cluster).set_tasks(Some(fresh)).send().await;
                let tasks = match described {
                    Ok(d) => d.tasks.unwrap_or_default(),
                    Err(e) => {
                        tracing::warn!(error = %aws_sdk_ecs::error::DisplayErrorContext(&e), "DescribeTasks failed");
                        continue;
                    }
                };
                for task in tasks {
                    let me = self.clone();
                    let cluster = cluster.clone();
                    let stop = stop.clone();
                    tokio::spawn(async move { me.run_task(&cluster, task, stop).await });
                }
            }
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_millis(250)) => {}
                _ = stop_rx.changed() => if *stop_rx.borrow() { return },
            }
        }
    }

    async fn running(&self, cluster: &str) -> Vec<String> {
        match self.ecs.list_tasks().cluster(cluster).desired_status(aws_sdk_ecs::types::DesiredStatus::Running).send().await {
            Ok(out) => out.task_arns.unwrap_or_default(),
            Err(e) => {
                tracing::warn!(%cluster, error = %aws_sdk_ecs::error::DisplayErrorContext(&e), "ListTasks failed");
                Vec::new()
            }
        }
    }

    /// The exit code travels in `reason`: ECS fills `containers[].exitCode` from its agent
    /// (SubmitContainerStateChange), which moto 5.2.5 does not implement; its DescribeTasks reports the 0 it
    /// set at RunTask whatever the process did.
    async fn stop_task(&self, cluster: &str, task_arn: &str, reason: &str) {
        if let Err(e) = self.ecs.stop_task().cluster(cluster).task(task_arn).reason(reason).send().await {
            tracing::warn!(%task_arn, error = %aws_sdk_ecs::error::DisplayErrorContext(&e), "StopTask failed");
        }
    }

    async fn run_task(&self, cluster: &str, task: aws_sdk_ecs::types::Task, stop: watch::Receiver<bool>) {
        let Some(task_arn) = task.task_arn.clone() else { return };
        let task_id = task_arn.rsplit('/').next().unwrap_or(&task_arn).to_string();
        let def_arn = task.task_definition_arn.clone().unwrap_or_default();
        let Some(def) = self.definitions.iter().find(|d| d.arn == def_arn) else {
            say(&format!("tasks | {task_id}: task definition {def_arn} is not this stack's: not run"));
            return;
        };
        let overrides: BTreeMap<String, BTreeMap<String, String>> = task
            .overrides
            .as_ref()
            .and_then(|o| o.container_overrides.as_ref())
            .map(|list| {
                list.iter()
                    .filter_map(|c| {
                        let env =
                            c.environment.as_ref()?.iter().filter_map(|kv| Some((kv.name.clone()?, kv.value.clone().unwrap_or_default())));
                        Some((c.name.clone()?, env.collect()))
                    })
                    .collect()
            })
            .unwrap_or_default();
        let mut children = Vec::new();
        for container in &def.containers {
            let prefix = format!("{}/{}", container.name, &task_id[..task_id.len().min(8)]);
            let log = match &container.logs {
                Some((group, stream_prefix)) => {
                    LogStream::cloudwatch(prefix, self.logs.clone(), group.clone(), format!("{stream_prefix}/{}/{task_id}", container.name))
                }
                None => LogStream::terminal(prefix),
            };
            let (program, args) = match &container.program {
                Ok(p) => p.clone(),
                Err(why) => {
                    log.line(&format!("not run: {why}"));
                    if container.essential {
                        self.stop_task(cluster, &task_arn, &format!("Essential container {} can't run locally: {why}", container.name))
                            .await;
                        return;
                    }
                    continue;
                }
            };
            let mut cmd = tokio::process::Command::new(&program);
            cmd.args(&args)
                .env_clear()
                .envs(&self.base_env)
                .envs(&container.env)
                .envs(overrides.get(&container.name).into_iter().flatten())
                .stdin(std::process::Stdio::null())
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .process_group(0)
                .kill_on_drop(true);
            match cmd.spawn() {
                Ok(mut child) => {
                    if let Some(out) = child.stdout.take() {
                        log.pump(out);
                    }
                    if let Some(err) = child.stderr.take() {
                        log.pump(err);
                    }
                    children.push((container.clone(), child, log));
                }
                Err(e) => {
                    let why = format!("can't start {}: {e}", program.display());
                    log.line(&why);
                    self.stop_task(cluster, &task_arn, &format!("Essential container {} failed to start: {why}", container.name)).await;
                    return;
                }
            }
        }
        // The task ends when an essential container ends.
        let mut stop = stop;
        let mut waits = Vec::new();
        for (container, mut child, log) in children {
            waits.push(Box::pin(async move {
                let status = child.wait().await;
                (container, status, log, child)
            }));
        }
        if waits.is_empty() {
            return;
        }
        loop {
            let all = futures_select_all(std::mem::take(&mut waits));
            tokio::select! {
                (done, _, rest) = all => {
                    let (container, status, log, _child) = done;
                    let code = status.as_ref().ok().and_then(|s| s.code());
                    let reason = match code {
                        Some(code) => format!("Essential container in task exited (container {} exit code {code})", container.name),
                        None => format!("Essential container in task exited (container {} killed: {:?})", container.name, status),
                    };
                    log.line(&reason);
                    if container.essential || rest.is_empty() {
                        // The other containers are killed when their children drop with `rest`.
                        self.stop_task(cluster, &task_arn, &reason).await;
                        return;
                    }
                    waits = rest;
                }
                // Only ever changes to true: serving stops (the processes are killed as `all` drops).
                _ = stop.changed() => {
                    self.stop_task(cluster, &task_arn, "serve stopped").await;
                    return;
                }
            }
        }
    }
}

/// `futures::future::select_all` without the dependency: the first to finish and the rest.
async fn futures_select_all<F: std::future::Future + Unpin>(mut futures: Vec<F>) -> (F::Output, usize, Vec<F>) {
    let (out, i) = std::future::poll_fn(|cx| {
        for (i, f) in futures.iter_mut().enumerate() {
            if let std::task::Poll::Ready(out) = std::pin::Pin::new(f).poll(cx) {
                return std::task::Poll::Ready((out, i));
            }
        }
        std::task::Poll::Pending
    })
    .await;
    drop(futures.remove(i));
    (out, i, futures)
}
