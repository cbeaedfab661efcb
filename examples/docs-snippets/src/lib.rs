//! The Rust snippets of the repository's README.md and docs/, compiled (and, where they need no
//! server, run) as doc tests: `cargo test -p docs-snippets --doc`, part of `cargo xtask ci`.
//! Each page's dependency list is what its snippets use; this crate depends on the union.
//!
//! The tests below also check that each framework page shows its example program verbatim.
#![forbid(unsafe_code)]

/// One module per page, its text as the module's docs (so rustdoc compiles its snippets), and
/// [`PAGES`] listing the same pages for the checks below: one list, so that no page is compiled
/// without being checked, or the other way round.
macro_rules! pages {
    ($($module:ident => $path:literal,)*) => {
        $(
            #[doc = include_str!(concat!("../../../", $path))]
            pub mod $module {}
        )*

        /// Every page whose snippets the doc tests compile: `(path, text)`.
        pub const PAGES: &[(&str, &str)] = &[
            $(($path, include_str!(concat!("../../../", $path))),)*
        ];
    };
}

pages! {
    readme => "README.md",
    axum_md => "docs/axum.md",
    actix_md => "docs/actix.md",
    databases_md => "docs/databases.md",
    redis_md => "docs/redis.md",
    events_md => "docs/events.md",
    usage_md => "docs/usage.md",
    signing_md => "docs/signing.md",
    server_md => "docs/server.md",
    security_md => "docs/security.md",
    key_format_md => "docs/key-format.md",
    performance_md => "docs/performance.md",
    architecture_md => "docs/architecture.md",
}

#[cfg(test)]
mod tests {
    #![allow(clippy::panic)]
    use super::PAGES;

    /// A Rust block the doc tests skip (`ignore`) is a snippet nobody checks; a bare fence is
    /// taken for Rust by rustdoc, so text blocks must say `text`.
    #[test]
    fn no_snippet_escapes_the_compiler() {
        for (page, text) in PAGES {
            let mut open = false;
            for (n, line) in text.lines().enumerate() {
                let Some(info) = line.trim_start().strip_prefix("```") else {
                    continue;
                };
                if !open {
                    assert!(
                        !info.trim().is_empty(),
                        "{page}:{}: a bare ``` block is Rust to rustdoc; name its language",
                        n + 1
                    );
                    assert!(
                        !(info.starts_with("rust") && info.contains("ignore")),
                        "{page}:{}: `{info}` is not compiled; make it compile (`no_run` at most)",
                        n + 1
                    );
                }
                open = !open;
            }
        }
    }

    /// The framework pages show their example program whole, as it is in `examples/`.
    #[test]
    fn framework_pages_show_the_example_verbatim() {
        for (page, text, example) in [
            (
                "docs/axum.md",
                include_str!("../../../docs/axum.md"),
                include_str!("../../axum-app/src/main.rs"),
            ),
            (
                "docs/actix.md",
                include_str!("../../../docs/actix.md"),
                include_str!("../../actix-app/src/main.rs"),
            ),
        ] {
            let block = format!("```rust,no_run\n{example}```\n");
            assert!(
                text.contains(&block),
                "{page} must show its example's main.rs verbatim in a rust,no_run block"
            );
        }
    }
}
