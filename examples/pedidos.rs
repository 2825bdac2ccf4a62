//! The pedidos stack's command line: `cargo run --example pedidos -- plan|apply|destroy`.
//! `scripts/deploy-local` runs it against the local emulator; see stacks/pedidos/src/stack.rs for what it
//! declares and its variables (`--var worker_image_tag=...`).

use std::process::ExitCode;

fn main() -> ExitCode {
    ferroform::cli::run("pedidos", pedidos::stack::stack)
}
