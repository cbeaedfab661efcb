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
