//! Assets: the filtered list, create, get and full replace. An asset's top-level
//! fields (name, status, assignee, …) are read from its `form_fields`, and a change
//! of assignee is written to the audit log, as an asset system would.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde_json::{Value, json};

use super::body::{Body, check_enum, check_time, opt_id, opt_object};
use super::error::{ApiError, ApiResult};
use super::filter::{Attributes, matches_all, parse_filters};
use super::params::{Params, SortKey, matches_search, page, sort_keys, sort_records, window};
use super::store::{Db, Obj, by_id, position, text, uint};
use super::{Sandbox, parse_id};

/// Asset statuses the sandbox knows.
const STATUSES: &[&str] = &["IN_USE", "AVAILABLE", "IN_REPAIR", "RETIRED"];

const ATTRIBUTES: Attributes = Attributes {
    fields: &[
        "id",
        "name",
        "asset_type",
        "asset_type_id",
        "status",
        "assigned_to_id",
        "serial_number",
        "model",
        "location",
        "source",
        "purchase_date",
        "created_at",
        "updated_at",
    ],
    aliases: &[
        ("assigned_to", "assigned_to_id"),
        ("assignee", "assigned_to_id"),
        ("assignee_id", "assigned_to_id"),
        ("user_id", "assigned_to_id"),
        ("type", "asset_type"),
    ],
};

/// Copies `form_fields` into the record's top-level fields (no checks: callers
/// validate first with [`checked_form`]).
pub(crate) fn apply_form(db: &Db, rec: &mut Obj, form: Obj) {
    let type_name = uint(rec, "asset_type_id")
        .and_then(|id| by_id(&db.asset_types, id))
        .and_then(|t| t.get("name").cloned())
        .unwrap_or(Value::Null);
    rec.insert("asset_type".into(), type_name);
    for key in [
        "name",
        "serial_number",
        "model",
        "location",
        "purchase_date",
    ] {
        rec.insert(key.into(), form.get(key).cloned().unwrap_or(Value::Null));
    }
    let assignee = form.get("assigned_to").and_then(Value::as_u64);
    let status = text(&form, "status")
        .map(str::to_owned)
        .unwrap_or_else(|| default_status(assignee).to_owned());
    rec.insert("status".into(), json!(status));
    rec.insert("assigned_to_id".into(), json!(assignee));
    rec.insert("assigned_to".into(), db.user_ref(assignee));
    rec.insert("form_fields".into(), Value::Object(form));
}

fn default_status(assignee: Option<u64>) -> &'static str {
    if assignee.is_some() {
        "IN_USE"
    } else {
        "AVAILABLE"
    }
}

/// Validates and normalises `form_fields` (name required; status an enum;
/// `assigned_to` an existing user id or null).
fn checked_form(db: &Db, mut form: Obj) -> ApiResult<Obj> {
    match form.get("name").and_then(Value::as_str) {
        Some(n) if !n.trim().is_empty() => {}
        _ => return Err(ApiError::required("form_fields.name")),
    }
    let assignee = opt_id(&form, "assigned_to")
        .map_err(|_| ApiError::bad_request("form_fields.assigned_to must be a user id or null"))?;
    if let Some(id) = assignee {
        db.require_user("form_fields.assigned_to", id)?;
    }
    form.insert("assigned_to".into(), json!(assignee));
    let status = match form.get("status").and_then(Value::as_str) {
        Some(s) => check_enum("form_fields.status", s, STATUSES)?,
        None => default_status(assignee).to_owned(),
    };
    form.insert("status".into(), json!(status));
    if let Some(date) = form.get("purchase_date").and_then(Value::as_str) {
        check_time("form_fields.purchase_date", date)?;
    }
    Ok(form)
}

/// The checked parts of a create/replace body.
struct AssetInput {
    type_id: u64,
    form: Obj,
    image_id: Option<u64>,
}

fn read_input(db: &Db, body: Body) -> ApiResult<AssetInput> {
    let o = body.into_object()?;
    let type_id =
        opt_id(&o, "asset_type_id")?.ok_or_else(|| ApiError::required("asset_type_id"))?;
    if by_id(&db.asset_types, type_id).is_none() {
        let known: Vec<String> = db
            .asset_types
            .iter()
            .map(|t| {
                format!(
                    "{} {}",
                    t.get("id").unwrap_or(&Value::Null),
                    text(t, "name").unwrap_or("")
                )
            })
            .collect();
        return Err(ApiError::bad_request(format!(
            "asset_type_id: asset type {type_id} does not exist; types: {}",
            known.join(", ")
        )));
    }
    let form = opt_object(&o, "form_fields")?.ok_or_else(|| ApiError::required("form_fields"))?;
    Ok(AssetInput {
        type_id,
        form: checked_form(db, form)?,
        image_id: opt_id(&o, "image_id")?,
    })
}

fn find(db: &Db, id: u64) -> ApiResult<usize> {
    position(&db.assets, id).ok_or_else(|| ApiError::not_found(format!("Asset {id} not found")))
}

/// Writes an audit event when an asset's assignee changes.
fn audit_assignment(db: &mut Db, rec: &Obj, old: Option<u64>) {
    let new = uint(rec, "assigned_to_id");
    if old == new {
        return;
    }
    let name = |db: &Db, id: Option<u64>| {
        db.user_ref(id)
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or("nobody")
            .to_owned()
    };
    let asset = text(rec, "name").unwrap_or("asset").to_owned();
    let description = format!(
        "{} assigned {asset} to {} (was {})",
        db.actor_name(),
        name(db, new),
        name(db, old)
    );
    let kind = if new.is_some() {
        "ASSET_ASSIGNED"
    } else {
        "ASSET_UNASSIGNED"
    };
    let event = super::store::obj(json!({
        "event_type": kind, "entity_type": "ASSET", "entity_id": rec.get("id"),
        "entity_name": asset, "description": description,
        "changes": {"assigned_to": {"old": old, "new": new}}, "ip_address": null,
    }));
    db.audit_event(event);
}

/// `POST /api/v1/assets/list` (both the plain and the search tool).
pub(crate) async fn list(
    State(sb): State<Sandbox>,
    params: Params,
    body: Body,
) -> ApiResult<Json<Value>> {
    let w = window(&params, true)?;
    let filters = parse_filters(&body.0, &ATTRIBUTES)?;
    let keys = sort_keys(
        &params,
        SortKey {
            field: "id".into(),
            descending: false,
        },
    )?;
    let search = params.search_key();
    let db = sb.lock()?;
    let mut rows: Vec<Obj> = db
        .assets
        .iter()
        .filter(|a| matches_all(a, &filters, db.clock_time()))
        .filter(|a| matches_search(a, &["name", "serial_number", "model"], search.as_deref()))
        .cloned()
        .collect();
    sort_records(&mut rows, &keys);
    Ok(Json(page(rows.into_iter().map(Value::Object).collect(), w)))
}

/// `POST /api/v1/assets`.
pub(crate) async fn create(
    State(sb): State<Sandbox>,
    body: Body,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let mut db = sb.lock()?;
    let input = read_input(&db, body)?;
    let id = db.next("asset");
    let now = db.now();
    let mut rec = super::store::obj(json!({
        "id": id, "asset_type_id": input.type_id, "source": "API", "image_id": input.image_id,
        "created_at": now, "updated_at": now,
    }));
    apply_form(&db, &mut rec, input.form);
    audit_assignment(&mut db, &rec, None);
    db.assets.push(rec.clone());
    Ok((StatusCode::CREATED, Json(Value::Object(rec))))
}

/// `GET /api/v1/assets/{id}` (`source` is accepted and ignored).
pub(crate) async fn get_one(
    State(sb): State<Sandbox>,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let id = parse_id("asset id", &id)?;
    let db = sb.lock()?;
    let at = find(&db, id)?;
    Ok(Json(Value::Object(db.assets[at].clone())))
}

/// `PUT /api/v1/assets/{id}`: a full replace of type and form fields.
pub(crate) async fn replace(
    State(sb): State<Sandbox>,
    Path(id): Path<String>,
    body: Body,
) -> ApiResult<Json<Value>> {
    let id = parse_id("asset id", &id)?;
    let mut db = sb.lock()?;
    let at = find(&db, id)?;
    let input = read_input(&db, body)?;
    let old = db.assets[at].clone();
    let now = db.now();
    let mut rec = super::store::pick(&old, &["id", "source", "created_at"]);
    rec.insert("asset_type_id".into(), json!(input.type_id));
    rec.insert("image_id".into(), json!(input.image_id));
    rec.insert("updated_at".into(), json!(now));
    apply_form(&db, &mut rec, input.form);
    audit_assignment(&mut db, &rec, uint(&old, "assigned_to_id"));
    db.assets[at] = rec.clone();
    Ok(Json(Value::Object(rec)))
}

/// `DELETE /api/v1/assets/{id}`: removes the asset for good.
pub(crate) async fn remove(
    State(sb): State<Sandbox>,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let id = parse_id("asset id", &id)?;
    let mut db = sb.lock()?;
    let at = find(&db, id)?;
    db.assets.remove(at);
    Ok(Json(serde_json::json!({ "id": id, "deleted": true })))
}
