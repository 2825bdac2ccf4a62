//! The hello stack's command line: `cargo run --example hello -- plan|apply|destroy`.
//! See stacks/hello/README.md for building and pushing the image first.

use std::process::ExitCode;

fn main() -> ExitCode {
    ferroform::cli::run("hello", hello::stack::stack)
}
