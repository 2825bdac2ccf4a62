//! `Stack`: what a user program builds. Adding a resource records its inputs as JSON (references stay as
//! tokens) and returns a typed handle whose methods are references to its outputs.

use crate::lookup::{DeclaredLookup, Found, Lookup};
use crate::reference::Ref;
use crate::resource::{FromAddress, Registry, Resource};
use serde::Serialize;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::ops::Deref;

/// Per-resource lifecycle options, as Terraform users know them.
#[derive(Debug, Clone, Default, PartialEq, Serialize, serde::Deserialize)]
pub struct Lifecycle {
    /// `None`: the resource type's default (data-holding resources are protected).
    pub prevent_destroy: Option<bool>,
    pub ignore_changes: BTreeSet<String>,
    /// `Some(true)`: create the replacement first; `Some(false)`: delete first; `None`: the type decides.
    pub create_before_destroy: Option<bool>,
    pub depends_on: BTreeSet<String>,
    /// Paths of the inputs never shown in plans (`environment.DB_PASSWORD`).
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub sensitive: BTreeSet<String>,
    /// `check` rules this resource is excepted from (`FF-S3-002`), each with the reason the report shows.
    /// Not part of plans: an exception changes nothing in the cloud.
    #[serde(skip)]
    pub allow: BTreeMap<String, String>,
    /// The provider alias the resource is managed through (`None`: the default provider).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider: Option<String>,
}

/// A provider declared with [`Stack::provider`]: what [`Options::on`] and [`Stack::on`] take.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Provider {
    alias: String,
}

impl Provider {
    pub fn alias(&self) -> &str {
        &self.alias
    }
}

/// Options given with `Stack::add_with`.
#[derive(Debug, Clone, Default)]
pub struct Options(pub(crate) Lifecycle);

impl Options {
    pub fn new() -> Self {
        Self::default()
    }
    pub fn prevent_destroy(mut self, yes: bool) -> Self {
        self.0.prevent_destroy = Some(yes);
        self
    }
    pub fn ignore_changes<I: IntoIterator<Item = S>, S: Into<String>>(mut self, fields: I) -> Self {
        self.0.ignore_changes.extend(fields.into_iter().map(Into::into));
        self
    }
    pub fn create_before_destroy(mut self, yes: bool) -> Self {
        self.0.create_before_destroy = Some(yes);
        self
    }
    /// Excepts the resource from a `check` rule (`"FF-S3-002"`); the reason is mandatory and shown in the report.
    /// Manages the resource through another provider (a region, an account): see [`Stack::provider`].
    pub fn on(mut self, provider: &Provider) -> Self {
        self.0.provider = Some(provider.alias.clone());
        self
    }
    pub fn allow(mut self, rule: impl Into<String>, reason: impl Into<String>) -> Self {
        self.0.allow.insert(rule.into(), reason.into());
        self
    }
    /// Marks a path of the inputs sensitive: plans show `(sensitive)` instead of its value.
    pub fn sensitive(mut self, path: impl Into<String>) -> Self {
        self.0.sensitive.insert(path.into());
        self
    }
    /// An explicit dependency on a resource of the stack, for ordering that no reference expresses.
    pub fn depends_on(mut self, on: &(impl Addressed + ?Sized)) -> Self {
        self.0.depends_on.insert(on.addr().to_string());
        self
    }
    /// A dependency by address, for addresses made at run time (a loop's `format!`); validation refuses
    /// one that is not in the stack. Prefer [`Options::depends_on`] with the handle.
    pub fn depends_on_address(mut self, address: impl Into<String>) -> Self {
        self.0.depends_on.insert(address.into());
        self
    }
}

/// Something declared in the stack, with an address: what `depends_on` takes. Handles have one; a
/// component's handles may implement it for the resource others should wait for.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a resource of the stack",
    label = "`depends_on` takes a handle (`&table`)",
    note = "for an address made at run time, use `Options::depends_on_address`"
)]
pub trait Addressed {
    fn addr(&self) -> &str;
}
impl<R: Resource> Addressed for Handle<R> {
    fn addr(&self) -> &str {
        &self.address
    }
}

/// The handle `Stack::add` returns: derefs to the resource's typed references (`table.arn()`).
pub struct Handle<R: Resource> {
    address: String,
    refs: R::Refs,
}

impl<R: Resource> Handle<R> {
    pub fn address(&self) -> &str {
        &self.address
    }
    /// A reference to any output field by name (the typed methods are preferred).
    pub fn output<T>(&self, field: &str) -> Ref<T> {
        Ref::new(self.address.clone(), field)
    }
}

impl<R: Resource> Clone for Handle<R> {
    fn clone(&self) -> Self {
        Self { address: self.address.clone(), refs: R::Refs::from_address(&self.address) }
    }
}

impl<R: Resource> Deref for Handle<R> {
    type Target = R::Refs;
    fn deref(&self) -> &R::Refs {
        &self.refs
    }
}

/// A resource as the stack holds it.
#[derive(Debug, Clone)]
pub struct Declared {
    pub address: String,
    pub type_name: &'static str,
    /// The inputs as JSON, references still as tokens.
    pub inputs: Value,
    pub lifecycle: Lifecycle,
    /// An error from serializing the inputs, reported at validation.
    pub(crate) encode_error: Option<String>,
}

#[derive(Debug, Clone)]
pub struct OutputDecl {
    pub value: Value,
    pub sensitive: bool,
}

/// A stack: resources, outputs, renames, default tags and variables.
pub struct Stack {
    pub(crate) name: String,
    pub(crate) resources: Vec<Declared>,
    pub(crate) outputs: BTreeMap<String, OutputDecl>,
    pub(crate) moved: Vec<(String, String)>,
    pub(crate) default_tags: BTreeMap<String, String>,
    pub(crate) vars: BTreeMap<String, String>,
    pub(crate) registry: Registry,
    pub(crate) allowed_accounts: Vec<String>,
    pub(crate) lookups: Vec<DeclaredLookup>,
    pub(crate) providers: Vec<(String, std::sync::Arc<dyn crate::resource::ErasedProvider>)>,
    /// The provider of [`Stack::on`]'s closure, for what it adds.
    current_provider: Option<String>,
    prefix: Vec<String>,
}

impl Stack {
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            resources: Vec::new(),
            outputs: BTreeMap::new(),
            moved: Vec::new(),
            default_tags: BTreeMap::new(),
            vars: BTreeMap::new(),
            registry: Registry::default(),
            allowed_accounts: Vec::new(),
            lookups: Vec::new(),
            providers: Vec::new(),
            current_provider: None,
            prefix: Vec::new(),
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Adds a resource at `address` (joined to the current scope) and returns its handle.
    pub fn add<R: Resource>(&mut self, address: &str, resource: R) -> Handle<R> {
        self.add_with(address, resource, Options::default())
    }

    pub fn add_with<R: Resource>(&mut self, address: &str, resource: R, options: Options) -> Handle<R> {
        let address = self.scoped(address);
        self.registry.register::<R>();
        let (inputs, encode_error) = match serde_json::to_value(&resource) {
            Ok(v) => (v, None),
            Err(e) => (Value::Null, Some(e.to_string())),
        };
        let mut lifecycle = options.0;
        lifecycle.sensitive.extend(resource.sensitive_paths());
        if lifecycle.provider.is_none() {
            lifecycle.provider = self.current_provider.clone();
        }
        self.resources.push(Declared { address: address.clone(), type_name: R::TYPE, inputs, lifecycle, encode_error });
        Handle { refs: R::Refs::from_address(&address), address }
    }

    /// Excepts the resource at `address` (joined to the current scope; declared already, by a component say)
    /// from a `check` rule, with the reason the report shows. Returns false when nothing is at `address`.
    pub fn allow(&mut self, address: &str, rule: &str, reason: &str) -> bool {
        let address = self.scoped(address);
        let Some(d) = self.resources.iter_mut().find(|d| d.address == address) else { return false };
        d.lifecycle.allow.insert(rule.to_string(), reason.to_string());
        true
    }

    /// Declares another provider: a region, or an account through an assumed role
    /// (`s.provider("use1", Aws::region("us-east-1"))`). Resources go on it with [`Options::on`] or inside
    /// [`Stack::on`]; state records each resource's provider, and the account guard checks each one.
    pub fn provider<P: crate::resource::ProviderConfig>(&mut self, alias: &str, config: P) -> Provider {
        self.providers.retain(|(a, _)| a != alias);
        self.providers.push((alias.to_string(), crate::resource::erase_provider(config)));
        Provider { alias: alias.to_string() }
    }

    /// Runs `f` with every resource it adds on `provider` (unless its options name another).
    pub fn on<T>(&mut self, provider: &Provider, f: impl FnOnce(&mut Stack) -> T) -> T {
        let before = self.current_provider.replace(provider.alias.clone());
        let out = f(self);
        self.current_provider = before;
        out
    }

    /// Reads something that exists outside the stack (Terraform's data source), at the start of every plan:
    /// never created or deleted. Its handle gives typed references like a resource's (`vpc.id()`).
    pub fn lookup<L: Lookup>(&mut self, address: &str, query: L) -> Found<L> {
        let address = self.scoped(address);
        self.lookups.push(DeclaredLookup::new(address.clone(), &query, self.current_provider.clone()));
        Found::new(address)
    }

    /// Another stack's outputs, read from its state at `location` (a path, `s3://bucket/key`) at the start of
    /// every plan, without its lock: `let vpc: Id<ec2::Vpc> = s.stack_outputs("network", loc).get("vpc_id")`.
    pub fn stack_outputs(&mut self, stack: &str, location: &str) -> Found<crate::stack_outputs::StackOutputs> {
        self.lookup(stack, crate::stack_outputs::StackOutputs { stack: stack.to_string(), location: location.to_string() })
    }

    /// The stack's lookups.
    pub fn lookups(&self) -> &[DeclaredLookup] {
        &self.lookups
    }

    /// Runs `f` with addresses prefixed by `name/`: how components (a VPC module, say) keep their
    /// resources apart.
    pub fn scope<T>(&mut self, name: &str, f: impl FnOnce(&mut Stack) -> T) -> T {
        self.prefix.push(name.to_string());
        let out = f(self);
        self.prefix.pop();
        out
    }

    fn scoped(&self, address: &str) -> String {
        if self.prefix.is_empty() {
            address.to_string()
        } else {
            format!("{}/{}", self.prefix.join("/"), address)
        }
    }

    /// A stack output; the value may hold references (`api.endpoint()`).
    pub fn output(&mut self, name: &str, value: impl Into<Value>) {
        self.outputs.insert(name.to_string(), OutputDecl { value: value.into(), sensitive: false });
    }

    /// An output never shown in plans or `output` listings (`output NAME --raw` still prints it).
    pub fn output_sensitive(&mut self, name: &str, value: impl Into<Value>) {
        self.outputs.insert(name.to_string(), OutputDecl { value: value.into(), sensitive: true });
    }

    /// The same as [`Stack::output_sensitive`].
    pub fn sensitive_output(&mut self, name: &str, value: impl Into<Value>) {
        self.output_sensitive(name, value);
    }

    /// Terraform's `allowed_account_ids`: any other account is refused before any call but the one that
    /// asks whose the credentials are.
    pub fn allowed_accounts<I: IntoIterator<Item = S>, S: Into<String>>(&mut self, accounts: I) {
        self.allowed_accounts.extend(accounts.into_iter().map(Into::into));
    }

    /// Declares that the resource once at `from` is now at `to`: its state moves, nothing is recreated.
    pub fn moved(&mut self, from: &str, to: &str) {
        self.moved.push((from.to_string(), to.to_string()));
    }

    /// Tags every taggable resource carries, besides the engine's own.
    pub fn default_tag(&mut self, key: &str, value: &str) {
        self.default_tags.insert(key.to_string(), value.to_string());
    }

    /// Sets a variable (the CLI's `--var name=value`).
    pub fn set_var(&mut self, name: &str, value: &str) {
        self.vars.insert(name.to_string(), value.to_string());
    }

    /// A variable's value: `--var name=value`, else the environment's `FF_VAR_name`.
    pub fn var(&self, name: &str) -> Option<String> {
        self.vars.get(name).cloned().or_else(|| std::env::var(format!("FF_VAR_{name}")).ok())
    }

    pub fn var_or(&self, name: &str, default: &str) -> String {
        self.var(name).unwrap_or_else(|| default.to_string())
    }

    /// Registers resource types so state entries of those types can be deleted after the code dropped
    /// them (the AWS crate registers all of its types).
    pub fn register_types(&mut self, registry: &Registry) {
        self.registry.merge(registry);
    }

    pub fn resources(&self) -> &[Declared] {
        &self.resources
    }
}
