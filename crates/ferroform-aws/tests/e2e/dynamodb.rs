//! DynamoDB tables against the emulator, checked with independent SDK reads.
#![cfg(feature = "dynamodb")]

use crate::common::{change, harness};
use aws_sdk_dynamodb::types::{BillingMode, TableDescription};
use ferroform_aws::dynamodb::{AttrType, Billing, Encryption, Gsi, Projection, Stream, Table};
use ferroform_core::{Action, Options, Stack};

const STACK: &str = "ddbtest";

/// One table, destroyable unless `protect`.
fn stack(table: Table, protect: Option<bool>) -> Stack {
    let mut s = Stack::new(STACK);
    let opts = match protect {
        Some(p) => Options::new().prevent_destroy(p),
        None => Options::new(),
    };
    s.add_with("orders", table, opts);
    s
}

async fn describe(ddb: &aws_sdk_dynamodb::Client, name: &str) -> anyhow::Result<TableDescription> {
    ddb.describe_table().table_name(name).send().await?.table.ok_or_else(|| anyhow::anyhow!("no table"))
}

fn base() -> Table {
    Table::provisioned("pedidos", 2, 3)
        .hash_key("id", AttrType::S)
        .gsi("by-customer", Gsi::new("customer", AttrType::S).range_key("at", AttrType::N).projection(Projection::KeysOnly))
        .ttl("expires_at")
        .point_in_time_recovery(true)
        .encryption(Encryption::Kms(None))
        .tag("team", "orders")
}

#[tokio::test]
async fn table_lifecycle() -> anyhow::Result<()> {
    let (h, calls) = harness().await?;
    let ddb = aws_sdk_dynamodb::Client::new(&h.account.config);

    let state = h.apply(&stack(base(), Some(false))).await?;
    let outputs = &state.resources["orders"].outputs;
    assert_eq!(outputs["arn"], format!("arn:aws:dynamodb:us-east-1:{}:table/pedidos", h.account.id));
    assert_eq!(outputs["stream_arn"], serde_json::Value::Null);
    // Independent reads.
    let t = describe(&ddb, "pedidos").await?;
    let created = t.creation_date_time().copied();
    assert_eq!(t.provisioned_throughput().and_then(|p| p.read_capacity_units()), Some(2));
    assert_eq!(t.global_secondary_indexes().len(), 1);
    assert_eq!(t.global_secondary_indexes()[0].provisioned_throughput().and_then(|p| p.write_capacity_units()), Some(3));
    assert!(t.sse_description().is_some());
    let ttl = ddb.describe_time_to_live().table_name("pedidos").send().await?;
    assert_eq!(ttl.time_to_live_description().and_then(|d| d.attribute_name()), Some("expires_at"));
    let pitr = ddb.describe_continuous_backups().table_name("pedidos").send().await?;
    let status = pitr
        .continuous_backups_description()
        .and_then(|d| d.point_in_time_recovery_description())
        .and_then(|p| p.point_in_time_recovery_status());
    assert_eq!(status.map(|s| s.as_str()), Some("ENABLED"));
    let tags = ddb.list_tags_of_resource().resource_arn(t.table_arn().unwrap_or_default()).send().await?;
    assert!(tags.tags().iter().any(|t| t.key() == "ferroform:address" && t.value() == "orders"));

    calls.reset();
    let plan = h.plan(&stack(base(), Some(false))).await?;
    assert!(!plan.has_changes(), "{}", plan.render(false));
    eprintln!("no-op plan of a table with ttl + pitr declared: {} calls", calls.total());
    calls.reset();
    let plain = || Table::on_demand("plain").hash_key("id", AttrType::S);
    let mut two = stack(base(), Some(false));
    two.add_with("plain", plain(), Options::new().prevent_destroy(false));
    h.apply(&two).await?;
    calls.reset();
    assert!(!h.plan(&two).await?.has_changes());
    eprintln!("no-op plan of that table + an on-demand table with nothing optional declared: {} calls", calls.total());
    h.apply(&stack(base(), Some(false))).await?; // drops `plain`
    assert!(ddb.describe_table().table_name("plain").send().await.is_err());

    // In place: capacity, one index dropped and another added, TTL attribute, PITR off, a stream, tags.
    let changed = Table::provisioned("pedidos", 4, 5)
        .hash_key("id", AttrType::S)
        .gsi("by-status", Gsi::new("status", AttrType::S).capacity(1, 1))
        .ttl("gone_at")
        .point_in_time_recovery(false)
        .encryption(Encryption::Kms(None))
        .stream(Stream::NewAndOldImages)
        .tag("team", "billing");
    let plan = h.plan(&stack(changed.clone(), Some(false))).await?;
    let fields = ["billing", "global_secondary_indexes", "point_in_time_recovery", "stream", "tags", "ttl"];
    assert_eq!(change(&plan, "orders"), (Action::Update, fields.map(String::from).to_vec()), "{}", plan.render(false));
    let state = h.apply(&stack(changed.clone(), Some(false))).await?;
    let t = describe(&ddb, "pedidos").await?;
    assert_eq!(t.creation_date_time().copied(), created, "updated in place");
    assert_eq!(t.provisioned_throughput().and_then(|p| p.write_capacity_units()), Some(5));
    let names: Vec<_> = t.global_secondary_indexes().iter().filter_map(|g| g.index_name()).collect();
    assert_eq!(names, ["by-status"]);
    assert_eq!(t.global_secondary_indexes()[0].provisioned_throughput().and_then(|p| p.read_capacity_units()), Some(1));
    let ttl = ddb.describe_time_to_live().table_name("pedidos").send().await?;
    assert_eq!(ttl.time_to_live_description().and_then(|d| d.attribute_name()), Some("gone_at"));
    assert!(t.stream_specification().is_some_and(|s| s.stream_enabled()));
    assert!(state.resources["orders"].outputs["stream_arn"].as_str().is_some_and(|a| a.contains("/stream/")));
    assert!(!h.plan(&stack(changed.clone(), Some(false))).await?.has_changes());

    // Billing switch to on demand (the index loses its capacity), and back.
    let on_demand = Table { billing: Billing::OnDemand, ..changed.clone() };
    let on_demand = Table {
        global_secondary_indexes: on_demand.global_secondary_indexes.into_iter().map(|(n, g)| (n, Gsi { capacity: None, ..g })).collect(),
        ..on_demand
    };
    h.apply(&stack(on_demand.clone(), Some(false))).await?;
    let t = describe(&ddb, "pedidos").await?;
    assert_eq!(t.billing_mode_summary().and_then(|b| b.billing_mode()), Some(&BillingMode::PayPerRequest));
    assert!(!h.plan(&stack(on_demand, Some(false))).await?.has_changes());
    h.apply(&stack(changed.clone(), Some(false))).await?;
    assert!(!h.plan(&stack(changed.clone(), Some(false))).await?.has_changes());

    // Replace: a range key is a new table.
    let rekeyed = changed.clone().range_key("at", AttrType::N);
    let plan = h.plan(&stack(rekeyed.clone(), Some(false))).await?;
    assert_eq!(change(&plan, "orders").0, Action::Replace);
    h.apply(&stack(rekeyed.clone(), Some(false))).await?;
    let t = describe(&ddb, "pedidos").await?;
    assert_ne!(t.creation_date_time().copied(), created);
    assert_eq!(t.key_schema().len(), 2);
    assert!(!h.plan(&stack(rekeyed.clone(), Some(false))).await?.has_changes());

    h.destroy(&stack(rekeyed, Some(false))).await?;
    assert!(ddb.describe_table().table_name("pedidos").send().await.is_err());
    Ok(())
}

#[tokio::test]
async fn tables_are_protected_by_default() -> anyhow::Result<()> {
    let (h, _) = harness().await?;
    let ddb = aws_sdk_dynamodb::Client::new(&h.account.config);
    let table = || Table::on_demand("keep-me").hash_key("id", AttrType::S);
    h.apply(&stack(table(), None)).await?;

    // Neither a destroy nor a replacement goes through.
    let err = h.destroy(&stack(table(), None)).await.err().map(|e| e.to_string()).unwrap_or_default();
    assert!(err.contains("prevent_destroy"), "{err}");
    let err = h.apply(&stack(table().range_key("at", AttrType::N), None)).await.err().map(|e| e.to_string()).unwrap_or_default();
    assert!(err.contains("protected"), "{err}");
    assert!(ddb.describe_table().table_name("keep-me").send().await.is_ok());

    // Opting out (applied first, as the message says) lets it go.
    h.apply(&stack(table(), Some(false))).await?;
    h.destroy(&stack(table(), Some(false))).await?;
    assert!(ddb.describe_table().table_name("keep-me").send().await.is_err());
    Ok(())
}

#[tokio::test]
async fn table_drift_is_planned_and_repaired() -> anyhow::Result<()> {
    let (h, _) = harness().await?;
    let ddb = aws_sdk_dynamodb::Client::new(&h.account.config);
    let s = stack(base(), Some(false));
    h.apply(&s).await?;
    let arn = describe(&ddb, "pedidos").await?.table_arn().unwrap_or_default().to_string();

    // Behind the engine's back: capacity, PITR, TTL, a tag, an extra index.
    use aws_sdk_dynamodb::types::*;
    ddb.update_table()
        .table_name("pedidos")
        .provisioned_throughput(ProvisionedThroughput::builder().read_capacity_units(9).write_capacity_units(9).build()?)
        .send()
        .await?;
    ddb.update_continuous_backups()
        .table_name("pedidos")
        .point_in_time_recovery_specification(PointInTimeRecoverySpecification::builder().point_in_time_recovery_enabled(false).build()?)
        .send()
        .await?;
    ddb.update_time_to_live()
        .table_name("pedidos")
        .time_to_live_specification(TimeToLiveSpecification::builder().enabled(false).attribute_name("expires_at").build()?)
        .send()
        .await?;
    ddb.untag_resource().resource_arn(&arn).tag_keys("team").send().await?;
    let sneaky = CreateGlobalSecondaryIndexAction::builder()
        .index_name("sneaky")
        .key_schema(KeySchemaElement::builder().attribute_name("x").key_type(KeyType::Hash).build()?)
        .projection(aws_sdk_dynamodb::types::Projection::builder().projection_type(ProjectionType::All).build())
        .provisioned_throughput(ProvisionedThroughput::builder().read_capacity_units(1).write_capacity_units(1).build()?)
        .build()?;
    ddb.update_table()
        .table_name("pedidos")
        .attribute_definitions(AttributeDefinition::builder().attribute_name("x").attribute_type(ScalarAttributeType::S).build()?)
        .attribute_definitions(AttributeDefinition::builder().attribute_name("id").attribute_type(ScalarAttributeType::S).build()?)
        .attribute_definitions(AttributeDefinition::builder().attribute_name("customer").attribute_type(ScalarAttributeType::S).build()?)
        .attribute_definitions(AttributeDefinition::builder().attribute_name("at").attribute_type(ScalarAttributeType::N).build()?)
        .global_secondary_index_updates(GlobalSecondaryIndexUpdate::builder().create(sneaky).build())
        .send()
        .await?;

    let plan = h.plan(&s).await?;
    let fields = ["billing", "global_secondary_indexes", "point_in_time_recovery", "tags", "ttl"];
    assert_eq!(change(&plan, "orders"), (Action::Update, fields.map(String::from).to_vec()), "{}", plan.render(false));
    h.apply(&s).await?;
    let t = describe(&ddb, "pedidos").await?;
    assert_eq!(t.provisioned_throughput().and_then(|p| p.read_capacity_units()), Some(2));
    let names: Vec<_> = t.global_secondary_indexes().iter().filter_map(|g| g.index_name()).collect();
    assert_eq!(names, ["by-customer"]);
    let ttl = ddb.describe_time_to_live().table_name("pedidos").send().await?;
    assert_eq!(ttl.time_to_live_description().and_then(|d| d.time_to_live_status()).map(|s| s.as_str()), Some("ENABLED"));
    assert!(!h.plan(&s).await?.has_changes());

    // Deleted behind our back: planned as a create.
    ddb.delete_table().table_name("pedidos").send().await?;
    let plan = h.plan(&s).await?;
    assert_eq!(change(&plan, "orders").0, Action::Create);
    h.destroy(&s).await?;
    Ok(())
}

#[tokio::test]
async fn invalid_tables_are_refused_before_any_call() -> anyhow::Result<()> {
    let (h, calls) = harness().await?;
    let bad = Table::provisioned("x", 0, 1).gsi("by-x", Gsi::new("x", AttrType::S).capacity(1, 1));
    let err = h.plan(&stack(bad, None)).await.err().map(|e| e.to_string()).unwrap_or_default();
    assert!(err.contains("name") && err.contains("key") && err.contains("billing"), "{err}");
    assert_eq!(calls.total(), 0);
    Ok(())
}

/// Every optional setting of a table: an index, TTL, point-in-time recovery, a stream, deletion protection,
/// a KMS key, a tag.
fn with_everything() -> Table {
    Table::provisioned("defaults", 2, 2)
        .hash_key("id", AttrType::S)
        .gsi("by-customer", Gsi::new("customer", AttrType::S))
        .ttl("expires_at")
        .point_in_time_recovery(true)
        .stream(Stream::NewImage)
        .deletion_protection(true)
        .encryption(Encryption::Kms(None))
        .tag("team", "orders")
}

#[tokio::test]
async fn table_removed_settings_go_back_to_defaults() -> anyhow::Result<()> {
    let (h, calls) = harness().await?;
    let ddb = aws_sdk_dynamodb::Client::new(&h.account.config);
    let state = h.apply(&stack(with_everything(), Some(false))).await?;
    assert!(state.resources["orders"].outputs["stream_arn"].as_str().is_some());
    calls.reset();
    assert!(!h.plan(&stack(with_everything(), Some(false))).await?.has_changes());

    // All of it removed from the code: each setting is planned back to DynamoDB's default.
    let bare = || Table::provisioned("defaults", 2, 2).hash_key("id", AttrType::S);
    let plan = h.plan(&stack(bare(), Some(false))).await?;
    let text = plan.render(false);
    let fields =
        ["deletion_protection", "global_secondary_indexes", "point_in_time_recovery", "server_side_encryption", "stream", "tags", "ttl"];
    assert_eq!(change(&plan, "orders"), (Action::Update, fields.map(String::from).to_vec()), "{text}");
    for line in [
        "ttl = {\"attribute\":\"expires_at\"} -> \"disabled\"",
        "point_in_time_recovery = true -> false",
        "stream = \"new_image\" -> \"disabled\"",
    ] {
        assert!(text.contains(line), "{line} in:\n{text}");
    }

    // Applied, except the encryption: moto 5.2.5's UpdateTable ignores SSESpecification, so going back to
    // the AWS-owned key can't be shown here (the plan above names it).
    let applied = || Table { server_side_encryption: Some(Encryption::Kms(None)), ..bare() };
    let state = h.apply(&stack(applied(), Some(false))).await?;
    assert_eq!(state.resources["orders"].outputs["stream_arn"], serde_json::Value::Null, "the stream's ARN goes with it");
    let t = describe(&ddb, "defaults").await?;
    assert!(t.global_secondary_indexes().is_empty());
    assert!(!t.stream_specification().is_some_and(|s| s.stream_enabled()), "{:?}", t.stream_specification());
    assert_eq!(t.deletion_protection_enabled(), Some(false));
    let ttl = ddb.describe_time_to_live().table_name("defaults").send().await?;
    assert_eq!(ttl.time_to_live_description().and_then(|d| d.time_to_live_status()).map(|s| s.as_str()), Some("DISABLED"));
    let pitr = ddb.describe_continuous_backups().table_name("defaults").send().await?;
    let status = pitr
        .continuous_backups_description()
        .and_then(|d| d.point_in_time_recovery_description())
        .and_then(|p| p.point_in_time_recovery_status());
    assert_eq!(status.map(|s| s.as_str()), Some("DISABLED"));
    let tags = ddb.list_tags_of_resource().resource_arn(t.table_arn().unwrap_or_default()).send().await?;
    assert!(!tags.tags().iter().any(|t| t.key() == "team"), "{:?}", tags.tags());
    assert!(!h.plan(&stack(applied(), Some(false))).await?.has_changes());

    // A table made without any of it reads back as those defaults: no diff.
    h.destroy(&stack(applied(), Some(false))).await?;
    h.apply(&stack(bare(), Some(false))).await?;
    assert!(describe(&ddb, "defaults").await?.sse_description().is_none());
    let plan = h.plan(&stack(bare(), Some(false))).await?;
    assert!(!plan.has_changes(), "{}", plan.render(false));
    h.destroy(&stack(bare(), Some(false))).await?;
    Ok(())
}
