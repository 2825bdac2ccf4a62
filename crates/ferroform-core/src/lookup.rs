//! Lookups: reading what exists outside the stack (Terraform's data sources): the default VPC, a role made
//! by another team, the caller's account. A lookup is never created, changed or deleted; it is read again
//! at the start of every plan (after the account guard), and its outputs are typed references like any
//! resource's. A lookup that finds nothing, or more than one thing, is a plan error naming it.
//!
//! Its values are substituted into the stack before the plan is computed, so what uses them is planned
//! with the real values (not "known after apply"), and the walk never waits on them. A lookup may use
//! another lookup's outputs, or the outputs of a resource that exists already (as state last recorded
//! them); one that needs a resource not created yet is refused with the reason.

use crate::error::{Diagnostic, Error, Result};
use crate::reference::{self, TokenRef};
use crate::resource::{Context, Contexts, FromAddress};
use crate::state::State;
use crate::ProviderError;
use async_trait::async_trait;
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;
use std::collections::BTreeMap;
use std::fmt::Debug;
use std::ops::Deref;
use std::sync::Arc;

/// A read-only query. The struct is the query (a VPC's tags, a role's name); `find` answers it with
/// exactly one match.
#[async_trait]
pub trait Lookup: Serialize + DeserializeOwned + Clone + Debug + Send + Sync + 'static {
    /// Terraform's data source name where one exists (`aws_vpc`).
    const TYPE: &'static str;
    type Outputs: Serialize + DeserializeOwned + Clone + Debug + Send + Sync + 'static;
    type Refs: FromAddress;
    type Context: Context;

    /// Exactly one match; none, or several, is an error saying which (the engine adds the address).
    async fn find(ctx: &Self::Context, query: &Self) -> std::result::Result<Self::Outputs, ProviderError>;
}

#[async_trait]
pub(crate) trait ErasedLookup: Send + Sync {
    async fn find(&self, ctx: &Contexts, query: &Value) -> std::result::Result<Value, ProviderError>;
}

struct TypedLookup<L>(std::marker::PhantomData<fn() -> L>);

#[async_trait]
impl<L: Lookup> ErasedLookup for TypedLookup<L> {
    async fn find(&self, ctx: &Contexts, query: &Value) -> std::result::Result<Value, ProviderError> {
        let query: L = serde_json::from_value(query.clone())
            .map_err(|e| ProviderError::new(format!("the query of {} doesn't decode: {e}", L::TYPE)))?;
        let ctx = ctx.get::<L::Context>().await?;
        let found = L::find(&ctx, &query).await?;
        serde_json::to_value(found).map_err(|e| ProviderError::new(format!("can't encode: {e}")))
    }
}

/// A lookup as the stack holds it.
#[derive(Clone)]
pub struct DeclaredLookup {
    pub address: String,
    pub type_name: &'static str,
    /// The query as JSON, references still as tokens.
    pub query: Value,
    pub(crate) finder: Arc<dyn ErasedLookup>,
    pub(crate) encode_error: Option<String>,
    /// The provider alias it reads through (inside `Stack::on`).
    pub provider: Option<String>,
}

impl Debug for DeclaredLookup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeclaredLookup").field("address", &self.address).field("type", &self.type_name).field("query", &self.query).finish()
    }
}

impl DeclaredLookup {
    pub(crate) fn new<L: Lookup>(address: String, query: &L, provider: Option<String>) -> Self {
        let (query, encode_error) = match serde_json::to_value(query) {
            Ok(v) => (v, None),
            Err(e) => (Value::Null, Some(e.to_string())),
        };
        Self { address, type_name: L::TYPE, query, finder: Arc::new(TypedLookup::<L>(std::marker::PhantomData)), encode_error, provider }
    }
}

/// What `Stack::lookup` returns: derefs to the lookup's typed references (`vpc.id()`).
pub struct Found<L: Lookup> {
    address: String,
    refs: L::Refs,
}

impl<L: Lookup> Found<L> {
    pub(crate) fn new(address: String) -> Self {
        Self { refs: L::Refs::from_address(&address), address }
    }
    pub fn address(&self) -> &str {
        &self.address
    }
}

impl<L: Lookup> Deref for Found<L> {
    type Target = L::Refs;
    fn deref(&self) -> &L::Refs {
        &self.refs
    }
}

/// Runs every lookup (each after those it uses) and returns their outputs by address. Resources' outputs
/// come from `state`.
pub(crate) async fn run(lookups: &[DeclaredLookup], state: &State, contexts: &Contexts) -> Result<BTreeMap<String, Value>> {
    let mut found: BTreeMap<String, Value> = BTreeMap::new();
    let mut pending: Vec<&DeclaredLookup> = lookups.iter().collect();
    while !pending.is_empty() {
        // Those whose references are all known now run together; the rest wait for the next round.
        let (ready, waiting): (Vec<&DeclaredLookup>, Vec<&DeclaredLookup>) = pending.into_iter().partition(|l| {
            reference::references(&l.query)
                .iter()
                .all(|(_, r)| !lookups.iter().any(|o| o.address == r.address) || found.contains_key(&r.address))
        });
        if ready.is_empty() {
            let first = waiting.first().map(|l| l.address.clone()).unwrap_or_default();
            return Err(Error::Validation(vec![Diagnostic {
                address: first,
                field: None,
                message: "lookups use each other in a cycle".into(),
            }]));
        }
        let resolve = |t: &TokenRef| -> Option<Value> {
            found.get(&t.address).or_else(|| state.resources.get(&t.address).map(|r| &r.outputs)).and_then(|o| o.get(&t.field).cloned())
        };
        let mut queries = Vec::new();
        for l in &ready {
            let query = reference::resolve(&l.query, &resolve);
            if let Some((field, r)) = reference::references(&query).into_iter().next() {
                return Err(Error::Refused {
                    address: l.address.clone(),
                    message: format!(
                        "field `{field}` uses `{}.{}`, which is not known before it is created; a lookup reads only what exists (apply that resource first, or declare it in another stack)",
                        r.address, r.field
                    ),
                });
            }
            queries.push((l.address.clone(), l.finder.clone(), query, contexts.for_provider(l.provider.as_deref())));
        }
        let results = futures::future::join_all(queries.into_iter().map(|(address, finder, query, contexts)| async move {
            let r = finder.find(&contexts, &query).await;
            (address, r)
        }))
        .await;
        let mut errors = Vec::new();
        for (address, r) in results {
            match r {
                Ok(v) => {
                    found.insert(address, v);
                }
                Err(source) => errors.push(Error::Provider { address, operation: "lookup", source }),
            }
        }
        match errors.len() {
            0 => {}
            1 => return Err(errors.remove(0)),
            _ => return Err(Error::Failed(errors)),
        }
        pending = waiting;
    }
    Ok(found)
}
