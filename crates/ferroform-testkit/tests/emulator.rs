//! The test kit itself: the emulator answers, accounts are isolated, the harness drives the engine.

use anyhow::Result;
use ferroform_core::memory::{Cloud, Mem, Thing};
use ferroform_core::Stack;
use ferroform_testkit::{account, emulator, Harness};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[tokio::test]
async fn emulator_answers_http_and_sts() -> Result<()> {
    let endpoint = emulator().await?;
    assert!(endpoint.starts_with("http://127.0.0.1:") || std::env::var("FERROFORM_EMULATOR_ENDPOINT").is_ok(), "{endpoint}");
    // The same server for every call in this process.
    assert_eq!(emulator().await?, endpoint);

    let host = endpoint.trim_start_matches("http://");
    let mut s = tokio::net::TcpStream::connect(host).await?;
    s.write_all(format!("GET /moto-api/ HTTP/1.0\r\nHost: {host}\r\n\r\n").as_bytes()).await?;
    let mut reply = String::new();
    s.read_to_string(&mut reply).await?;
    assert!(reply.starts_with("HTTP/1.") && reply.contains(" 200 "), "{}", &reply[..reply.len().min(200)]);

    let a = account().await?;
    let who = aws_sdk_sts::Client::new(&a.config).get_caller_identity().send().await?;
    assert_eq!(who.account(), Some(a.id.as_str()));
    Ok(())
}

#[tokio::test]
async fn accounts_are_isolated() -> Result<()> {
    let (a, b) = (account().await?, account().await?);
    assert_ne!(a.id, b.id);
    assert_eq!(a.id.len(), 12);

    let iam_a = aws_sdk_iam::Client::new(&a.config);
    let iam_b = aws_sdk_iam::Client::new(&b.config);
    let policy = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"lambda.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#;
    let role = iam_a.create_role().role_name("only-in-a").assume_role_policy_document(policy).send().await?;
    assert_eq!(role.role().map(|r| r.arn()), Some(format!("arn:aws:iam::{}:role/only-in-a", a.id).as_str()));
    let names = |roles: &[aws_sdk_iam::types::Role]| roles.iter().map(|r| r.role_name().to_string()).collect::<Vec<_>>();
    assert!(names(iam_a.list_roles().send().await?.roles()).contains(&"only-in-a".to_string()));
    assert!(!names(iam_b.list_roles().send().await?.roles()).contains(&"only-in-a".to_string()));
    let err = iam_b.get_role().role_name("only-in-a").send().await.expect_err("b must not see a's role");
    assert!(err.as_service_error().is_some_and(|e| e.is_no_such_entity_exception()), "{err:?}");

    // The same name in both accounts does not collide.
    let ddb_a = aws_sdk_dynamodb::Client::new(&a.config);
    let ddb_b = aws_sdk_dynamodb::Client::new(&b.config);
    for ddb in [&ddb_a, &ddb_b] {
        use aws_sdk_dynamodb::types::{AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType};
        ddb.create_table()
            .table_name("t")
            .billing_mode(BillingMode::PayPerRequest)
            .attribute_definitions(AttributeDefinition::builder().attribute_name("id").attribute_type(ScalarAttributeType::S).build()?)
            .key_schema(KeySchemaElement::builder().attribute_name("id").key_type(KeyType::Hash).build()?)
            .send()
            .await?;
    }
    ddb_a.delete_table().table_name("t").send().await?;
    assert!(ddb_a.list_tables().send().await?.table_names().is_empty());
    assert_eq!(ddb_b.list_tables().send().await?.table_names(), ["t"]);
    Ok(())
}

#[tokio::test]
async fn env_points_a_child_process_at_the_account() -> Result<()> {
    let a = account().await?;
    let env: std::collections::BTreeMap<String, String> = a.env().into_iter().collect();
    for k in ["AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_REGION"] {
        assert!(env.get(k).is_some_and(|v| !v.is_empty()), "{k} missing from {env:?}");
    }
    assert_eq!(env["AWS_ENDPOINT_URL"], a.endpoint);

    // Credentials built from those variables alone land in the same account.
    let creds = aws_sdk_sts::config::Credentials::new(
        &env["AWS_ACCESS_KEY_ID"],
        &env["AWS_SECRET_ACCESS_KEY"],
        Some(env["AWS_SESSION_TOKEN"].clone()),
        None,
        "env",
    );
    let conf = aws_sdk_sts::Config::builder()
        .behavior_version(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new(env["AWS_REGION"].clone()))
        .endpoint_url(&env["AWS_ENDPOINT_URL"])
        .credentials_provider(creds)
        .build();
    let who = aws_sdk_sts::Client::from_conf(conf).get_caller_identity().send().await?;
    assert_eq!(who.account(), Some(a.id.as_str()));
    Ok(())
}

#[tokio::test]
async fn harness_plans_applies_and_destroys_over_its_state_file() -> Result<()> {
    let h = Harness::new().await?;
    h.contexts.insert(Mem(Cloud::new()));
    let mut stack = Stack::new("testkit");
    stack.add("a", Thing::new("alpha"));

    assert_eq!(h.plan(&stack).await?.summary.add, 1);
    let state = h.apply(&stack).await?;
    assert!(h.state_path().exists());
    let id = h.id_of(&stack, "a").await?;
    assert_eq!(state.resources["a"].id.as_deref(), Some(id.as_str()));
    assert!(h.id_of(&stack, "nope").await.is_err());
    assert!(h.plan(&stack).await?.changes.iter().all(|c| c.action == ferroform_core::Action::NoOp));

    let state = h.destroy(&stack).await?;
    assert!(state.resources.is_empty());
    Ok(())
}
