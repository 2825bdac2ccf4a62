//! AWS Lambda (`aws-sdk-lambda`): functions, their code (built from cargo binaries, reproducibly zipped),
//! and invoke permissions.

mod code;
mod function;
mod permission;

pub use code::{
    build_settings, cargo_command, host_selection, max_glibc, package_binary, reproducible_zip, sha256_base64, Architecture, BuildMode,
    CargoBin, Code, LAMBDA_GLIBC,
};
pub use function::{invoke_arn, Function, FunctionOutputs, FunctionRefs, DEFAULT_HANDLER, DEFAULT_RUNTIME};
pub use permission::{Permission, PermissionOutputs, PermissionRefs, API_GATEWAY, INVOKE};

pub(crate) fn register(reg: &mut ferroform_core::Registry) {
    reg.register::<Function>();
    reg.register::<Permission>();
}
