//! The Rust snippets of the repository's README.md and docs/, compiled (and, where they need no
//! server, run) as doc tests: `cargo test -p docs-snippets --doc`, part of `cargo xtask ci`.
//! Each page's dependency list is what its snippets use; this crate depends on the union.
//!
//! The tests below also check that each framework page shows its example program verbatim.
#![forbid(unsafe_code)]

#[doc = include_str!("../../../README.md")]
pub mod readme {}
#[doc = include_str!("../../../docs/axum.md")]
pub mod axum_md {}
#[doc = include_str!("../../../docs/actix.md")]
pub mod actix_md {}
#[doc = include_str!("../../../docs/databases.md")]
pub mod databases_md {}
#[doc = include_str!("../../../docs/redis.md")]
pub mod redis_md {}
#[doc = include_str!("../../../docs/signing.md")]
pub mod signing_md {}
#[doc = include_str!("../../../docs/server.md")]
pub mod server_md {}
#[doc = include_str!("../../../docs/security.md")]
pub mod security_md {}
#[doc = include_str!("../../../docs/key-format.md")]
pub mod key_format_md {}
#[doc = include_str!("../../../docs/performance.md")]
pub mod performance_md {}
#[doc = include_str!("../../../docs/architecture.md")]
pub mod architecture_md {}

#[cfg(test)]
mod tests {
    #![allow(clippy::panic)]

    /// Every page whose snippets the doc tests above compile.
    const PAGES: &[(&str, &str)] = &[
        ("README.md", include_str!("../../../README.md")),
        ("docs/axum.md", include_str!("../../../docs/axum.md")),
        ("docs/actix.md", include_str!("../../../docs/actix.md")),
        (
            "docs/databases.md",
            include_str!("../../../docs/databases.md"),
        ),
        ("docs/redis.md", include_str!("../../../docs/redis.md")),
        ("docs/signing.md", include_str!("../../../docs/signing.md")),
        ("docs/server.md", include_str!("../../../docs/server.md")),
        (
            "docs/security.md",
            include_str!("../../../docs/security.md"),
        ),
        (
            "docs/key-format.md",
            include_str!("../../../docs/key-format.md"),
        ),
        (
            "docs/performance.md",
            include_str!("../../../docs/performance.md"),
        ),
    ];

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
