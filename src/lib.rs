//! ferroform: infrastructure as code in plain Rust.
//!
//! A stack is an ordinary Rust program: typed resource structs, references between them (`role.arn()`)
//! that become graph edges, and a command line (`ferroform::cli::run`) with plan / apply / destroy and the
//! rest. Everything the command line does is a library call on [`Engine`].

pub use ferroform_core as core;
pub use ferroform_core::*;

#[cfg(feature = "aws")]
pub use ferroform_aws as aws;

/// Running a stack on this machine against the emulator (`serve`), and declaring where a container's or an
/// image function's local program comes from.
#[cfg(feature = "aws")]
pub use ferroform_local as local;

/// The command line for a stack program.
pub mod cli {
    pub use ferroform_cli::*;
    use std::process::ExitCode;

    /// `fn main() -> ExitCode { ferroform::cli::run("pedidos", pedidos::stack) }`: parses the arguments
    /// (`plan`, `apply`, `destroy`, ...), builds the stack and runs the command, with every AWS resource type
    /// known (so resources the code dropped can still be deleted).
    pub fn run(name: &str, build: impl Fn(&mut crate::Stack) -> anyhow::Result<()>) -> ExitCode {
        app(name).run(build)
    }

    /// The command line with this build's providers registered, for further configuration.
    pub fn app(name: &str) -> Cli {
        #[allow(unused_mut)]
        let mut cli = Cli::new(name);
        #[cfg(feature = "aws")]
        {
            cli = cli.registry(ferroform_aws::registry()).backend(
                "s3",
                std::sync::Arc::new(|url: &str, contexts: &crate::Contexts| {
                    let backend = ferroform_aws::s3::S3Backend::from_url(url, contexts.clone())?;
                    Ok(std::sync::Arc::new(backend) as std::sync::Arc<dyn crate::Backend>)
                }),
            );
            cli = cli.server(std::sync::Arc::new(|stack, state, args, stop| {
                Box::pin(async move {
                    // A --jwks (or FERROFORM_JWKS) that can't be read stops serve before anything starts.
                    let jwks = ferroform_local::auth::jwt::JwksSource::chosen(args.jwks.as_deref()).await.map_err(anyhow::Error::msg)?;
                    let opts = ferroform_local::ServeOptions { port: args.port, max_instances: args.max_instances, jwks: Some(jwks) };
                    ferroform_local::serve(stack, state, opts, stop).await
                })
            }));
            cli = cli.checker(std::sync::Arc::new(|stack, args| {
                use ferroform_aws::check::{check, Severity};
                let fail_on: Severity = args.fail_on.parse().map_err(|e: String| anyhow::anyhow!("--fail-on: {e}"))?;
                let report = check(stack);
                let text = match args.format {
                    CheckFormat::Text => report.to_text(args.color, fail_on),
                    CheckFormat::Json => report.to_json_text(fail_on),
                    CheckFormat::Sarif => report.to_sarif_text(&args.source),
                };
                Ok(CheckOutcome { report: text, blocking: report.blocking(fail_on) })
            }));
        }
        cli
    }
}

#[cfg(feature = "aws")]
pub mod typing;

/// What a stack file needs.
pub mod prelude {
    pub use anyhow::{bail, Context as _, Result};
    pub use ferroform_core::{join, Arn, Handle, Id, Name, Options, Ref, Resource, Stack};
}
