//! The OpenAPI 3.1 document of the management routes (DESIGN.md §6), built once here so that
//! every adapter serves the same JSON.
//!
//! The routes are utoipa derives on fixed template paths (`paths`); [`document`] mounts them
//! where the deployment does (the prefix, the admin routes for a named owner) and states the
//! deployment's limits in the request schemas.
//!
//! Only with the `openapi` feature.

use utoipa::IntoParams as _;
use utoipa::openapi::path::{PathItem, Paths};
use utoipa::openapi::schema::Schema;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{InfoBuilder, OpenApiBuilder, RefOr};

use keyward_core::model::Policy;

mod paths;

/// The document type (utoipa's), re-exported so that adapters and applications name it
/// without depending on utoipa.
pub use utoipa::openapi::OpenApi;

/// Name of the bearer security scheme.
pub const BEARER_SCHEME: &str = "apiKeyAuth";
/// Name of the SigV4 security scheme (present when signing is enabled).
pub const HMAC_SCHEME: &str = "apiKeyHmacAuth";

/// The schema of every field or parameter that takes scopes.
pub use keyward_core::schemas::scope_list;

/// Which management routes a document describes: what an adapter (or the server) mounts.
#[derive(Debug, Clone, Copy)]
pub struct Mounted<'a> {
    /// Where the self-service routes are (default `/api-keys`); the admin routes are under
    /// `{admin_prefix}/owners/{owner_id}{prefix}`.
    pub prefix: &'a str,
    /// The start of the admin routes' base (default `/admin`).
    pub admin_prefix: &'a str,
    /// The six self-service routes are mounted.
    pub self_service: bool,
    /// The six admin routes are mounted.
    pub admin: bool,
    /// The list of every owner's keys, `GET {admin_prefix}{prefix}`, is mounted (with the
    /// admin routes).
    pub admin_list_all: bool,
    /// The batch create, `POST {admin_prefix}{prefix}/batch`, is mounted (with the admin
    /// routes).
    pub admin_batch_create: bool,
    /// The audit log of every owner, `GET {admin_prefix}/audit`, is mounted (with the admin
    /// routes).
    pub admin_audit: bool,
    /// Signed requests are verified: the `apiKeyHmacAuth` (SigV4) security scheme is added
    /// beside `apiKeyAuth`.
    pub signing: bool,
    /// The deployment's limits (name and description lengths, scopes and allowlist entries
    /// per key, the longest grace and lifetime), stated in the request schemas; `None` leaves
    /// them unstated.
    pub policy: Option<&'a Policy>,
}

/// The OpenAPI document of the management routes `mounted` describes.
#[must_use]
pub fn document(mounted: &Mounted<'_>) -> OpenApi {
    let Mounted {
        prefix,
        admin_prefix,
        self_service,
        admin,
        admin_list_all,
        admin_batch_create,
        admin_audit,
        signing,
        policy,
    } = *mounted;
    let prefix = prefix.trim_end_matches('/');
    let admin_base = format!(
        "{}/owners/{{owner_id}}{prefix}",
        admin_prefix.trim_end_matches('/')
    );
    let routes = paths::routes();
    let mut mounted_paths = Paths::new();
    for (template, item) in routes.paths.paths {
        if template == paths::AUDIT_PATH {
            if admin && admin_audit {
                let all = format!("{}{template}", admin_prefix.trim_end_matches('/'));
                mounted_paths.paths.insert(all, item);
            }
            continue;
        }
        let rest = template
            .strip_prefix(paths::TEMPLATE_PREFIX)
            .unwrap_or(&template);
        if rest == paths::BATCH_PATH {
            if admin && admin_batch_create {
                let all = format!("{}{prefix}{rest}", admin_prefix.trim_end_matches('/'));
                mounted_paths.paths.insert(all, item);
            }
            continue;
        }
        if admin {
            mounted_paths
                .paths
                .insert(format!("{admin_base}{rest}"), for_admin(item.clone()));
        }
        if admin && admin_list_all && rest.is_empty() {
            let all = format!("{}{prefix}", admin_prefix.trim_end_matches('/'));
            mounted_paths.paths.insert(all, for_admin_all(item.clone()));
        }
        if self_service {
            mounted_paths.paths.insert(format!("{prefix}{rest}"), item);
        }
    }

    let mut components = routes.components.unwrap_or_default();
    components.add_security_scheme(
            BEARER_SCHEME,
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("keyward API key")
                    .description(Some(
                        "An API key `<prefix>_<env>_<key_id>_<secret><check>` as `Authorization: Bearer <key>` \
                         (the `X-API-Key` header is accepted too).",
                    ))
                    .build(),
            ),
        );
    if signing {
        components.add_security_scheme(
            HMAC_SCHEME,
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                "Authorization",
                "AWS Signature Version 4: `Authorization: AWS4-HMAC-SHA256 Credential=<key_id>/<date>/<region>/<service>/aws4_request, \
                 SignedHeaders=…, Signature=…` with the raw API key as the secret, plus `X-Amz-Date`. See docs/signing.md.",
            ))),
        );
    }
    let mut doc = OpenApiBuilder::new()
        .info(
            InfoBuilder::new()
                .title("keyward API key management")
                .version(env!("CARGO_PKG_VERSION"))
                .description(Some(
                    "Self-service (and admin) management of API keys. Errors are application/problem+json \
                     (RFC 9457) with a stable `code`.",
                ))
                .build(),
        )
        .paths(mounted_paths)
        .components(Some(components))
        .build();
    if let Some(policy) = policy {
        state_limits(&mut doc, policy);
    }
    if !signing {
        // Without an encryption keyring no key can be a signing key.
        limit(&mut doc, "CreateKeyRequest", "signing", |s| {
            if let Schema::Object(o) = s {
                o.enum_values = Some(vec![false.into()]);
            }
        });
    }
    doc
}

/// `item`, one of the self-service routes, as the admin route for a named owner: an
/// `owner_id` path parameter first, the `admin` tag, and `admin` before the operation id
/// (`createApiKey` becomes `adminCreateApiKey`).
fn for_admin(mut item: PathItem) -> PathItem {
    let owner_id = paths::OwnerPath::into_params(|| None);
    for op in [
        &mut item.get,
        &mut item.post,
        &mut item.patch,
        &mut item.delete,
    ]
    .into_iter()
    .flatten()
    {
        op.tags = Some(vec!["admin".to_owned()]);
        op.operation_id = op.operation_id.as_deref().map(|id| {
            let mut c = id.chars();
            let first = c.next().map(|f| f.to_ascii_uppercase()).unwrap_or('x');
            format!("admin{first}{}", c.as_str())
        });
        let params = op.parameters.get_or_insert_with(Vec::new);
        params.splice(0..0, owner_id.iter().cloned());
    }
    item
}

/// The list of every owner's keys, from the self-service list (`item` is the base path's, whose
/// create it drops): the admin tag and the `owner_id` query filter.
fn for_admin_all(mut item: PathItem) -> PathItem {
    item.post = None;
    if let Some(op) = item.get.as_mut() {
        op.tags = Some(vec!["admin".to_owned()]);
        op.operation_id = Some("adminListAllApiKeys".to_owned());
        op.summary = Some("List every owner's keys, oldest first".to_owned());
        let params = op.parameters.get_or_insert_with(Vec::new);
        params.splice(0..0, paths::OwnerQuery::into_params(|| None));
    }
    item
}

/// The policy's limits on the request bodies, where the server checks them.
fn state_limits(doc: &mut OpenApi, policy: &Policy) {
    let seconds = |d: time::Duration| d.whole_seconds();
    let max_ttl = policy
        .max_ttl
        .map_or(keyward_core::management::MAX_TTL_SECONDS, |d| {
            seconds(d).min(keyward_core::management::MAX_TTL_SECONDS)
        });
    for body in ["CreateKeyRequest", "UpdateKeyRequest"] {
        limit(doc, body, "name", |s| {
            set_max_length(s, policy.max_name_len)
        });
        limit(doc, body, "description", |s| {
            set_max_length(s, policy.max_description_len);
        });
        limit(doc, body, "scopes", |s| set_max_items(s, policy.max_scopes));
        limit(doc, body, "ip_allowlist", |s| {
            set_max_items(s, policy.max_ip_entries);
        });
    }
    limit(doc, "CreateKeyRequest", "ttl_seconds", |s| {
        set_maximum(s, max_ttl)
    });
    limit(doc, "RotateKeyRequest", "grace_seconds", |s| {
        set_maximum(s, seconds(policy.max_rotation_grace));
    });
}

fn limit(doc: &mut OpenApi, schema: &str, property: &str, f: impl FnOnce(&mut Schema)) {
    let body = doc
        .components
        .as_mut()
        .and_then(|c| c.schemas.get_mut(schema));
    if let Some(RefOr::T(Schema::Object(o))) = body
        && let Some(RefOr::T(p)) = o.properties.get_mut(property)
    {
        f(p);
    }
}

fn set_max_length(s: &mut Schema, n: usize) {
    if let Schema::Object(o) = s {
        o.max_length = Some(n);
    }
}

fn set_max_items(s: &mut Schema, n: usize) {
    if let Schema::Array(a) = s {
        a.max_items = Some(n);
    }
}

fn set_maximum(s: &mut Schema, n: i64) {
    if let Schema::Object(o) = s {
        o.maximum = Some(n.into());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::problem::CONTENT_TYPE as PROBLEM;

    fn mounted(prefix: &str, admin: bool, signing: bool) -> Mounted<'_> {
        Mounted {
            prefix,
            admin_prefix: "/admin",
            self_service: true,
            admin,
            admin_list_all: admin,
            admin_batch_create: admin,
            admin_audit: admin,
            signing,
            policy: None,
        }
    }

    fn json_of(doc: &OpenApi) -> serde_json::Value {
        serde_json::to_value(doc).unwrap()
    }

    #[test]
    fn describes_every_route_and_schema() {
        let v = json_of(&document(&mounted("/api-keys", true, false)));
        let paths = v["paths"].as_object().unwrap();
        assert!(paths["/api-keys"]["post"].is_object());
        assert!(paths["/api-keys"]["get"].is_object());
        assert!(paths["/api-keys/{key_id}"]["get"].is_object());
        assert!(paths["/api-keys/{key_id}"]["patch"].is_object());
        assert!(paths["/api-keys/{key_id}"]["delete"].is_object());
        assert!(paths["/api-keys/{key_id}/rotate"]["post"].is_object());
        assert!(paths["/api-keys/{key_id}/events"]["get"].is_object());
        assert!(paths["/admin/audit"]["get"].is_object());
        for (path, methods) in [
            (
                "/admin/owners/{owner_id}/api-keys/{key_id}/events",
                &["get"][..],
            ),
            ("/admin/owners/{owner_id}/api-keys", &["post", "get"][..]),
            (
                "/admin/owners/{owner_id}/api-keys/{key_id}",
                &["get", "patch", "delete"],
            ),
            (
                "/admin/owners/{owner_id}/api-keys/{key_id}/rotate",
                &["post"],
            ),
        ] {
            for m in methods {
                assert!(paths[path][m].is_object(), "{m} {path}");
            }
        }
        let rotate = &paths["/api-keys/{key_id}/rotate"]["post"]["responses"];
        for status in ["201", "403", "404", "409", "412"] {
            assert!(rotate[status].is_object(), "rotate answers {status}");
        }
        assert!(rotate["201"]["headers"]["Cache-Control"].is_object());
        assert!(rotate["201"]["headers"]["ETag"].is_object());
        assert!(
            paths["/api-keys"]["post"]["responses"]["201"]["headers"]["Cache-Control"].is_object()
        );
        assert!(paths["/api-keys/{key_id}"]["patch"]["responses"]["412"].is_object());
        // What the server enforces on `limit` is in the document (schemathesis found it missing).
        let limit = &paths["/api-keys"]["get"]["parameters"][0];
        assert_eq!(limit["name"], "limit");
        assert_eq!(
            (&limit["schema"]["minimum"], &limit["schema"]["maximum"]),
            (&serde_json::json!(1), &serde_json::json!(100))
        );
        let schemas = v["components"]["schemas"].as_object().unwrap();
        for name in [
            "CreateKeyRequest",
            "UpdateKeyRequest",
            "CreatedKey",
            "KeyPage",
            "KeyView",
            "Problem",
            "FieldError",
            "EventList",
            "Event",
        ] {
            assert!(schemas.contains_key(name), "{name}");
        }
        assert_eq!(
            v["components"]["securitySchemes"][BEARER_SCHEME]["scheme"],
            "bearer"
        );
        assert!(
            v["components"]["securitySchemes"]
                .get(HMAC_SCHEME)
                .is_none()
        );
        let created = &paths["/api-keys"]["post"]["responses"]["201"]["content"]["application/json"]
            ["schema"]["$ref"];
        assert_eq!(created, "#/components/schemas/CreatedKey");
        assert!(paths["/api-keys"]["post"]["responses"]["422"]["content"][PROBLEM].is_object());
    }

    #[test]
    fn every_ref_resolves() {
        let v = json_of(&document(&mounted("/keys/", true, true)));
        let text = v.to_string();
        let schemas = v["components"]["schemas"].as_object().unwrap();
        for part in text.split("#/components/schemas/").skip(1) {
            let name: String = part
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            assert!(schemas.contains_key(&name), "dangling $ref {name}");
        }
        assert!(v["paths"].get("/keys").is_some());
    }

    #[test]
    fn signing_adds_the_hmac_scheme_and_admin_is_optional() {
        let v = json_of(&document(&mounted("/api-keys", false, true)));
        assert_eq!(
            v["components"]["securitySchemes"][HMAC_SCHEME]["in"],
            "header"
        );
        assert_eq!(
            v["components"]["securitySchemes"][HMAC_SCHEME]["name"],
            "Authorization"
        );
        assert!(
            v["paths"]
                .as_object()
                .unwrap()
                .keys()
                .all(|k| !k.starts_with("/admin"))
        );
    }
}
