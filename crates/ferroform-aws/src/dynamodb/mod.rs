//! DynamoDB (`aws-sdk-dynamodb`).

mod table;

pub use table::{AttrType, Billing, Capacity, Encryption, Gsi, Key, KeySchema, Projection, Stream, Table, TableOutputs, TableRefs, Ttl};

pub(crate) fn register(reg: &mut ferroform_core::Registry) {
    reg.register::<Table>();
}
