//! An application's `xtask/src/main.rs` that generates keyward's SQL migrations, as
//! `docs/databases.md` shows it: `cargo xtask migrations [--check] [--dir DIR] [--table-prefix P]
//! [--dialect D]...`. keyward's own `cargo xtask migrations` runs this program, so CI proves
//! that its output is byte for byte the repository's `migrations/` folder.
use std::process::ExitCode;

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    match args.next().as_deref() {
        Some("migrations") => keyward_sea_orm::MigrationFiles::run_cli(args),
        _ => {
            eprintln!(
                "usage: cargo xtask migrations [--check] [--dir DIR] [--table-prefix P] [--dialect D]..."
            );
            ExitCode::from(2)
        }
    }
}
