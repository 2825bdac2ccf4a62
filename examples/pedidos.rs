//! The pedidos stack's command line: `cargo run --example pedidos -- plan|apply|destroy|serve|smoke [URL]`.
//! `scripts/deploy-local` runs it against the local emulator; see stacks/pedidos/src/stack.rs for what it
//! declares and its variables (`--var worker_image_tag=...`).

use std::process::ExitCode;

fn main() -> ExitCode {
    ferroform::cli::app("pedidos").command("smoke", pedidos::smoke::command()).run(pedidos::stack::stack)
}
