//! An in-memory cloud and resource types over it, for the engine's tests and benchmarks. It records every
//! call, measures how many ran at once (so concurrency is proven by observation, not timing), and can be
//! told to fail or to sleep a fixed latency per call.

use crate::error::{FieldError, ProviderError};
use crate::resource::{CallMeta, Context, Observed, Resource};
use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Object {
    pub type_name: String,
    pub thing: Thing,
    /// 1 when created, +1 on every update: the `version` output.
    pub version: u64,
}

#[derive(Default)]
pub struct Cloud {
    objects: Mutex<BTreeMap<String, Object>>,
    calls: Mutex<Vec<String>>,
    next_id: AtomicUsize,
    in_flight: AtomicUsize,
    max_in_flight: AtomicUsize,
    latency: Mutex<Duration>,
    fail: Mutex<BTreeSet<String>>,
    /// Calls that act, then fail as if their answer had been lost on the way back.
    lost: Mutex<BTreeSet<String>>,
    slow: Mutex<BTreeMap<String, Duration>>,
    identity: Mutex<Option<crate::resource::Identity>>,
    /// Where every change to the objects is written as it happens (see `write_through`).
    file: Mutex<Option<std::path::PathBuf>>,
    /// What each create was told to leave alone (`CallMeta::exclude`), by name: its own lookups must never
    /// take those. Recorded only when a test asks (`record_excludes`): working the list out for every create
    /// is exactly the cost the engine avoids by computing it lazily, and would dominate the scale bench.
    excludes: Mutex<BTreeMap<String, Vec<String>>>,
    record_excludes: std::sync::atomic::AtomicBool,
}

impl Cloud {
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }
    pub fn with_latency(latency: Duration) -> Arc<Self> {
        let c = Self::default();
        if let Ok(mut l) = c.latency.lock() {
            *l = latency;
        }
        Arc::new(c)
    }
    /// Calls whose `"op name"` (e.g. `"create b"`) is in the set fail.
    pub fn fail_on(&self, call: &str) {
        if let Ok(mut f) = self.fail.lock() {
            f.insert(call.to_string());
        }
    }
    /// Calls whose `"op name"` is in the set act, then fail as a lost answer does (after the SDK's retries).
    pub fn lose_answer_of(&self, call: &str) {
        if let Ok(mut l) = self.lost.lock() {
            l.insert(call.to_string());
        }
    }
    /// Calls on this name take `d` instead of the common latency.
    pub fn slow(&self, name: &str, d: Duration) {
        if let Ok(mut s) = self.slow.lock() {
            s.insert(name.to_string(), d);
        }
    }
    /// Whose account the credentials are from now on (none: the account guard is off).
    pub fn set_identity(&self, account: &str, region: &str) {
        if let Ok(mut i) = self.identity.lock() {
            *i = Some(crate::resource::Identity { account: account.into(), region: region.into(), partition: "mem".into() });
        }
    }
    pub fn clear_failures(&self) {
        if let Ok(mut f) = self.fail.lock() {
            f.clear();
        }
        if let Ok(mut l) = self.lost.lock() {
            l.clear();
        }
    }
    /// Every call so far as `"op name"`.
    pub fn calls(&self) -> Vec<String> {
        self.calls.lock().map(|c| c.clone()).unwrap_or_default()
    }
    pub fn reset_calls(&self) {
        if let Ok(mut c) = self.calls.lock() {
            c.clear();
        }
        self.max_in_flight.store(0, Ordering::SeqCst);
    }
    pub fn max_in_flight(&self) -> usize {
        self.max_in_flight.load(Ordering::SeqCst)
    }
    pub fn objects(&self) -> BTreeMap<String, Object> {
        self.objects.lock().map(|o| o.clone()).unwrap_or_default()
    }
    /// Changes an object behind the engine's back (drift).
    pub fn tamper(&self, id: &str, f: impl FnOnce(&mut Thing)) {
        if let Ok(mut o) = self.objects.lock() {
            if let Some(obj) = o.get_mut(id) {
                f(&mut obj.thing);
            }
        }
    }
    /// From now on every call that changes an object writes all objects to `path` before it returns: a
    /// cloud that outlives a process killed mid-apply, for crash tests (reload it with `load`).
    pub fn write_through(&self, path: impl Into<std::path::PathBuf>) {
        if let Ok(mut f) = self.file.lock() {
            *f = Some(path.into());
        }
    }
    /// A cloud holding the objects `write_through` wrote; new ids never collide with theirs.
    pub fn load(path: &std::path::Path) -> std::io::Result<Arc<Self>> {
        let objects: BTreeMap<String, Object> = serde_json::from_slice(&std::fs::read(path)?)?;
        let next = objects.keys().filter_map(|id| id.rsplit('-').next()?.parse::<usize>().ok()).max().map_or(0, |n| n + 1);
        let cloud = Self::default();
        cloud.next_id.store(next, Ordering::SeqCst);
        if let Ok(mut o) = cloud.objects.lock() {
            *o = objects;
        }
        Ok(Arc::new(cloud))
    }
    /// An object made outside any stack (what a lookup finds).
    pub fn put(&self, id: &str, thing: Thing) {
        if let Ok(mut o) = self.objects.lock() {
            o.insert(id.to_string(), Object { type_name: Thing::TYPE.to_string(), thing, version: 1 });
        }
    }
    /// From now on, remember what each create was told to exclude (see `create_excludes`).
    pub fn record_excludes(&self) {
        self.record_excludes.store(true, Ordering::SeqCst);
    }
    /// The ids the last create of `name` was told to exclude from its lookups (after `record_excludes`).
    pub fn create_excludes(&self, name: &str) -> Vec<String> {
        self.excludes.lock().ok().and_then(|e| e.get(name).cloned()).unwrap_or_default()
    }
    pub fn remove(&self, id: &str) {
        if let Ok(mut o) = self.objects.lock() {
            o.remove(id);
        }
    }

    async fn call<T>(
        &self,
        op: &str,
        name: &str,
        f: impl FnOnce(&mut BTreeMap<String, Object>) -> Result<T, ProviderError>,
    ) -> Result<T, ProviderError> {
        let label = format!("{op} {name}");
        if let Ok(mut c) = self.calls.lock() {
            c.push(label.clone());
        }
        let now = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        self.max_in_flight.fetch_max(now, Ordering::SeqCst);
        let latency = match self.slow.lock().ok().and_then(|s| s.get(name).copied()) {
            Some(d) => d,
            None => self.latency.lock().map(|l| *l).unwrap_or_default(),
        };
        if !latency.is_zero() {
            tokio::time::sleep(latency).await;
        } else {
            tokio::task::yield_now().await;
        }
        self.in_flight.fetch_sub(1, Ordering::SeqCst);
        if self.fail.lock().map(|f| f.contains(&label)).unwrap_or(false) {
            return Err(ProviderError::with_code("InjectedFailure", format!("{label} failed on purpose")));
        }
        let mut objects = self.objects.lock().map_err(|_| ProviderError::new("poisoned"))?;
        let out = f(&mut objects)?;
        if let Some(path) = self.file.lock().ok().and_then(|f| f.clone()).filter(|_| op != "read" && op != "find") {
            let bytes = serde_json::to_vec(&*objects).map_err(|e| ProviderError::new(e.to_string()))?;
            crate::local::write_atomic(&path, &bytes).map_err(|e| ProviderError::new(e.to_string()))?;
        }
        if self.lost.lock().map(|l| l.contains(&label)).unwrap_or(false) {
            return Err(ProviderError::new(format!("dispatch failure: connection closed before the answer to {label} (lost on purpose)")));
        }
        Ok(out)
    }
}

/// The context memory resources use. It must be inserted into the engine's `Contexts`.
pub struct Mem(pub Arc<Cloud>);

#[async_trait]
impl Context for Mem {
    async fn init() -> Result<Self, ProviderError> {
        Err(ProviderError::new("insert a memory::Mem into the engine's contexts"))
    }
    async fn identity(&self) -> Option<Result<crate::resource::Identity, ProviderError>> {
        let id = self.0.identity.lock().ok().and_then(|i| i.clone())?;
        if let Ok(mut c) = self.0.calls.lock() {
            c.push("identify".into());
        }
        Some(Ok(id))
    }
}

/// Another memory cloud as a provider (`s.provider("other", memory::OtherCloud(cloud))`): how engine tests
/// stand for a second region or account.
pub struct OtherCloud(pub Arc<Cloud>);

#[async_trait]
impl crate::ProviderConfig for OtherCloud {
    type Context = Mem;
    async fn make(&self, _base: &crate::Contexts) -> Result<Mem, ProviderError> {
        Ok(Mem(self.0.clone()))
    }
    fn describe(&self) -> String {
        "another memory cloud".into()
    }
}

/// A generic resource: `name` forces replacement, `value` and `size` update in place.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Thing {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    /// The cloud's default when unset: 1 (filled in by `normalize`, so removing it reverts to 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
    /// Computed by the cloud when unset (`mem-1a`): left alone unless the code sets it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub zone: Option<String>,
    /// Names are unique in the cloud: the old one must go before a replacement with the same name.
    #[serde(default)]
    pub unique: bool,
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
}

impl Thing {
    pub fn new(name: impl Into<String>) -> Self {
        Self { name: name.into(), ..Default::default() }
    }
    pub fn value(mut self, v: impl Into<String>) -> Self {
        self.value = Some(v.into());
        self
    }
    pub fn size(mut self, n: u64) -> Self {
        self.size = Some(n);
        self
    }
    pub fn zone(mut self, z: impl Into<String>) -> Self {
        self.zone = Some(z.into());
        self
    }
    pub fn unique(mut self) -> Self {
        self.unique = true;
        self
    }
}

crate::outputs! {
    pub struct ThingOutputs => ThingRefs {
        pub id: String,
        pub arn: String,
        pub name: String,
        /// Changes on every update.
        pub version: String,
    }
}

fn outputs_of(id: &str, obj: &Object) -> ThingOutputs {
    ThingOutputs { id: id.to_string(), arn: format!("arn:mem:{id}"), name: obj.thing.name.clone(), version: obj.version.to_string() }
}

async fn read_thing(ctx: &Mem, type_name: &str, id: &str) -> Result<Option<Observed<Thing>>, ProviderError> {
    ctx.0
        .call("read", id, |o| {
            Ok(o.get(id)
                .filter(|obj| obj.type_name == type_name)
                .map(|obj| Observed { inputs: obj.thing.clone(), outputs: outputs_of(id, obj) }))
        })
        .await
}

async fn create_thing(ctx: &Mem, type_name: &str, desired: &Thing, meta: &CallMeta) -> Result<(String, ThingOutputs), ProviderError> {
    if ctx.0.record_excludes.load(Ordering::SeqCst) {
        if let Ok(mut e) = ctx.0.excludes.lock() {
            e.insert(desired.name.clone(), meta.exclude.ids().to_vec());
        }
    }
    let id = format!("{}-{}", desired.name, ctx.0.next_id.fetch_add(1, Ordering::SeqCst));
    let type_name = type_name.to_string();
    let out = ctx
        .0
        .call("create", &desired.name, |o| {
            if desired.unique && o.values().any(|x| x.thing.name == desired.name && x.type_name == type_name) {
                return Err(ProviderError::with_code("AlreadyExists", format!("{} exists", desired.name)));
            }
            let mut thing = desired.clone();
            thing.zone.get_or_insert_with(|| "mem-1a".into());
            let obj = Object { type_name, thing, version: 1 };
            let out = outputs_of(&id, &obj);
            o.insert(id.clone(), obj);
            Ok(out)
        })
        .await?;
    Ok((id, out))
}

async fn update_thing(ctx: &Mem, id: &str, desired: &Thing) -> Result<ThingOutputs, ProviderError> {
    ctx.0
        .call("update", &desired.name, |o| match o.get_mut(id) {
            Some(obj) => {
                let zone = obj.thing.zone.clone();
                obj.thing = desired.clone();
                if obj.thing.zone.is_none() {
                    obj.thing.zone = zone;
                }
                obj.version += 1;
                Ok(outputs_of(id, obj))
            }
            None => Err(ProviderError::with_code("NotFound", id)),
        })
        .await
}

async fn delete_thing(ctx: &Mem, id: &str, prior: &Thing) -> Result<(), ProviderError> {
    ctx.0
        .call("delete", &prior.name, |o| {
            o.remove(id);
            Ok(())
        })
        .await
}

async fn find_thing(ctx: &Mem, meta: &CallMeta) -> Result<Option<String>, ProviderError> {
    ctx.0
        .call("find", &meta.address, |o| {
            Ok(o.iter()
                .filter(|(id, _)| !meta.exclude.contains(id))
                .find(|(_, x)| {
                    x.thing.tags.get(crate::TAG_ADDRESS) == Some(&meta.address) && x.thing.tags.get(crate::TAG_STACK) == Some(&meta.stack)
                })
                .map(|(id, _)| id.clone()))
        })
        .await
}

#[async_trait]
impl Resource for Thing {
    const TYPE: &'static str = "mem_thing";
    const REPLACE_FIELDS: &'static [&'static str] = &["name"];
    const COMPUTED: &'static [&'static str] = &["zone"];
    const UPDATE_CHANGES: &'static [(&'static str, &'static [&'static str])] = &[("*", &["version"])];
    type Outputs = ThingOutputs;
    type Refs = ThingRefs;
    type Context = Mem;

    fn validate(&self) -> Vec<FieldError> {
        let mut e = Vec::new();
        if self.name.is_empty() || self.name.len() > 64 {
            e.push(FieldError::new("name", "must be 1 to 64 characters"));
        }
        if self.size.is_some_and(|s| s > 1000) {
            e.push(FieldError::new("size", "must be at most 1000"));
        }
        e
    }
    fn normalize(&mut self) {
        self.size.get_or_insert(1);
    }
    fn set_default_tags(&mut self, tags: &BTreeMap<String, String>) {
        for (k, v) in tags {
            self.tags.entry(k.clone()).or_insert_with(|| v.clone());
        }
    }
    fn delete_before_create(&self) -> bool {
        self.unique
    }
    async fn create(ctx: &Mem, desired: &Self, meta: &CallMeta) -> Result<(String, ThingOutputs), ProviderError> {
        create_thing(ctx, Self::TYPE, desired, meta).await
    }
    async fn read(ctx: &Mem, id: &str, _prior: &Self) -> Result<Option<Observed<Self>>, ProviderError> {
        read_thing(ctx, Self::TYPE, id).await
    }
    async fn update(
        ctx: &Mem,
        id: &str,
        _prior: &Self,
        desired: &Self,
        _changed: &[String],
        _meta: &CallMeta,
    ) -> Result<ThingOutputs, ProviderError> {
        update_thing(ctx, id, desired).await
    }
    async fn delete(ctx: &Mem, id: &str, prior: &Self) -> Result<(), ProviderError> {
        delete_thing(ctx, id, prior).await
    }
    async fn find_by_tags(ctx: &Mem, _desired: &Self, meta: &CallMeta) -> Result<Option<String>, ProviderError> {
        find_thing(ctx, meta).await
    }
}

/// Like `Thing`, but holds data: protected from deletion unless the stack opts out.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Vault(pub Thing);

#[async_trait]
impl Resource for Vault {
    const TYPE: &'static str = "mem_vault";
    const REPLACE_FIELDS: &'static [&'static str] = &["name"];
    const PROTECT_BY_DEFAULT: bool = true;
    const COMPUTED: &'static [&'static str] = Thing::COMPUTED;
    type Outputs = ThingOutputs;
    type Refs = ThingRefs;
    type Context = Mem;

    fn normalize(&mut self) {
        self.0.normalize();
    }

    async fn create(ctx: &Mem, desired: &Self, meta: &CallMeta) -> Result<(String, ThingOutputs), ProviderError> {
        create_thing(ctx, Self::TYPE, &desired.0, meta).await
    }
    async fn read(ctx: &Mem, id: &str, _prior: &Self) -> Result<Option<Observed<Self>>, ProviderError> {
        Ok(read_thing(ctx, Self::TYPE, id).await?.map(|o| Observed { inputs: Vault(o.inputs), outputs: o.outputs }))
    }
    async fn update(
        ctx: &Mem,
        id: &str,
        _prior: &Self,
        desired: &Self,
        _changed: &[String],
        _meta: &CallMeta,
    ) -> Result<ThingOutputs, ProviderError> {
        update_thing(ctx, id, &desired.0).await
    }
    async fn delete(ctx: &Mem, id: &str, prior: &Self) -> Result<(), ProviderError> {
        delete_thing(ctx, id, &prior.0).await
    }
}

/// A lookup: the one thing whose `value` is this.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FindThing {
    pub value: String,
}

crate::outputs! {
    pub struct FoundThingOutputs => FoundThingRefs {
        pub id: String,
        pub name: String,
        pub size: u64,
    }
}

#[async_trait]
impl crate::Lookup for FindThing {
    const TYPE: &'static str = "mem_thing";
    type Outputs = FoundThingOutputs;
    type Refs = FoundThingRefs;
    type Context = Mem;

    async fn find(ctx: &Mem, query: &Self) -> Result<FoundThingOutputs, ProviderError> {
        ctx.0
            .call("find", &query.value, |o| {
                let hits: Vec<(&String, &Object)> =
                    o.iter().filter(|(_, x)| x.thing.value.as_deref() == Some(query.value.as_str())).collect();
                match hits.as_slice() {
                    [(id, obj)] => {
                        Ok(FoundThingOutputs { id: id.to_string(), name: obj.thing.name.clone(), size: obj.thing.size.unwrap_or(1) })
                    }
                    [] => Err(ProviderError::with_code("NotFound", format!("no thing has value `{}`", query.value))),
                    many => Err(ProviderError::new(format!(
                        "{} things have value `{}` ({}); the lookup must match one",
                        many.len(),
                        query.value,
                        many.iter().map(|(id, _)| id.as_str()).collect::<Vec<_>>().join(", ")
                    ))),
                }
            })
            .await
    }
}

/// The memory provider's types, as a provider crate offers them for state entries the code dropped.
pub fn registry() -> crate::Registry {
    let mut reg = crate::Registry::default();
    reg.register::<Thing>();
    reg.register::<Vault>();
    reg
}
