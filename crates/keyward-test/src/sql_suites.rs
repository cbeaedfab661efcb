//! [`sql_suites!`](macro@crate::sql_suites): the shared HTTP and management suites over the SQL store,
//! one instantiation per backend, for an adapter's test crate.
//!
//! keyward-test does not depend on keyward-sea-orm (whose own tests depend on keyward-test):
//! the macro expands in the calling test crate, which names `keyward_sea_orm` and `tempfile`
//! among its dev-dependencies.

/// Instantiates [`http_suite!`](macro@crate::http_suite) and
/// [`management_suite!`](macro@crate::management_suite) over SQLite (a fresh file per test) and
/// PostgreSQL (tables with `prefix`, shared by the cases, which use owners of their own; skipped
/// loudly when the server is not there, failed under `CI=true`), in modules `sqlite` and
/// `postgres`:
///
/// ```text
/// keyward_test::sql_suites!(spawn = crate::common::spawn, prefix = "kwaxum_");
/// ```
#[macro_export]
macro_rules! sql_suites {
    (spawn = $spawn:path, prefix = $prefix:literal $(,)?) => {
        /// Each test gets its own SQLite file; the directory goes away with the process's temp
        /// files.
        async fn sqlite() -> ::std::sync::Arc<dyn ::keyward_core::KeyStore> {
            let dir = ::tempfile::Builder::new()
                .prefix("keyward-sql-suite-")
                .tempdir()
                .expect("temp dir");
            let path = dir.keep().join("keys.db");
            let url = ::std::format!("sqlite://{}?mode=rwc", path.display());
            let store = ::keyward_sea_orm::SeaOrmKeyStore::connect(&url)
                .await
                .expect("sqlite connects");
            store.migrate().await.expect("sqlite migrates");
            ::std::sync::Arc::new(store)
        }

        static PG_MIGRATED: ::tokio::sync::Mutex<bool> = ::tokio::sync::Mutex::const_new(false);

        /// Tables with this crate's own prefix in the shared `test` database.
        async fn postgres() -> ::std::option::Option<::std::sync::Arc<dyn ::keyward_core::KeyStore>>
        {
            let url = $crate::services::postgres_url().await?;
            let store = ::keyward_sea_orm::SeaOrmKeyStore::connect(&url)
                .await
                .expect("postgres connects");
            let tables = ::keyward_sea_orm::Tables::with_prefix($prefix).expect("prefix");
            let store =
                ::keyward_sea_orm::SeaOrmKeyStore::with_tables(store.connection().clone(), tables);
            let mut migrated = PG_MIGRATED.lock().await;
            if !*migrated {
                store.migrate().await.expect("postgres migrates");
                *migrated = true;
            }
            ::std::option::Option::Some(::std::sync::Arc::new(store))
        }

        mod sqlite {
            use super::*;
            $crate::http_suite!(store = super::sqlite, spawn = $spawn);

            mod management {
                async fn app() -> ::std::option::Option<$crate::management_suite::MgmtApp> {
                    ::std::option::Option::Some(
                        $crate::management_suite::MgmtApp::adapter(
                            super::super::sqlite().await,
                            $spawn,
                        )
                        .await,
                    )
                }
                $crate::management_suite!(app = app);
            }
        }

        mod postgres {
            use super::*;
            $crate::http_suite!(store = super::postgres, spawn = $spawn);

            mod management {
                async fn app() -> ::std::option::Option<$crate::management_suite::MgmtApp> {
                    ::std::option::Option::Some(
                        $crate::management_suite::MgmtApp::adapter(
                            super::super::postgres().await?,
                            $spawn,
                        )
                        .await,
                    )
                }
                $crate::management_suite!(app = app);
            }
        }
    };
}
