//! Writes the schema as SQL, one folder per backend:
//! `<dir>/{postgres,sqlite,mysql}/{0001_create_api_keys,0002_key_lineage}.sql`.
//! `cargo xtask migrations` runs this and compares or copies the result into `migrations/`.
//!
//! Usage: `cargo run -p keyward-sea-orm --example render_migrations -- <dir> [table-prefix]`
#![allow(clippy::print_stdout)]

use std::path::PathBuf;
use std::process::ExitCode;

use keyward_sea_orm::sea_orm::DbBackend;
use keyward_sea_orm::{Tables, render_migrations};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(dir) = args.first().map(PathBuf::from) else {
        eprintln!("usage: render_migrations <dir> [table-prefix]");
        return ExitCode::from(2);
    };
    let tables = match Tables::with_prefix(args.get(1).map_or("", String::as_str)) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("render_migrations: {e}");
            return ExitCode::from(2);
        }
    };
    for (folder, backend) in [
        ("postgres", DbBackend::Postgres),
        ("sqlite", DbBackend::Sqlite),
        ("mysql", DbBackend::MySql),
    ] {
        let out = dir.join(folder);
        for (file, sql) in render_migrations(backend, &tables) {
            let path = out.join(file);
            let written = std::fs::create_dir_all(&out).and_then(|()| std::fs::write(&path, sql));
            if let Err(e) = written {
                eprintln!("render_migrations: {}: {e}", path.display());
                return ExitCode::FAILURE;
            }
            println!("{}", path.display());
        }
    }
    ExitCode::SUCCESS
}
