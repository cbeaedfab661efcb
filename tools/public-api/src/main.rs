//! `keyward-public-api <rustdoc.json>`: the public API of the crate the rustdoc JSON describes,
//! one item per line, sorted, without blanket, auto-trait and auto-derived impls (they follow
//! from the items and would only add noise to the diff).

use std::process::ExitCode;

fn main() -> ExitCode {
    let Some(path) = std::env::args().nth(1) else {
        eprintln!("usage: keyward-public-api <rustdoc.json>");
        return ExitCode::from(2);
    };
    let api = public_api::Builder::from_rustdoc_json(&path)
        .omit_blanket_impls(true)
        .omit_auto_trait_impls(true)
        .omit_auto_derived_impls(true)
        .build();
    match api {
        Ok(api) => {
            for item in api.items() {
                println!("{item}");
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("keyward-public-api: cannot read {path}: {e}");
            ExitCode::FAILURE
        }
    }
}
