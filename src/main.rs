//! The `scim-bridge` binary; everything lives in the library.

fn main() -> std::process::ExitCode {
    scim_bridge::cli::main()
}
