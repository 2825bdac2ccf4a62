//! The resource model: what a resource author declares, and the type-erased form the engine drives.

use crate::error::{FieldError, ProviderError};
use async_trait::async_trait;
use serde::{de::DeserializeOwned, Serialize};
use serde_json::Value;
use std::any::{Any, TypeId};
use std::collections::{BTreeMap, HashMap};
use std::fmt::Debug;
use std::sync::{Arc, Mutex};
use tokio::sync::OnceCell;

/// Who is calling: passed to `create`/`update` so a provider can tag what it makes with the stack and
/// address (a killed run finds what it created by these tags) and use an idempotency token.
#[derive(Debug, Clone, Default)]
pub struct CallMeta {
    pub stack: String,
    pub address: String,
    /// Stable for one planned step of one address: the same across retries, new for the next apply.
    pub idempotency_token: String,
    /// Ids `find_by_tags` must never return: the deposed objects of this address (the old halves of a
    /// replacement), which carry the same tags as the object being looked for, and, after a crash, the
    /// ids other addresses of the same type hold (untagged types found by identity may look alike).
    pub exclude: Exclude,
}

/// The ids a create's lookups must leave alone. Worked out only when a lookup asks (after a lost answer or a
/// crash, rarely): a copy of every id of the type for every step made a 10,000-resource apply quadratic.
#[derive(Clone, Default)]
pub struct Exclude {
    ids: Arc<std::sync::OnceLock<Vec<String>>>,
    compute: Option<Arc<dyn Fn() -> Vec<String> + Send + Sync>>,
}

impl Exclude {
    /// Ids worked out by `compute` on first use.
    pub fn lazy(compute: impl Fn() -> Vec<String> + Send + Sync + 'static) -> Self {
        Self { ids: Arc::default(), compute: Some(Arc::new(compute)) }
    }
    pub fn ids(&self) -> &[String] {
        self.ids.get_or_init(|| self.compute.as_ref().map(|c| c()).unwrap_or_default())
    }
    pub fn contains(&self, id: &str) -> bool {
        self.ids().iter().any(|x| x == id)
    }
    pub fn iter(&self) -> std::slice::Iter<'_, String> {
        self.ids().iter()
    }
}

impl From<Vec<String>> for Exclude {
    fn from(ids: Vec<String>) -> Self {
        Self { ids: Arc::new(std::sync::OnceLock::from(ids)), compute: None }
    }
}

impl std::fmt::Debug for Exclude {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.ids()).finish()
    }
}

pub const TAG_STACK: &str = "ferroform:stack";
pub const TAG_ADDRESS: &str = "ferroform:address";

impl CallMeta {
    /// The tags the engine asks every taggable resource to carry.
    pub fn tags(&self) -> BTreeMap<String, String> {
        BTreeMap::from([(TAG_STACK.to_string(), self.stack.clone()), (TAG_ADDRESS.to_string(), self.address.clone())])
    }
}

/// What a read finds: the live inputs (in the resource's own shape, so they diff against the desired ones)
/// and the outputs.
#[derive(Debug, Clone)]
pub struct Observed<R: Resource> {
    pub inputs: R,
    pub outputs: R::Outputs,
}

/// A shared client/configuration for a family of resources (one per cloud account/region, say).
/// Built lazily, the first time a resource needs it, so validation failures never touch the network.
#[async_trait]
pub trait Context: Send + Sync + Sized + 'static {
    async fn init() -> Result<Self, ProviderError>;

    /// Whose account the credentials are, for the account guard (one call, cached by the context);
    /// `None` for contexts without accounts.
    async fn identity(&self) -> Option<Result<Identity, ProviderError>> {
        None
    }
}

/// The account, region and partition a run acts in: recorded in state the first time, checked every time.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Identity {
    pub account: String,
    pub region: String,
    pub partition: String,
}

impl std::fmt::Display for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "account {} in {} ({})", self.account, self.region, self.partition)
    }
}

/// The unit context, for resources that need none.
#[async_trait]
impl Context for () {
    async fn init() -> Result<Self, ProviderError> {
        Ok(())
    }
}

type AnyArc = Arc<dyn Any + Send + Sync>;

/// How to make a context for a provider alias (`s.provider("use1", Aws::region("us-east-1"))`): another
/// region, or another account through an assumed role. `base` gives the default contexts (the credentials an
/// assumed role starts from).
#[async_trait]
pub trait ProviderConfig: Send + Sync + 'static {
    type Context: Context;
    async fn make(&self, base: &Contexts) -> Result<Self::Context, ProviderError>;
    /// For messages and plans (`us-east-1`, `role arn:...`).
    fn describe(&self) -> String;
}

#[async_trait]
pub(crate) trait ErasedProvider: Send + Sync {
    fn context_type(&self) -> TypeId;
    fn describe(&self) -> String;
    async fn make(&self, base: &Contexts) -> Result<AnyArc, ProviderError>;
}

struct TypedProvider<P>(P);

#[async_trait]
impl<P: ProviderConfig> ErasedProvider for TypedProvider<P> {
    fn context_type(&self) -> TypeId {
        TypeId::of::<P::Context>()
    }
    fn describe(&self) -> String {
        self.0.describe()
    }
    async fn make(&self, base: &Contexts) -> Result<AnyArc, ProviderError> {
        self.0.make(base).await.map(|c| Arc::new(c) as AnyArc)
    }
}

pub(crate) fn erase_provider<P: ProviderConfig>(p: P) -> Arc<dyn ErasedProvider> {
    Arc::new(TypedProvider(p))
}

type Cells = HashMap<(TypeId, Option<String>), Arc<OnceCell<AnyArc>>>;

/// Lazily-built contexts, one per type and provider alias. Tests insert theirs up front.
#[derive(Default, Clone)]
pub struct Contexts {
    cells: Arc<Mutex<Cells>>,
    providers: Arc<Mutex<HashMap<String, Arc<dyn ErasedProvider>>>>,
    /// `None`: the default provider; `Some(alias)`: a view whose contexts are that provider's.
    alias: Option<String>,
}

impl Contexts {
    pub fn new() -> Self {
        Self::default()
    }

    /// Uses this instance instead of `C::init()` (for this view's provider).
    pub fn insert<C: Context>(&self, ctx: C) {
        let cell = OnceCell::new_with(Some(Arc::new(ctx) as AnyArc));
        if let Ok(mut cells) = self.cells.lock() {
            cells.insert((TypeId::of::<C>(), self.alias.clone()), Arc::new(cell));
        }
    }

    /// The same contexts seen through a provider alias (`None`: the default one).
    pub fn for_provider(&self, alias: Option<&str>) -> Contexts {
        Contexts { cells: self.cells.clone(), providers: self.providers.clone(), alias: alias.map(str::to_string) }
    }

    /// The provider alias this view is for.
    pub fn provider(&self) -> Option<&str> {
        self.alias.as_deref()
    }

    pub(crate) fn configure(&self, alias: &str, provider: Arc<dyn ErasedProvider>) {
        if let Ok(mut p) = self.providers.lock() {
            p.entry(alias.to_string()).or_insert(provider);
        }
    }

    pub async fn get<C: Context>(&self) -> Result<Arc<C>, ProviderError> {
        let cell = {
            let mut cells = self.cells.lock().map_err(|_| ProviderError::new("context registry poisoned"))?;
            cells.entry((TypeId::of::<C>(), self.alias.clone())).or_default().clone()
        };
        let any = cell
            .get_or_try_init(|| async {
                let Some(alias) = &self.alias else { return C::init().await.map(|c| Arc::new(c) as AnyArc) };
                let provider = self.providers.lock().ok().and_then(|p| p.get(alias).cloned());
                match provider {
                    Some(p) if p.context_type() == TypeId::of::<C>() => p.make(&self.for_provider(None)).await,
                    Some(p) => Err(ProviderError::new(format!(
                        "provider `{alias}` ({}) is for another kind of resource than {}",
                        p.describe(),
                        std::any::type_name::<C>()
                    ))),
                    None => Err(ProviderError::new(format!("no provider `{alias}` is declared in the stack"))),
                }
            })
            .await?;
        any.clone().downcast::<C>().map_err(|_| ProviderError::new("context registered under the wrong type"))
    }
}

/// Typed handles to a resource's outputs, built from its address (`TableRefs { arn(), name() }`).
pub trait FromAddress {
    fn from_address(address: &str) -> Self;
}

/// A resource type. The author declares inputs (the struct), outputs, replace-forcing fields and the four
/// operations; the engine derives edges, diffs, actions, ordering, retries of the walk, and state.
///
/// Conventions for `read`: `Ok(None)` when the cloud says it is gone. For `update`: one targeted call per
/// changed field; never called for a replace-forcing field. For `delete`: not-found is success.
#[async_trait]
pub trait Resource: Serialize + DeserializeOwned + Clone + Debug + Send + Sync + 'static {
    /// Type name in state and plans; Terraform's name where one exists (`aws_iam_role`).
    const TYPE: &'static str;
    /// Fields whose change forces a new resource.
    const REPLACE_FIELDS: &'static [&'static str] = &[];
    /// Resources holding data (tables, repositories, buckets) refuse deletion unless the stack opts out.
    const PROTECT_BY_DEFAULT: bool = false;
    /// Optional fields AWS decides when the code leaves them unset (Terraform's Optional+Computed): an unset
    /// one is left as it is and never diffed. Every other field is compared whether the code sets it or not,
    /// so `normalize` must fill in the value AWS uses when the field is absent (Lambda's timeout: 3): removing
    /// a setting from the code then plans `OLD -> DEFAULT` and apply puts AWS's default back. A field left
    /// unset that is neither filled in nor listed here shows as `OLD -> null`, a diff that never closes:
    /// the e2e no-op plan of every type catches it.
    const COMPUTED: &'static [&'static str] = &[];
    /// Which outputs an in-place update of which field may change (`("code", &["code_sha256"])`; `"*"` for
    /// any field). Whatever uses those outputs is planned as "(known after apply)" and follows in the same
    /// apply, instead of converging only on the next one.
    const UPDATE_CHANGES: &'static [(&'static str, &'static [&'static str])] = &[];

    /// Taking over a Terraform state: pairs of (input path, Terraform attribute path) that say a Terraform
    /// resource is this one; every pair whose input is known must agree. `name` unless the type says otherwise.
    const TERRAFORM_IDENTITY: &'static [(&'static str, &'static str)] = &[("name", "name")];
    /// Terraform types kept apart there and held by this type here: (Terraform type, its attribute naming the
    /// holder, the holder's attribute) — `("aws_iam_role_policy", "role", "name")`.
    const TERRAFORM_FOLDS: &'static [(&'static str, &'static str, &'static str)] = &[];

    type Outputs: Serialize + DeserializeOwned + Clone + Debug + Send + Sync + 'static;
    type Refs: FromAddress;
    type Context: Context;

    /// The id this type knows a resource by, from its Terraform attributes: Terraform's `id` unless the type
    /// says otherwise.
    fn terraform_id(attributes: &Value) -> Option<String> {
        attributes.get("id").and_then(Value::as_str).map(str::to_string)
    }

    /// An identity value (at the input path `path` of [`Resource::TERRAFORM_IDENTITY`]) in the one form both
    /// sides are compared in, where this type and Terraform write the same thing differently (a VPC
    /// endpoint's `dynamodb` and `com.amazonaws.us-east-1.dynamodb`). As it is unless the type says otherwise.
    fn terraform_identity_form(_path: &str, value: &Value) -> Value {
        value.clone()
    }

    /// Checks what the cloud would reject, before any call. Values holding reference tokens are not known
    /// yet: skip them (see [`crate::is_unknown_str`]).
    fn validate(&self) -> Vec<FieldError> {
        Vec::new()
    }

    /// Brings desired and live inputs to one canonical form before they are compared: sort sets, parse
    /// policies, fill the cloud's defaults. Applied to both sides.
    fn normalize(&mut self) {}

    /// Paths in the inputs whose values are secret (`environment.DB_PASSWORD`): plans show them as
    /// `(sensitive)`. Taken when the resource is added, so a resource may keep them outside its inputs.
    fn sensitive_paths(&self) -> Vec<String> {
        Vec::new()
    }

    /// Merges the engine's tags (stack, address) and the stack's default tags into the resource's own.
    /// Resources without tags ignore it.
    fn set_default_tags(&mut self, _tags: &BTreeMap<String, String>) {}

    /// True when the old resource must go before its replacement exists (a unique name, say).
    fn delete_before_create(&self) -> bool {
        false
    }

    /// The cloud id a resource is known by (state's `id`) and its outputs, after creation.
    async fn create(ctx: &Self::Context, desired: &Self, meta: &CallMeta) -> Result<(String, Self::Outputs), ProviderError>;

    /// `prior` is what the state (or, for `import`, the code) says, for resources that need more than the
    /// id to find themselves.
    async fn read(ctx: &Self::Context, id: &str, prior: &Self) -> Result<Option<Observed<Self>>, ProviderError>;

    /// Reads many at once. Override where the API batches (`DescribeSubnets` with many ids).
    async fn read_many(ctx: &Self::Context, items: &[(String, Self)]) -> Vec<Result<Option<Observed<Self>>, ProviderError>> {
        join_bounded(items.iter().map(|(id, prior)| Self::read(ctx, id, prior))).await
    }

    /// `changed` names the top-level fields that differ; `prior` is the live value.
    async fn update(
        ctx: &Self::Context,
        id: &str,
        prior: &Self,
        desired: &Self,
        changed: &[String],
        meta: &CallMeta,
    ) -> Result<Self::Outputs, ProviderError>;

    async fn delete(ctx: &Self::Context, id: &str, prior: &Self) -> Result<(), ProviderError>;

    /// After a crash between "created" and "state saved": finds the resource this address made, by its tags.
    async fn find_by_tags(_ctx: &Self::Context, _desired: &Self, _meta: &CallMeta) -> Result<Option<String>, ProviderError> {
        Ok(None)
    }
}

/// The engine's view of a resource type: JSON in, JSON out.
#[async_trait]
pub(crate) trait ErasedType: Send + Sync {
    fn type_name(&self) -> &'static str;
    fn replace_fields(&self) -> &'static [&'static str];
    fn protect_by_default(&self) -> bool;
    fn computed(&self) -> &'static [&'static str];
    fn update_changes(&self) -> &'static [(&'static str, &'static [&'static str])];
    fn delete_before_create(&self, inputs: &Value) -> bool;
    fn validate(&self, inputs: &Value) -> Result<Vec<FieldError>, String>;
    /// Deserialize, apply default tags, normalize, serialize.
    fn canonical(&self, inputs: &Value, tags: Option<&BTreeMap<String, String>>) -> Result<Value, String>;
    async fn read_many(&self, ctx: &Contexts, items: &[(String, Value)]) -> Vec<Result<Option<(Value, Value)>, ProviderError>>;
    async fn create(&self, ctx: &Contexts, desired: &Value, meta: &CallMeta) -> Result<(String, Value), ProviderError>;
    async fn update(
        &self,
        ctx: &Contexts,
        id: &str,
        prior: &Value,
        desired: &Value,
        changed: &[String],
        meta: &CallMeta,
    ) -> Result<Value, ProviderError>;
    async fn delete(&self, ctx: &Contexts, id: &str, prior: &Value) -> Result<(), ProviderError>;
    async fn find_by_tags(&self, ctx: &Contexts, desired: &Value, meta: &CallMeta) -> Result<Option<String>, ProviderError>;
    async fn identity(&self, ctx: &Contexts) -> Option<Result<Identity, ProviderError>>;
    fn terraform_identity(&self) -> &'static [(&'static str, &'static str)];
    fn terraform_folds(&self) -> &'static [(&'static str, &'static str, &'static str)];
    fn terraform_id(&self, attributes: &Value) -> Option<String>;
    fn terraform_identity_form(&self, path: &str, value: &Value) -> Value;
}

pub(crate) struct Typed<R>(std::marker::PhantomData<fn() -> R>);

impl<R> Typed<R> {
    pub(crate) fn new() -> Self {
        Typed(std::marker::PhantomData)
    }
}

fn decode<R: Resource>(v: &Value) -> Result<R, ProviderError> {
    serde_json::from_value(v.clone()).map_err(|e| ProviderError::new(format!("inputs of {} don't decode: {e}", R::TYPE)))
}

fn encode<T: Serialize>(v: &T) -> Result<Value, ProviderError> {
    serde_json::to_value(v).map_err(|e| ProviderError::new(format!("can't encode: {e}")))
}

#[async_trait]
impl<R: Resource> ErasedType for Typed<R> {
    fn type_name(&self) -> &'static str {
        R::TYPE
    }
    fn terraform_identity(&self) -> &'static [(&'static str, &'static str)] {
        R::TERRAFORM_IDENTITY
    }
    fn terraform_folds(&self) -> &'static [(&'static str, &'static str, &'static str)] {
        R::TERRAFORM_FOLDS
    }
    fn terraform_id(&self, attributes: &Value) -> Option<String> {
        R::terraform_id(attributes)
    }
    fn terraform_identity_form(&self, path: &str, value: &Value) -> Value {
        R::terraform_identity_form(path, value)
    }
    fn replace_fields(&self) -> &'static [&'static str] {
        R::REPLACE_FIELDS
    }
    fn protect_by_default(&self) -> bool {
        R::PROTECT_BY_DEFAULT
    }
    fn computed(&self) -> &'static [&'static str] {
        R::COMPUTED
    }
    fn update_changes(&self) -> &'static [(&'static str, &'static [&'static str])] {
        R::UPDATE_CHANGES
    }
    fn delete_before_create(&self, inputs: &Value) -> bool {
        decode::<R>(inputs).map(|r| r.delete_before_create()).unwrap_or(false)
    }
    fn validate(&self, inputs: &Value) -> Result<Vec<FieldError>, String> {
        decode::<R>(inputs).map(|r| r.validate()).map_err(|e| e.message)
    }
    fn canonical(&self, inputs: &Value, tags: Option<&BTreeMap<String, String>>) -> Result<Value, String> {
        let mut r = decode::<R>(inputs).map_err(|e| e.message)?;
        if let Some(tags) = tags {
            r.set_default_tags(tags);
        }
        r.normalize();
        encode(&r).map_err(|e| e.message)
    }
    async fn read_many(&self, ctx: &Contexts, items: &[(String, Value)]) -> Vec<Result<Option<(Value, Value)>, ProviderError>> {
        let ctx = match ctx.get::<R::Context>().await {
            Ok(c) => c,
            Err(e) => return items.iter().map(|_| Err(e.clone())).collect(),
        };
        let mut typed = Vec::with_capacity(items.len());
        let mut slots: Vec<Option<Result<Option<(Value, Value)>, ProviderError>>> = Vec::with_capacity(items.len());
        for (id, prior) in items {
            match decode::<R>(prior) {
                Ok(p) => {
                    typed.push((id.clone(), p));
                    slots.push(None);
                }
                Err(e) => slots.push(Some(Err(e))),
            }
        }
        let mut results = R::read_many(&ctx, &typed).await.into_iter();
        slots
            .into_iter()
            .map(|slot| match slot {
                Some(err) => err,
                None => match results.next() {
                    Some(Ok(Some(obs))) => Ok(Some((encode(&obs.inputs)?, encode(&obs.outputs)?))),
                    Some(Ok(None)) => Ok(None),
                    Some(Err(e)) => Err(e),
                    None => Err(ProviderError::new("read_many returned fewer results than asked")),
                },
            })
            .collect()
    }
    async fn create(&self, ctx: &Contexts, desired: &Value, meta: &CallMeta) -> Result<(String, Value), ProviderError> {
        let ctx = ctx.get::<R::Context>().await?;
        let (id, out) = R::create(&ctx, &decode::<R>(desired)?, meta).await?;
        Ok((id, encode(&out)?))
    }
    async fn update(
        &self,
        ctx: &Contexts,
        id: &str,
        prior: &Value,
        desired: &Value,
        changed: &[String],
        meta: &CallMeta,
    ) -> Result<Value, ProviderError> {
        let ctx = ctx.get::<R::Context>().await?;
        let out = R::update(&ctx, id, &decode::<R>(prior)?, &decode::<R>(desired)?, changed, meta).await?;
        encode(&out)
    }
    async fn delete(&self, ctx: &Contexts, id: &str, prior: &Value) -> Result<(), ProviderError> {
        let ctx = ctx.get::<R::Context>().await?;
        R::delete(&ctx, id, &decode::<R>(prior)?).await
    }
    async fn find_by_tags(&self, ctx: &Contexts, desired: &Value, meta: &CallMeta) -> Result<Option<String>, ProviderError> {
        let ctx = ctx.get::<R::Context>().await?;
        R::find_by_tags(&ctx, &decode::<R>(desired)?, meta).await
    }
    async fn identity(&self, ctx: &Contexts) -> Option<Result<Identity, ProviderError>> {
        match ctx.get::<R::Context>().await {
            Ok(c) => c.identity().await,
            Err(e) => Some(Err(e)),
        }
    }
}

/// Resource types by name, so the engine can delete what state holds even after the code dropped it.
#[derive(Clone, Default)]
pub struct Registry {
    types: HashMap<&'static str, Arc<dyn ErasedType>>,
}

impl Registry {
    pub fn register<R: Resource>(&mut self) {
        self.types.entry(R::TYPE).or_insert_with(|| Arc::new(Typed::<R>::new()));
    }
    pub(crate) fn get(&self, type_name: &str) -> Option<Arc<dyn ErasedType>> {
        self.types.get(type_name).cloned()
    }
    pub fn merge(&mut self, other: &Registry) {
        for (k, v) in &other.types {
            self.types.entry(k).or_insert_with(|| v.clone());
        }
    }
}

/// Declares a resource's outputs struct and its typed reference handles in one go:
///
/// ```ignore
/// ferroform_core::outputs! {
///     /// Outputs of a DynamoDB table.
///     pub struct TableOutputs => TableRefs {
///         pub arn: String as Arn<Table>,
///         pub name: String as Name<Table>,
///         pub stream_arn: Option<String>,
///     }
/// }
/// // table.arn() -> Arn<Table>, table.stream_arn() -> Ref<Option<String>>
/// ```
#[macro_export]
macro_rules! outputs {
    ($(#[$m:meta])* pub struct $out:ident => $refs:ident { $( $(#[$fm:meta])* pub $field:ident : $ty:ty $(as $rt:ty)? ),* $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, PartialEq, $crate::__serde::Serialize, $crate::__serde::Deserialize)]
        #[serde(crate = "ferroform_core::__serde")]
        pub struct $out { $( $(#[$fm])* pub $field: $ty ),* }

        /// Typed references to the outputs, for use in other resources' inputs.
        #[derive(Debug, Clone)]
        pub struct $refs { address: String }

        impl $refs {
            /// The resource's address in the stack.
            pub fn address(&self) -> &str { &self.address }
            $( $(#[$fm])* pub fn $field(&self) -> $crate::__ref_type!($ty $(, $rt)?) {
                $crate::FromOutput::from_output(&self.address, stringify!($field))
            } )*
        }

        impl $crate::FromAddress for $refs {
            fn from_address(address: &str) -> Self { Self { address: address.to_string() } }
        }
    };
}

/// The type of an output's reference: `Ref<T>`, or the typed kind declared with `as`.
#[doc(hidden)]
#[macro_export]
macro_rules! __ref_type {
    ($ty:ty) => { $crate::Ref<$ty> };
    ($ty:ty, $rt:ty) => { $rt };
}

/// How many calls one batch of reads keeps in flight. The engine runs `parallelism` batches at once, so a
/// plan has at most `parallelism` x this many requests open: enough to hide latency, few enough that a large
/// stack does not throttle itself (a 100-table batch once opened 200 DescribeTable/ListTags calls at once).
pub const READS_IN_FLIGHT: usize = 16;

/// Like `join_all`, in order, with at most [`READS_IN_FLIGHT`] futures running at a time.
pub async fn join_bounded<F: std::future::Future>(futures: impl IntoIterator<Item = F>) -> Vec<F::Output> {
    use futures::StreamExt;
    // Collected first: a stream over the caller's `map` closure would not be `Send` for every lifetime.
    let futures: Vec<F> = futures.into_iter().collect();
    futures::stream::iter(futures).buffered(READS_IN_FLIGHT).collect().await
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[tokio::test]
    async fn join_bounded_keeps_order_and_caps_calls_in_flight() {
        let (now, peak) = (AtomicUsize::new(0), AtomicUsize::new(0));
        let out = join_bounded((0..100u64).map(|i| {
            let (now, peak) = (&now, &peak);
            async move {
                peak.fetch_max(now.fetch_add(1, Ordering::SeqCst) + 1, Ordering::SeqCst);
                // Later items finish sooner, so order comes from join_bounded, not from timing.
                tokio::time::sleep(std::time::Duration::from_millis(100 - i)).await;
                now.fetch_sub(1, Ordering::SeqCst);
                i
            }
        }))
        .await;
        assert_eq!(out, (0..100).collect::<Vec<_>>());
        assert_eq!(peak.load(Ordering::SeqCst), READS_IN_FLIGHT);
    }
}
