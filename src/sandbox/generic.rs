//! Answers for every operation of the complete tool set that the handlers of the
//! curated endpoints do not serve. Atomicwork publishes no response schemas (each is an
//! empty object), so these answers are generic records in the upstream's usual shapes:
//! list envelopes `{data, total_count, total_pages}` and single objects with an `id`.
//! Records live per collection (the path without the addressed id), so a record created
//! through one tool is listed, read, changed and deleted through the others.

use std::sync::OnceLock;

use axum::Json;
use axum::body::Bytes;
use axum::http::{HeaderMap, Method, Uri, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

use super::error::{ApiError, ApiResult};
use super::store::{Db, Obj, uint};
use super::{Sandbox, header_workspace};
use crate::core::catalog::{Catalog, HttpMethod, ToolSetKind};

/// Sample records a collection starts with the first time it is read.
const SAMPLES: u64 = 2;

/// Largest page of a generic list.
const MAX_PER_PAGE: usize = 100;

/// One operation of the complete set, as the sandbox matches it.
#[derive(Debug)]
struct Route {
    method: HttpMethod,
    /// Path segments; `None` for a placeholder.
    segments: Vec<Option<String>>,
    /// The tool's method: list, get, create, update, delete or a custom one.
    kind: String,
    /// What the records are called, from the tool name (e.g. `iga_grants`).
    resource: String,
}

impl Route {
    /// Whether the route matches; more literal segments match more specifically.
    fn score(&self, method: &Method, segments: &[&str]) -> Option<usize> {
        if self.method.as_str() != method.as_str() || self.segments.len() != segments.len() {
            return None;
        }
        let mut literal = 0;
        for (want, got) in self.segments.iter().zip(segments) {
            match want {
                Some(w) if w == got => literal += 1,
                Some(_) => return None,
                None => {}
            }
        }
        Some(literal)
    }

    /// Whether the route addresses one record by the path's last segment.
    fn addresses_record(&self) -> bool {
        matches!(self.segments.last(), Some(None))
            && matches!(
                self.kind.as_str(),
                "get" | "update" | "delete" | "partial_update"
            )
    }
}

/// The complete set's operations, built once.
fn routes() -> &'static [Route] {
    static ROUTES: OnceLock<Vec<Route>> = OnceLock::new();
    ROUTES.get_or_init(|| {
        let Ok(catalog) = Catalog::builtin() else {
            return Vec::new();
        };
        catalog
            .tools_of(ToolSetKind::Complete)
            .iter()
            .map(|t| Route {
                method: t.source.http,
                segments: t
                    .source
                    .path
                    .split('/')
                    .filter(|s| !s.is_empty())
                    .map(|s| (!s.starts_with('{')).then(|| s.to_string()))
                    .collect(),
                kind: t.source.method.clone(),
                resource: resource_of(t.name()),
            })
            .collect()
    })
}

/// `list_all_atomicwork_iga_grants` → `iga_grants`.
fn resource_of(tool: &str) -> String {
    let mut rest = tool;
    for prefix in crate::core::catalog::generate::NAME_FAMILIES {
        if let Some(r) = rest.strip_prefix(prefix) {
            rest = r;
            break;
        }
    }
    rest.trim_end_matches("_by_id").to_string()
}

/// The best matching operation for a method and path, if any.
fn route_for(method: &Method, path: &str) -> Option<&'static Route> {
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    routes()
        .iter()
        .filter_map(|r| r.score(method, &segments).map(|s| (s, r)))
        .max_by_key(|(s, _)| *s)
        .map(|(_, r)| r)
}

/// Answers an operation of the complete set, or `None` when none matches.
pub(super) async fn answer(
    sb: &Sandbox,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: &Bytes,
) -> Option<Response> {
    let route = route_for(method, uri.path())?;
    let result = respond(sb, route, uri, headers, body);
    Some(match result {
        Ok(value) => Json(value).into_response(),
        Err(e) => e.into_response(),
    })
}

fn respond(
    sb: &Sandbox,
    route: &Route,
    uri: &Uri,
    headers: &HeaderMap,
    body: &Bytes,
) -> ApiResult<Value> {
    let workspace = header_workspace(sb, headers)?;
    let fields = body_fields(headers, body)?;
    let path = uri.path().trim_end_matches('/');
    let mut db = sb.lock()?;
    let (collection, record_id) = if route.addresses_record() {
        let (parent, id) = path.rsplit_once('/').unwrap_or((path, ""));
        (parent.to_string(), Some(id.to_string()))
    } else {
        (path.strip_suffix("/list").unwrap_or(path).to_string(), None)
    };
    match (route.kind.as_str(), record_id) {
        ("list", _) => Ok(list(&mut db, route, &collection, uri)),
        ("get", Some(id)) => Ok(Value::Object(find_or_sample(
            &mut db,
            route,
            &collection,
            &id,
        ))),
        ("get", None) => Ok(Value::Object(sample(route, &collection, 1))),
        ("create", _) => Ok(Value::Object(create(
            &mut db,
            route,
            &collection,
            fields,
            workspace,
        ))),
        ("update" | "partial_update", Some(id)) => {
            let mut rec = find_or_sample(&mut db, route, &collection, &id);
            for (k, v) in fields {
                rec.insert(k, v);
            }
            rec.insert("updated_at".into(), json!(db.now()));
            store(&mut db, &collection, rec.clone());
            Ok(Value::Object(rec))
        }
        ("delete", Some(id)) => {
            let records = db.generic.entry(collection).or_default();
            let before = records.len();
            records.retain(|r| !same_id(r, &id));
            Ok(json!({ "id": id_value(&id), "deleted": true, "existed": records.len() < before }))
        }
        (action, _) => Ok(json!({
            "status": "OK",
            "action": action,
            "path": path,
            "request": Value::Object(fields),
            "processed_at": db.now(),
        })),
    }
}

/// The body as fields: a JSON object's members, a JSON array as `items`, or the names of
/// the parts of a multipart body.
fn body_fields(headers: &HeaderMap, body: &Bytes) -> ApiResult<Map<String, Value>> {
    if body.is_empty() {
        return Ok(Map::new());
    }
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if content_type.starts_with("multipart/form-data") {
        let text = String::from_utf8_lossy(body);
        let parts: Vec<Value> = text
            .split("name=\"")
            .skip(1)
            .filter_map(|rest| rest.split('"').next())
            .map(|name| json!(name))
            .collect();
        return Ok(Map::from_iter([(
            "multipart_parts".to_string(),
            Value::Array(parts),
        )]));
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(Value::Array(items)) => Ok(Map::from_iter([("items".to_string(), Value::Array(items))])),
        Ok(other) => Ok(Map::from_iter([("value".to_string(), other)])),
        Err(e) => Err(ApiError::bad_request(format!(
            "the body is not valid JSON: {e}"
        ))),
    }
}

/// A list envelope over the collection, paged by `page` and `per_page` (or `page_size`).
fn list(db: &mut Db, route: &Route, collection: &str, uri: &Uri) -> Value {
    let records = seeded(db, route, collection).clone();
    let query: Vec<(String, String)> = uri
        .query()
        .map(|q| {
            q.split('&')
                .filter_map(|pair| pair.split_once('='))
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        })
        .unwrap_or_default();
    let number = |key: &str| {
        query
            .iter()
            .find(|(k, _)| k == key)
            .and_then(|(_, v)| v.parse::<usize>().ok())
    };
    let page = number("page").unwrap_or(1).max(1);
    let per_page = number("per_page")
        .or_else(|| number("page_size"))
        .unwrap_or(25)
        .clamp(1, MAX_PER_PAGE);
    let total = records.len();
    let data: Vec<Value> = records
        .into_iter()
        .skip((page - 1).saturating_mul(per_page))
        .take(per_page)
        .map(Value::Object)
        .collect();
    json!({
        "data": data,
        "total_count": total,
        "total_pages": total.div_ceil(per_page),
        "page": page,
    })
}

/// The collection's records, starting it with sample records on first use.
fn seeded<'a>(db: &'a mut Db, route: &Route, collection: &str) -> &'a mut Vec<Obj> {
    db.generic.entry(collection.to_string()).or_insert_with(|| {
        (1..=SAMPLES)
            .map(|n| sample(route, collection, n))
            .collect()
    })
}

/// A sample record of the route's resource.
fn sample(route: &Route, collection: &str, n: u64) -> Obj {
    let label = route.resource.replace('_', " ");
    let mut rec = Obj::new();
    rec.insert("id".into(), json!(n));
    rec.insert("name".into(), json!(format!("Sample {label} {n}")));
    rec.insert("collection".into(), json!(collection));
    rec.insert("created_at".into(), json!("2026-03-01T09:00:00Z"));
    rec
}

fn same_id(rec: &Obj, id: &str) -> bool {
    match rec.get("id") {
        Some(Value::Number(n)) => n.to_string() == id,
        Some(Value::String(s)) => s == id,
        _ => false,
    }
}

/// A path id as JSON: a number when it is one.
fn id_value(id: &str) -> Value {
    id.parse::<u64>().map_or_else(|_| json!(id), |n| json!(n))
}

/// The record with this id in the collection, or a sample record carrying the id.
fn find_or_sample(db: &mut Db, route: &Route, collection: &str, id: &str) -> Obj {
    let records = seeded(db, route, collection);
    if let Some(rec) = records.iter().find(|r| same_id(r, id)) {
        return rec.clone();
    }
    let mut rec = sample(route, collection, 0);
    rec.insert("id".into(), id_value(id));
    rec
}

/// Adds a record built from the body's fields, with the next id of the collection.
fn create(
    db: &mut Db,
    route: &Route,
    collection: &str,
    fields: Map<String, Value>,
    workspace: Option<u64>,
) -> Obj {
    let next = seeded(db, route, collection)
        .iter()
        .filter_map(|r| uint(r, "id"))
        .max()
        .unwrap_or(0)
        + 1;
    let mut rec = fields;
    rec.insert("id".into(), json!(next));
    rec.insert("collection".into(), json!(collection));
    if let Some(ws) = workspace {
        rec.entry("workspace_id").or_insert(json!(ws));
    }
    rec.insert("created_at".into(), json!(db.now()));
    store(db, collection, rec.clone());
    rec
}

/// Puts a record into its collection, replacing the one with the same id.
fn store(db: &mut Db, collection: &str, rec: Obj) {
    let records = db.generic.entry(collection.to_string()).or_default();
    let id = rec.get("id").cloned();
    match records.iter_mut().find(|r| r.get("id") == id.as_ref()) {
        Some(slot) => *slot = rec,
        None => records.push(rec),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_complete_operation_has_a_route_and_the_most_specific_one_wins() {
        let catalog = Catalog::builtin().expect("catalog");
        assert_eq!(
            routes().len(),
            catalog.tools_of(ToolSetKind::Complete).len()
        );
        // `/requests/list` is a literal path, not a request called "list".
        let list = route_for(&Method::POST, "/api/v1/requests/list").expect("a route");
        assert_eq!(list.kind, "list");
        assert_eq!(list.resource, "requests");
        let get = route_for(&Method::GET, "/api/v1/requests/ITREQ-1").expect("a route");
        assert_eq!(get.kind, "get");
        assert!(get.addresses_record());
        assert!(route_for(&Method::GET, "/api/v1/nothing/here").is_none());
        assert!(route_for(&Method::DELETE, "/api/v1/workspaces").is_none());
        assert_eq!(resource_of("list_all_atomicwork_iga_grants"), "iga_grants");
        assert_eq!(resource_of("delete_a_atomicwork_tag_by_id"), "tag");
    }
}
