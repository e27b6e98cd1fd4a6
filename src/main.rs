//! The `boyong` command line: parses arguments, calls the engine, prints, and maps
//! outcomes to documented exit codes (see `cli/error.rs`).

mod cli;

fn main() -> std::process::ExitCode {
    cli::main()
}
