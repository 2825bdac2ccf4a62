//! How the compiler checks a stack's wiring.
//!
//! What resources hand each other carries its kind and the resource type it belongs to:
//! `role.arn()` is an [`Arn`](crate::Arn)`<iam::Role>`, `subnet.id()` an [`Id`](crate::Id)`<ec2::Subnet>`, `logs.name()` a
//! [`Name`](crate::Name)`<logs::LogGroup>`. Each builder takes what AWS takes there, so a wrong wire is a compile error,
//! not an API error halfway through an apply. This compiles:
//!
//! ```no_run
//! use ferroform::aws::{dynamodb::{AttrType, Table}, iam::Role, lambda::Function, logs::LogGroup};
//! use ferroform::prelude::*;
//!
//! fn stack(s: &mut Stack) {
//!     let table = s.add("table", Table::on_demand("orders").hash_key("id", AttrType::S));
//!     let logs = s.add("logs", LogGroup::new("/aws/lambda/orders-api"));
//!     // An IAM statement's resources: a typed ARN, a pattern made from one, or literal text.
//!     let role = s.add(
//!         "role",
//!         Role::for_service("lambda.amazonaws.com")
//!             .allow(["dynamodb:GetItem"], [table.arn()])
//!             .allow(["logs:PutLogEvents"], [format!("{}:*", logs.arn())]),
//!     );
//!     // Text goes where text goes (an environment variable takes any value).
//!     s.add("fn", Function::new("orders-api").role(role.arn()).log_group(logs.name()).env("TABLE", table.name()));
//!     // Made outside the stack: spelled out, and typed all the same.
//!     let admin = Arn::<ferroform::aws::iam::Role>::literal("arn:aws:iam::123456789012:role/admin");
//!     s.add("admin-fn", Function::new("admin").role(admin));
//! }
//! ```
//!
//! And these do not:
//!
//! A table's ARN as a Lambda's role: `expected Arn<Role>, found Arn<Table>`.
//!
//! ```compile_fail,E0308
//! use ferroform::aws::{dynamodb::{AttrType, Table}, lambda::Function};
//! use ferroform::prelude::*;
//!
//! fn stack(s: &mut Stack) {
//!     let table = s.add("table", Table::on_demand("orders").hash_key("id", AttrType::S));
//!     s.add("fn", Function::new("orders-api").role(table.arn()));
//! }
//! ```
//!
//! A VPC's id where a subnet's goes: `expected Id<Subnet>, found Id<Vpc>`.
//!
//! ```compile_fail,E0308
//! use ferroform::aws::ec2::{NatGateway, ElasticIp, Vpc};
//! use ferroform::prelude::*;
//!
//! fn stack(s: &mut Stack) {
//!     let vpc = s.add("vpc", Vpc::new("10.0.0.0/16"));
//!     let ip = s.add("ip", ElasticIp::new());
//!     s.add("nat", NatGateway::new(vpc.id(), ip.id()));
//! }
//! ```
//!
//! A number as a name (a task definition's revision is an `i64`; only text outputs are text): `the trait
//! bound String: From<Ref<i64>> is not satisfied`.
//!
//! ```compile_fail,E0277
//! use ferroform::aws::{ecs::{Container, TaskDefinition}, logs::LogGroup};
//! use ferroform::prelude::*;
//!
//! fn stack(s: &mut Stack) {
//!     let td = s.add("td", TaskDefinition::new("worker", 256, 512).container(Container::new("app", "busybox")));
//!     s.add("logs", LogGroup::new(td.revision()));
//! }
//! ```
//!
//! A string (a reference made into text) where a typed value is needed: `expected Arn<Role>, found String`.
//!
//! ```compile_fail,E0308
//! use ferroform::aws::{iam::Role, lambda::Function};
//! use ferroform::prelude::*;
//!
//! fn stack(s: &mut Stack) {
//!     let role = s.add("role", Role::for_service("lambda.amazonaws.com"));
//!     s.add("fn", Function::new("orders-api").role(role.arn().to_string()));
//! }
//! ```
//!
//! A name where an IAM statement needs an ARN: `` `Name<Table>` is not an ARN ``, with how to fix it.
//!
//! ```compile_fail,E0277
//! use ferroform::aws::{dynamodb::{AttrType, Table}, iam::Role};
//! use ferroform::prelude::*;
//!
//! fn stack(s: &mut Stack) {
//!     let table = s.add("table", Table::on_demand("orders").hash_key("id", AttrType::S));
//!     s.add("role", Role::for_service("lambda.amazonaws.com").allow(["dynamodb:GetItem"], [table.name()]));
//! }
//! ```
//!
//! A dependency on a string instead of a resource: `` `str` is not a resource of the stack `` (`depends_on_address`
//! takes an address made at run time, checked at validation).
//!
//! ```compile_fail,E0277
//! use ferroform::aws::logs::LogGroup;
//! use ferroform::prelude::*;
//!
//! fn stack(s: &mut Stack) {
//!     s.add_with("logs", LogGroup::new("app"), Options::new().depends_on("table"));
//! }
//! ```
