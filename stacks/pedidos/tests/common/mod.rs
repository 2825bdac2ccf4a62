//! What the handlers and the worker need, made with raw SDK calls in a fresh emulator account: the table,
//! an ECS cluster with a Fargate task definition, and a VPC subnet + security group for awsvpc.

#![allow(dead_code)]

use anyhow::{Context as _, Result};
use aws_lambda_events::apigw::{ApiGatewayV2httpRequest, ApiGatewayV2httpResponse};
use aws_lambda_events::encodings::Body;
use aws_sdk_dynamodb::types::{AttributeDefinition, AttributeValue, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType};
use aws_sdk_ecs::types::{Compatibility, ContainerDefinition, NetworkMode};
use ferroform_testkit::Account;
use pedidos::api::{Api, Config};
use std::collections::HashMap;

pub const TABLE: &str = "pedidos";
pub const CONTAINER: &str = "worker";

pub struct Fixture {
    pub acct: Account,
    pub ddb: aws_sdk_dynamodb::Client,
    pub ecs: aws_sdk_ecs::Client,
    pub config: Config,
    pub api: Api,
}

pub async fn fixture() -> Result<Fixture> {
    let acct = ferroform_testkit::account().await?;
    let ddb = aws_sdk_dynamodb::Client::new(&acct.config);
    let ecs = aws_sdk_ecs::Client::new(&acct.config);
    let ec2 = aws_sdk_ec2::Client::new(&acct.config);

    create_table(&ddb).await?;

    let cluster = ecs.create_cluster().cluster_name("pedidos").send().await.context("CreateCluster")?;
    let cluster_arn = cluster.cluster().and_then(|c| c.cluster_arn()).context("no cluster ARN")?.to_string();
    let td = ecs
        .register_task_definition()
        .family("pedidos-worker")
        .network_mode(NetworkMode::Awsvpc)
        .requires_compatibilities(Compatibility::Fargate)
        .cpu("256")
        .memory("512")
        // moto sums container-level memory for RunTask (AWS does not need it with task-level memory).
        .container_definitions(
            ContainerDefinition::builder().name(CONTAINER).image("pedidos-worker:test").essential(true).memory(512).build(),
        )
        .send()
        .await
        .context("RegisterTaskDefinition")?;
    let td_arn = td.task_definition().and_then(|t| t.task_definition_arn()).context("no task definition ARN")?.to_string();

    let vpc = ec2.create_vpc().cidr_block("10.42.0.0/16").send().await.context("CreateVpc")?;
    let vpc_id = vpc.vpc().and_then(|v| v.vpc_id()).context("no VPC id")?.to_string();
    // Fargate tasks' ENIs get private DNS names: moto's RunTask needs DNS hostnames on (as a real VPC should).
    ec2.modify_vpc_attribute()
        .vpc_id(&vpc_id)
        .enable_dns_hostnames(aws_sdk_ec2::types::AttributeBooleanValue::builder().value(true).build())
        .send()
        .await
        .context("ModifyVpcAttribute")?;
    let subnet = ec2.create_subnet().vpc_id(&vpc_id).cidr_block("10.42.1.0/24").send().await.context("CreateSubnet")?;
    let subnet_id = subnet.subnet().and_then(|s| s.subnet_id()).context("no subnet id")?.to_string();
    let sg = ec2
        .create_security_group()
        .group_name("pedidos-worker")
        .description("pedidos worker tasks")
        .vpc_id(&vpc_id)
        .send()
        .await
        .context("CreateSecurityGroup")?;
    let sg_id = sg.group_id().context("no security group id")?.to_string();

    let config = Config {
        table_name: TABLE.to_string(),
        cluster: cluster_arn,
        task_definition: td_arn,
        subnets: vec![subnet_id],
        security_groups: vec![sg_id],
        container_name: CONTAINER.to_string(),
        assign_public_ip: false,
    };
    let api = Api::new(ddb.clone(), ecs.clone(), config.clone());
    Ok(Fixture { acct, ddb, ecs, config, api })
}

/// Only the table (for the worker tests).
pub async fn create_table(ddb: &aws_sdk_dynamodb::Client) -> Result<()> {
    ddb.create_table()
        .table_name(TABLE)
        .attribute_definitions(AttributeDefinition::builder().attribute_name("id").attribute_type(ScalarAttributeType::S).build()?)
        .key_schema(KeySchemaElement::builder().attribute_name("id").key_type(KeyType::Hash).build()?)
        .billing_mode(BillingMode::PayPerRequest)
        .send()
        .await
        .context("CreateTable")?;
    Ok(())
}

/// The stored item, read with a plain GetItem (not through the code under test).
pub async fn raw_item(ddb: &aws_sdk_dynamodb::Client, id: &str) -> Result<Option<HashMap<String, AttributeValue>>> {
    let out = ddb
        .get_item()
        .table_name(TABLE)
        .key("id", AttributeValue::S(id.to_string()))
        .consistent_read(true)
        .send()
        .await
        .context("GetItem")?;
    Ok(out.item)
}

pub async fn item_count(ddb: &aws_sdk_dynamodb::Client) -> Result<usize> {
    let out = ddb.scan().table_name(TABLE).consistent_read(true).send().await.context("Scan")?;
    Ok(out.items().len())
}

pub fn s_attr<'a>(item: &'a HashMap<String, AttributeValue>, name: &str) -> Option<&'a str> {
    item.get(name).and_then(|v| v.as_s().ok()).map(String::as_str)
}

pub fn n_attr<'a>(item: &'a HashMap<String, AttributeValue>, name: &str) -> Option<&'a str> {
    item.get(name).and_then(|v| v.as_n().ok()).map(String::as_str)
}

/// A payload-format-2.0 event as API Gateway sends it (stage `$default`), parsed by the real type.
pub fn request(method: &str, path: &str, query: &[(&str, &str)], body: Option<&str>) -> ApiGatewayV2httpRequest {
    event(method, path, query, body, false)
}

pub fn event(method: &str, path: &str, query: &[(&str, &str)], body: Option<&str>, base64: bool) -> ApiGatewayV2httpRequest {
    let raw_query: Vec<String> = query.iter().map(|(k, v)| format!("{k}={v}")).collect();
    let params: serde_json::Map<String, serde_json::Value> = query.iter().map(|(k, v)| (k.to_string(), serde_json::json!(v))).collect();
    let mut v = serde_json::json!({
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": path,
        "rawQueryString": raw_query.join("&"),
        "headers": {"content-type": "application/json", "host": "api.example.com"},
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "api",
            "domainName": "api.example.com",
            "http": {"method": method, "path": path, "protocol": "HTTP/1.1", "sourceIp": "127.0.0.1", "userAgent": "test"},
            "requestId": "req",
            "routeKey": "$default",
            "stage": "$default",
            "time": "01/Jan/2025:00:00:00 +0000",
            "timeEpoch": 1735689600000_i64
        },
        "isBase64Encoded": base64
    });
    if !params.is_empty() {
        v["queryStringParameters"] = serde_json::Value::Object(params);
    }
    if let Some(body) = body {
        v["body"] = serde_json::json!(body);
    }
    serde_json::from_value(v).expect("a valid API Gateway event")
}

/// A response, its body as text and as JSON (`Null` when empty).
#[derive(Debug)]
pub struct Reply {
    pub status: i64,
    pub text: String,
    pub json: serde_json::Value,
    pub res: ApiGatewayV2httpResponse,
}

pub fn reply(res: ApiGatewayV2httpResponse) -> Reply {
    let text = match &res.body {
        Some(Body::Text(t)) => t.clone(),
        Some(Body::Binary(b)) => String::from_utf8_lossy(b).into_owned(),
        _ => String::new(),
    };
    let json = if text.is_empty() { serde_json::Value::Null } else { serde_json::from_str(&text).expect("a JSON body") };
    Reply { status: res.status_code, text, json, res }
}

impl Fixture {
    pub async fn call(&self, method: &str, path: &str, query: &[(&str, &str)], body: Option<&str>) -> Reply {
        reply(self.api.handle(&request(method, path, query, body)).await)
    }
}
