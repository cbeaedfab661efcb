//! The shared `KeyStore` conformance suite (`keyward-test`) on `RedisKeyStore`, against the
//! shared Redis; every case gets a fresh, random key prefix, i.e. an empty store.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::sync::Arc;

use keyward_core::KeyStore;
use keyward_core::key::KeyId;
use keyward_redis::{RedisConfig, RedisKeyStore};

async fn make() -> Option<Arc<dyn KeyStore>> {
    let url = keyward_test::services::redis_url().await?;
    let prefix = format!("kwsuite:{}", KeyId::generate().unwrap());
    Some(Arc::new(
        RedisKeyStore::new(&RedisConfig::new(url, prefix)).unwrap(),
    ))
}

keyward_test::store_suite!(make);

async fn with_outbox() -> Option<(
    Arc<dyn KeyStore>,
    Arc<dyn keyward_core::webhook::WebhookOutbox>,
)> {
    let url = keyward_test::services::redis_url().await?;
    let prefix = format!("kwsuite:{}", KeyId::generate().unwrap());
    let store = Arc::new(
        RedisKeyStore::new(&RedisConfig::new(url, prefix))
            .unwrap()
            .with_outbox(true)
            .unwrap(),
    );
    Some((store.clone(), store))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhook_outbox_on_redis() {
    let Some((keys, outbox)) = with_outbox().await else {
        return;
    };
    keyward_test::store_suite::case_webhook_outbox(keys, outbox).await;
    let (keys, outbox) = with_outbox().await.unwrap();
    keyward_test::store_suite::case_webhook_claims_are_exclusive(keys, outbox).await;
    let (keys, outbox) = with_outbox().await.unwrap();
    keyward_test::store_suite::case_webhook_retention(keys, outbox).await;
}
