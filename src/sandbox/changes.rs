//! Change management: create (JSON or multipart with files), get, partial update,
//! trash and the activity-note list.

use axum::Json;
use axum::extract::multipart::MultipartRejection;
use axum::extract::{Multipart, Path, State};
use axum::http::StatusCode;
use jiff::Timestamp;
use serde_json::{Value, json};

use super::body::{
    Body, id_list, only_keys, opt_enum, opt_id, opt_object, opt_str, opt_time, req_str, str_list,
};
use super::error::{ApiError, ApiResult};
use super::files::{fields_to_object, read_form, store_attachment};
use super::params::{Params, cursor_page, cursor_window, matches_search};
use super::requests::{PRIORITIES, merge_into};
use super::store::{Db, KEY_USER_ID, Obj, Ticket, by_id, find_display, obj, text, uint};
use super::{HeaderWorkspace, Sandbox, pick_workspace};

const CHANGE_TYPES: &[&str] = &["STANDARD", "NORMAL", "EMERGENCY"];
const STATUSES: &[&str] = &[
    "OPEN",
    "PLANNING",
    "AWAITING_APPROVAL",
    "SCHEDULED",
    "IMPLEMENTING",
    "COMPLETED",
    "CANCELLED",
];
const LEVELS: &[&str] = &["LOW", "MEDIUM", "HIGH"];

/// The fields a partial update may set.
const UPDATABLE: &[&str] = &[
    "status",
    "priority",
    "impact",
    "urgency",
    "change_type",
    "assignee",
    "owner",
    "agent_group",
    "subject",
    "description",
    "planned_change_start_date",
    "planned_change_completion_date",
    "custom_fields",
    "tags",
];

/// The enum fields of a change and their allowed values.
const ENUMS: [(&str, &[&str]); 5] = [
    ("change_type", CHANGE_TYPES),
    ("status", STATUSES),
    ("priority", PRIORITIES),
    ("urgency", LEVELS),
    ("impact", LEVELS),
];

fn find(db: &Db, raw: &str) -> ApiResult<usize> {
    let raw = raw.trim();
    find_display(db.changes.iter().map(|t| &t.rec), raw)
        .ok_or_else(|| ApiError::not_found(format!("Change {raw} not found")))
}

fn detail(t: &Ticket) -> Value {
    let mut out = t.rec.clone();
    out.insert("notes_count".into(), json!(t.notes.len()));
    Value::Object(out)
}

fn check_dates(start: Option<&str>, end: Option<&str>) -> ApiResult<()> {
    let parse = |v: Option<&str>| v.and_then(|s| s.parse::<Timestamp>().ok());
    match (parse(start), parse(end)) {
        (Some(s), Some(e)) if e < s => Err(ApiError::bad_request(
            "planned_change_completion_date must not be before planned_change_start_date",
        )),
        _ => Ok(()),
    }
}

/// The change type: given, else the template's, else NORMAL.
fn change_type(db: &Db, o: &Obj) -> ApiResult<(Option<u64>, String)> {
    let template = match opt_id(o, "change_template")? {
        None => None,
        Some(id) => Some(by_id(&db.templates, id).ok_or_else(|| {
            ApiError::bad_request(format!(
                "change_template: template {id} does not exist (templates: 1 Normal, 2 Emergency, 3 Standard laptop refresh)"
            ))
        })?),
    };
    let kind = match opt_enum(o, "change_type", CHANGE_TYPES)? {
        Some(k) => k,
        None => template
            .and_then(|t| text(t, "change_type"))
            .unwrap_or("NORMAL")
            .to_owned(),
    };
    Ok((template.and_then(|t| uint(t, "id")), kind))
}

/// Checks the links of a new change and returns (assets, linked request ids, attachments).
fn links(db: &Db, o: &Obj) -> ApiResult<(Vec<Value>, Vec<String>, Vec<Value>)> {
    let assets = id_list(o, "assets")?
        .into_iter()
        .map(|id| match db.asset_ref(id) {
            Value::Null => Err(ApiError::bad_request(format!(
                "assets: asset {id} does not exist"
            ))),
            found => Ok(found),
        })
        .collect::<ApiResult<Vec<_>>>()?;
    let requests = str_list(o, "linked_requests")?
        .iter()
        .map(|r| {
            let at = super::requests::find(db, r).map_err(|_| {
                ApiError::bad_request(format!("linked_requests: request {r} does not exist"))
            })?;
            Ok(text(&db.requests[at].rec, "display_id")
                .unwrap_or(r)
                .to_owned())
        })
        .collect::<ApiResult<Vec<_>>>()?;
    let attachments = id_list(o, "attachments")?
        .into_iter()
        .map(|id| db.attachment(id))
        .collect::<ApiResult<Vec<_>>>()?;
    Ok((assets, requests, attachments))
}

fn problem_id(db: &Db, raw: Option<&str>) -> ApiResult<Option<String>> {
    let Some(raw) = raw else { return Ok(None) };
    db.problems
        .iter()
        .find_map(|p| text(&p.rec, "display_id").filter(|d| d.eq_ignore_ascii_case(raw.trim())))
        .map(|d| Some(d.to_owned()))
        .ok_or_else(|| {
            ApiError::bad_request(format!("problem_display_id: problem {raw} does not exist"))
        })
}

/// Checks a create body and returns the new change (not yet stored, ids unset).
fn checked_change(db: &Db, o: &Obj, problem: Option<&str>, header: Option<u64>) -> ApiResult<Obj> {
    let subject = req_str(o, "subject")?;
    let ws = pick_workspace(db, &[opt_id(o, "workspace_id")?, header])?;
    let (template, kind) = change_type(db, o)?;
    for key in ["requester", "assignee", "owner"] {
        if let Some(id) = opt_id(o, key)? {
            db.require_user(key, id)?;
        }
    }
    let group = opt_id(o, "agent_group")?;
    if let Some(g) = group {
        db.require_group(g)?;
    }
    let start = opt_time(o, "planned_change_start_date")?;
    let end = opt_time(o, "planned_change_completion_date")?;
    check_dates(start.as_deref(), end.as_deref())?;
    let (assets, linked, attachments) = links(db, o)?;
    let mut rec = obj(json!({
        "subject": subject, "description": opt_str(o, "description")?, "change_type": kind,
        "change_template": template, "workspace_id": ws,
        "requester_id": opt_id(o, "requester")?.unwrap_or(KEY_USER_ID),
        "assignee_id": opt_id(o, "assignee")?, "owner_id": opt_id(o, "owner")?,
        "agent_group_id": group, "planned_change_start_date": start,
        "planned_change_completion_date": end, "tags": str_list(o, "tags")?,
        "assets": assets, "linked_requests": linked, "attachments": attachments,
        "custom_fields": opt_object(o, "custom_fields")?.unwrap_or_default(),
        "template_fields": opt_object(o, "template_fields")?.unwrap_or_default(),
        "problem_display_id": problem_id(db, problem)?, "trashed": false,
    }));
    for (key, allowed) in ENUMS.iter().skip(1) {
        let default = if *key == "status" { "OPEN" } else { "MEDIUM" };
        let value = opt_enum(o, key, allowed)?.unwrap_or_else(|| default.to_owned());
        rec.insert((*key).to_owned(), json!(value));
    }
    Ok(rec)
}

/// Gives a checked change its ids, stores it, and links the requests it names.
fn store(db: &mut Db, mut rec: Obj) -> Value {
    let number = db.next("CHG");
    let display = format!("CHG-{number}");
    let now = db.now();
    rec.insert("id".into(), json!(db.next("change")));
    rec.insert("display_id".into(), json!(display));
    rec.insert("created_at".into(), json!(now));
    rec.insert("updated_at".into(), json!(now));
    db.hydrate(&mut rec);
    let linked: Vec<String> = rec
        .get("linked_requests")
        .and_then(Value::as_array)
        .map(|l| {
            l.iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default();
    for r in linked {
        if let Ok(at) = super::requests::find(db, &r)
            && let Some(Value::Array(list)) = db.requests[at].rec.get_mut("linked_changes")
        {
            list.push(json!(display));
        }
    }
    let ticket = Ticket {
        rec,
        notes: Vec::new(),
    };
    let out = detail(&ticket);
    db.changes.push(ticket);
    out
}

/// `POST /api/v1/change-management/changes` (JSON body; `?problem_display_id=`).
pub(crate) async fn create(
    State(sb): State<Sandbox>,
    HeaderWorkspace(header): HeaderWorkspace,
    params: Params,
    body: Body,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let o = body.into_object()?;
    let mut db = sb.lock()?;
    let rec = checked_change(&db, &o, params.get("problem_display_id"), header)?;
    Ok((StatusCode::CREATED, Json(store(&mut db, rec))))
}

/// `POST /api/v1/change-management/changes/create-with-files`: form fields as in
/// the JSON create, every file part becomes an attachment of the change.
pub(crate) async fn create_with_files(
    State(sb): State<Sandbox>,
    HeaderWorkspace(header): HeaderWorkspace,
    params: Params,
    mp: Result<Multipart, MultipartRejection>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let form = read_form(mp).await?;
    let o = fields_to_object(&form.fields)?;
    let problem = params
        .get("problem_display_id")
        .or_else(|| text(&o, "problem_display_id"));
    let mut db = sb.lock()?;
    let mut rec = checked_change(&db, &o, problem, header)?;
    let uploaded: Vec<Value> = form
        .files
        .iter()
        .map(|f| store_attachment(&mut db, f))
        .collect();
    if let Some(Value::Array(list)) = rec.get_mut("attachments") {
        list.extend(uploaded);
    }
    Ok((StatusCode::CREATED, Json(store(&mut db, rec))))
}

/// `GET /api/v1/change-management/changes/{id}`; a trashed change shows `trashed: true`.
pub(crate) async fn get_one(
    State(sb): State<Sandbox>,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let db = sb.lock()?;
    let at = find(&db, &id)?;
    Ok(Json(detail(&db.changes[at])))
}

fn not_trashed(rec: &Obj) -> ApiResult<()> {
    if rec.get("trashed").and_then(Value::as_bool) == Some(true) {
        let id = text(rec, "display_id").unwrap_or("change");
        return Err(ApiError::conflict(format!(
            "Change {id} is in the trash and cannot be updated"
        )));
    }
    Ok(())
}

/// Checks a partial update and returns the record fields it sets.
fn checked_update(db: &Db, current: &Obj, o: &Obj) -> ApiResult<Obj> {
    only_keys(o, UPDATABLE)?;
    let mut set = Obj::new();
    for (key, allowed) in ENUMS {
        if let Some(v) = opt_enum(o, key, allowed)? {
            set.insert(key.into(), json!(v));
        }
    }
    for key in ["assignee", "owner"] {
        if o.contains_key(key) {
            let id = opt_id(o, key)?;
            if let Some(id) = id {
                db.require_user(key, id)?;
            }
            set.insert(format!("{key}_id"), json!(id));
        }
    }
    if o.contains_key("agent_group") {
        let g = opt_id(o, "agent_group")?;
        if let Some(g) = g {
            db.require_group(g)?;
        }
        set.insert("agent_group_id".into(), json!(g));
    }
    if o.contains_key("subject") {
        set.insert("subject".into(), json!(req_str(o, "subject")?));
    }
    if o.contains_key("description") {
        set.insert("description".into(), json!(opt_str(o, "description")?));
    }
    for key in [
        "planned_change_start_date",
        "planned_change_completion_date",
    ] {
        if o.contains_key(key) {
            set.insert(key.into(), json!(opt_time(o, key)?));
        }
    }
    if o.contains_key("tags") {
        set.insert("tags".into(), json!(str_list(o, "tags")?));
    }
    let date = |k: &str| {
        set.get(k)
            .or_else(|| current.get(k))
            .and_then(Value::as_str)
    };
    check_dates(
        date("planned_change_start_date"),
        date("planned_change_completion_date"),
    )?;
    Ok(set)
}

/// `PATCH /api/v1/change-management/changes/{id}`: merges the given fields.
pub(crate) async fn update(
    State(sb): State<Sandbox>,
    Path(id): Path<String>,
    body: Body,
) -> ApiResult<Json<Value>> {
    let o = body.into_object()?;
    let mut guard = sb.lock()?;
    let db = &mut *guard;
    let at = find(db, &id)?;
    let mut rec = db.changes[at].rec.clone();
    not_trashed(&rec)?;
    let set = checked_update(db, &rec, &o)?;
    rec.extend(set);
    if let Some(custom) = opt_object(&o, "custom_fields")? {
        merge_into(&mut rec, "custom_fields", custom);
    }
    rec.insert("updated_at".into(), json!(db.now()));
    db.hydrate(&mut rec);
    db.changes[at].rec = rec;
    Ok(Json(detail(&db.changes[at])))
}

/// `PUT /api/v1/change-management/changes/{display_id}/trash`: moves the change
/// to the trash (idempotent); it stays readable with `trashed: true`.
pub(crate) async fn trash(
    State(sb): State<Sandbox>,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let mut guard = sb.lock()?;
    let db = &mut *guard;
    let at = find(db, &id)?;
    if db.changes[at].rec.get("trashed").and_then(Value::as_bool) != Some(true) {
        let now = db.now();
        let rec = &mut db.changes[at].rec;
        rec.insert("trashed".into(), json!(true));
        rec.insert("trashed_at".into(), json!(now));
        rec.insert("updated_at".into(), json!(now));
    }
    Ok(Json(detail(&db.changes[at])))
}

/// `GET /api/v1/change-management/changes/{display_id}/activity-notes`: newest first,
/// paged by `page` or `next_page_token`.
pub(crate) async fn notes(
    State(sb): State<Sandbox>,
    Path(id): Path<String>,
    params: Params,
) -> ApiResult<Json<Value>> {
    let w = cursor_window(&params)?;
    let search = params.search_key();
    let db = sb.lock()?;
    let at = find(&db, &id)?;
    let rows: Vec<Value> = db.changes[at]
        .notes
        .iter()
        .rev()
        .filter(|n| matches_search(n, &["description"], search.as_deref()))
        .cloned()
        .map(Value::Object)
        .collect();
    Ok(Json(cursor_page(rows, w)))
}
