//! The example runs as its documentation says: create a key, call the protected route.
#![allow(missing_docs)]

#[tokio::test]
async fn the_example_runs() {
    keyward_test::example_app::smoke(env!("CARGO_BIN_EXE_example-axum-app").as_ref()).await;
}
