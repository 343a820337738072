//! Requests: create (both create endpoints), get, partial update, delete,
//! activity notes, the workspace request list and count (with views and trash),
//! request views and priority options.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde_json::{Value, json};

use super::body::{
    Body, check_enum, id_list, only_keys, opt_bool, opt_enum, opt_id, opt_object, opt_str, req_str,
    str_list,
};
use super::error::{ApiError, ApiResult};
use super::filter::{Attributes, matches_all, parse_filters};
use super::params::{Params, SortKey, matches_search, page, sort_keys, sort_records, window};
use super::store::{Db, KEY_USER_ID, Obj, Ticket, by_id, find_display, obj, pick, text, uint};
use super::{HeaderWorkspace, Sandbox, path_workspace, pick_workspace};

pub(crate) const REQUEST_TYPES: &[&str] = &[
    "REQUEST",
    "INCIDENT",
    "SERVICE_REQUEST",
    "PROBLEM",
    "CHANGE",
    "MAJOR_INCIDENT",
];
const STATUSES: &[&str] = &["OPEN", "IN_PROGRESS", "PENDING", "RESOLVED", "CLOSED"];
pub(crate) const PRIORITIES: &[&str] = &["LOW", "MEDIUM", "HIGH", "URGENT"];
const SOURCES: &[&str] = &[
    "EMAIL",
    "SLACK",
    "TEAMS",
    "PORTAL",
    "WORKFLOW",
    "JOURNEY",
    "API",
    "UNIVERSAL_AGENT",
];

/// What the request list can be filtered and sorted on.
const ATTRIBUTES: Attributes = Attributes {
    fields: &[
        "id",
        "display_id",
        "subject",
        "description",
        "type",
        "status",
        "priority",
        "source",
        "workspace_id",
        "requester_id",
        "assignee_id",
        "agent_group_id",
        "service_item_id",
        "parent_request_id",
        "problem_display_id",
        "tags",
        "external_id",
        "created_at",
        "updated_at",
        "resolved_at",
    ],
    aliases: &[
        ("request_type", "type"),
        ("request_source", "source"),
        ("requester", "requester_id"),
        ("assignee", "assignee_id"),
        ("agent_group", "agent_group_id"),
        ("group", "agent_group_id"),
        ("service_item", "service_item_id"),
    ],
};

/// The fields a partial update may set.
const UPDATABLE: &[&str] = &[
    "status",
    "priority",
    "assignee",
    "agent_group",
    "subject",
    "description",
    "custom_fields",
    "tags",
];

/// Finds a request by display id (`ITREQ-3`) or numeric id.
pub(crate) fn find(db: &Db, raw: &str) -> ApiResult<usize> {
    let raw = raw.trim();
    find_display(db.requests.iter().map(|t| &t.rec), raw).ok_or_else(|| not_found(raw))
}

fn not_found(raw: &str) -> ApiError {
    let upper = raw.to_ascii_uppercase();
    let hint = if upper.starts_with("CHG-") {
        format!("; {raw} is a change: read it at /api/v1/change-management/changes/{raw}")
    } else {
        String::new()
    };
    ApiError::not_found(format!("Request {raw} not found{hint}"))
}

/// A request with its activity notes, as a single read returns it.
fn detail(t: &Ticket) -> Value {
    let mut out = t.rec.clone();
    out.insert("notes_count".into(), json!(t.notes.len()));
    out.insert("activity_notes".into(), json!(t.notes));
    Value::Object(out)
}

fn check_group(db: &Db, group: u64, workspace: u64) -> ApiResult<()> {
    db.require_group(group)?;
    let owner = by_id(&db.groups, group).and_then(|g| uint(g, "workspace_id"));
    match owner {
        Some(ws) if ws != workspace => Err(ApiError::bad_request(format!(
            "agent_group: group {group} belongs to workspace {ws}, not {workspace}"
        ))),
        _ => Ok(()),
    }
}

/// Reads the people fields shared by create and update, checking each id.
fn check_people(db: &Db, o: &Obj) -> ApiResult<()> {
    for key in ["requester", "assignee"] {
        if let Some(id) = opt_id(o, key)? {
            db.require_user(key, id)?;
        }
    }
    Ok(())
}

fn parent_id(db: &Db, o: &Obj) -> ApiResult<Option<String>> {
    let raw = match o.get("parent_request_id") {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        Some(_) => {
            return Err(ApiError::bad_request(
                "parent_request_id must be a request id",
            ));
        }
    };
    let at = find(db, &raw).map_err(|_| {
        ApiError::bad_request(format!("parent_request_id: request {raw} does not exist"))
    })?;
    Ok(text(&db.requests[at].rec, "display_id").map(str::to_owned))
}

/// Builds a new request record from a create body.
fn new_request(db: &mut Db, o: &Obj, header: Option<u64>) -> ApiResult<Obj> {
    let subject = req_str(o, "subject")?;
    let ws = pick_workspace(db, &[opt_id(o, "workspace_id")?, header])?;
    check_people(db, o)?;
    let group = opt_id(o, "agent_group")?;
    if let Some(g) = group {
        check_group(db, g, ws)?;
    }
    let attachments = id_list(o, "attachments")?
        .into_iter()
        .map(|id| db.attachment(id))
        .collect::<ApiResult<Vec<_>>>()?;
    let status = opt_enum(o, "status", STATUSES)?.unwrap_or_else(|| "OPEN".into());
    let resolved = matches!(status.as_str(), "RESOLVED" | "CLOSED");
    let mut rec = obj(json!({
        "subject": subject,
        "description": opt_str(o, "description")?,
        "type": opt_enum(o, "request_type", REQUEST_TYPES)?.unwrap_or_else(|| "REQUEST".into()),
        "status": status,
        "priority": opt_enum(o, "priority", PRIORITIES)?.unwrap_or_else(|| "MEDIUM".into()),
        "source": opt_enum(o, "request_source", SOURCES)?.unwrap_or_else(|| "API".into()),
        "workspace_id": ws,
        "requester_id": opt_id(o, "requester")?.unwrap_or(KEY_USER_ID),
        "assignee_id": opt_id(o, "assignee")?,
        "agent_group_id": group,
        "service_item_id": null,
        "parent_request_id": parent_id(db, o)?,
        "tags": str_list(o, "tags")?,
        "cc_emails": str_list(o, "cc_emails")?,
        "custom_fields": opt_object(o, "custom_fields")?.unwrap_or_default(),
        "external_id": opt_str(o, "external_id")?,
        "attachments": attachments,
        "linked_changes": [],
        "problem_display_id": null,
        "trashed": false,
    }));
    let prefix = text(db.workspace(ws)?, "request_prefix")
        .unwrap_or("REQ")
        .to_owned();
    let number = db.next(&prefix);
    let now = db.now();
    rec.insert("id".into(), json!(db.next("request")));
    rec.insert("display_id".into(), json!(format!("{prefix}-{number}")));
    rec.insert("created_at".into(), json!(now));
    rec.insert("updated_at".into(), json!(now));
    rec.insert(
        "resolved_at".into(),
        if resolved { json!(now) } else { Value::Null },
    );
    db.hydrate(&mut rec);
    Ok(rec)
}

/// `POST /api/v1/requests` and `POST /api/v1/requests/create`.
pub(crate) async fn create(
    State(sb): State<Sandbox>,
    HeaderWorkspace(header): HeaderWorkspace,
    body: Body,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let o = body.into_object()?;
    let mut db = sb.lock()?;
    let rec = new_request(&mut db, &o, header)?;
    let ticket = Ticket {
        rec,
        notes: Vec::new(),
    };
    let out = detail(&ticket);
    db.requests.push(ticket);
    Ok((StatusCode::CREATED, Json(out)))
}

/// `GET /api/v1/requests/{id}`: by display id or numeric id.
pub(crate) async fn get_one(
    State(sb): State<Sandbox>,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let db = sb.lock()?;
    let at = find(&db, &id)?;
    Ok(Json(detail(&db.requests[at])))
}

fn apply_update(db: &mut Db, at: usize, o: &Obj) -> ApiResult<()> {
    only_keys(o, UPDATABLE)?;
    check_people(db, o)?;
    let ws = uint(&db.requests[at].rec, "workspace_id").unwrap_or(0);
    if let Some(g) = opt_id(o, "agent_group")? {
        check_group(db, g, ws)?;
    }
    let mut changes = Obj::new();
    for (key, allowed) in [("status", STATUSES), ("priority", PRIORITIES)] {
        if let Some(v) = opt_enum(o, key, allowed)? {
            changes.insert(key.into(), json!(v));
        }
    }
    for (key, field) in [
        ("assignee", "assignee_id"),
        ("agent_group", "agent_group_id"),
    ] {
        if o.contains_key(key) {
            changes.insert(field.into(), json!(opt_id(o, key)?));
        }
    }
    if o.contains_key("subject") {
        changes.insert("subject".into(), json!(req_str(o, "subject")?));
    }
    if o.contains_key("description") {
        changes.insert("description".into(), json!(opt_str(o, "description")?));
    }
    if o.contains_key("tags") {
        changes.insert("tags".into(), json!(str_list(o, "tags")?));
    }
    let custom = opt_object(o, "custom_fields")?;
    let now = db.now();
    let rec = &mut db.requests[at].rec;
    if let Some(status) = changes.get("status").and_then(Value::as_str) {
        let done = matches!(status, "RESOLVED" | "CLOSED");
        rec.insert(
            "resolved_at".into(),
            if done { json!(now) } else { Value::Null },
        );
    }
    rec.extend(changes);
    if let Some(custom) = custom {
        merge_into(rec, "custom_fields", custom);
    }
    rec.insert("updated_at".into(), json!(now));
    Ok(())
}

/// Merges `extra` into the object field `key` of `rec`.
pub(crate) fn merge_into(rec: &mut Obj, key: &str, extra: Obj) {
    let mut merged = rec
        .get(key)
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    merged.extend(extra);
    rec.insert(key.into(), Value::Object(merged));
}

/// `PATCH /api/v1/requests/{id}`: merges the given fields.
pub(crate) async fn update(
    State(sb): State<Sandbox>,
    Path(id): Path<String>,
    body: Body,
) -> ApiResult<Json<Value>> {
    let o = body.into_object()?;
    let mut guard = sb.lock()?;
    let db = &mut *guard;
    let at = find(db, &id)?;
    apply_update(db, at, &o)?;
    let mut rec = db.requests[at].rec.clone();
    db.hydrate(&mut rec);
    db.requests[at].rec = rec;
    Ok(Json(detail(&db.requests[at])))
}

/// `DELETE /api/v1/requests/{id}`: removes the request; later reads give 404.
pub(crate) async fn remove(
    State(sb): State<Sandbox>,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let mut db = sb.lock()?;
    let at = find(&db, &id)?;
    let gone = db.requests.remove(at);
    let display = gone.rec.get("display_id").cloned().unwrap_or(Value::Null);
    Ok(Json(json!({"display_id": display, "deleted": true})))
}

/// `POST /api/v1/requests/{display_id}/activity-notes`.
pub(crate) async fn add_note(
    State(sb): State<Sandbox>,
    Path(id): Path<String>,
    body: Body,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let o = body.into_object()?;
    let mut guard = sb.lock()?;
    let db = &mut *guard;
    let at = find(db, &id)?;
    let description = req_str(&o, "description")?;
    let mentions = id_list(&o, "mentions")?
        .into_iter()
        .map(|u| {
            db.require_user("mentions", u)
                .map(|()| db.user_ref(Some(u)))
        })
        .collect::<ApiResult<Vec<_>>>()?;
    let attachments = id_list(&o, "attachments")?
        .into_iter()
        .map(|a| db.attachment(a))
        .collect::<ApiResult<Vec<_>>>()?;
    let is_private = opt_bool(&o, "is_private")?.unwrap_or(false);
    let source = opt_enum(&o, "source", SOURCES)?.unwrap_or_else(|| "API".into());
    let note = obj(json!({
        "id": db.next("note"),
        "description": description,
        "is_private": is_private,
        "source": source,
        "author": db.user_ref(Some(KEY_USER_ID)),
        "mentions": mentions,
        "attachments": attachments,
        "created_at": db.now(),
    }));
    let ticket = &mut db.requests[at];
    ticket.rec.insert(
        "updated_at".into(),
        note.get("created_at").cloned().unwrap_or(Value::Null),
    );
    ticket.notes.push(note.clone());
    Ok((StatusCode::CREATED, Json(Value::Object(note))))
}

/// The keys a change or problem shows as a row of the request list.
const ROW_KEYS: &[&str] = &[
    "id",
    "display_id",
    "subject",
    "description",
    "status",
    "priority",
    "workspace_id",
    "requester_id",
    "requester",
    "assignee_id",
    "assignee",
    "agent_group_id",
    "agent_group",
    "tags",
    "problem_display_id",
    "trashed",
    "created_at",
    "updated_at",
];

/// Every row of a workspace's unified list: requests, changes and problems.
fn all_rows(db: &Db, ws: u64) -> Vec<Obj> {
    let in_ws = |r: &&Obj| uint(r, "workspace_id") == Some(ws);
    let requests = db.requests.iter().map(|t| {
        let mut row = t.rec.clone();
        row.insert("notes_count".into(), json!(t.notes.len()));
        row
    });
    let typed = |rec: &Obj, kind: &str| {
        let mut row = pick(rec, ROW_KEYS);
        row.insert("type".into(), json!(kind));
        row.entry("trashed").or_insert(json!(false));
        row
    };
    let changes = db.changes.iter().map(|t| typed(&t.rec, "CHANGE"));
    let problems = db.problems.iter().map(|p| typed(&p.rec, "PROBLEM"));
    requests
        .chain(changes)
        .chain(problems)
        .filter(|r| in_ws(&r))
        .collect()
}

/// How `filter_name` picks rows: the trash, or the live rows narrowed by a view.
fn view_filters(db: &Db, name: &str) -> ApiResult<(bool, Value)> {
    if name.eq_ignore_ascii_case("trash") {
        return Ok((true, Value::Null));
    }
    let view = db
        .views
        .iter()
        .find(|v| text(v, "filter_name").is_some_and(|f| f.eq_ignore_ascii_case(name)));
    match view {
        Some(v) => Ok((false, v.get("filters").cloned().unwrap_or(Value::Null))),
        None => {
            let known: Vec<&str> = db
                .views
                .iter()
                .filter_map(|v| text(v, "filter_name"))
                .collect();
            Err(ApiError::bad_request(format!(
                "unknown filter_name '{name}'; known: {}",
                known.join(", ")
            )))
        }
    }
}

/// The rows a list or count call selects, sorted.
fn select(db: &Db, ws: u64, params: &Params, body: &Value) -> ApiResult<Vec<Obj>> {
    let (trash, view) = view_filters(db, params.get("filter_name").unwrap_or("all"))?;
    let mut filters = parse_filters(&view, &ATTRIBUTES)?;
    filters.extend(parse_filters(body, &ATTRIBUTES)?);
    let types = params
        .list("request_type_filter")
        .iter()
        .map(|t| check_enum("request_type_filter", t, REQUEST_TYPES))
        .collect::<ApiResult<Vec<_>>>()?;
    let problems_only = params.bool("is_problem")?.unwrap_or(false);
    let search = params.search_key();
    let keys = sort_keys(
        params,
        SortKey {
            field: "created_at".into(),
            descending: true,
        },
    )?;
    let mut rows: Vec<Obj> = all_rows(db, ws)
        .into_iter()
        .filter(|r| r.get("trashed").and_then(Value::as_bool).unwrap_or(false) == trash)
        .filter(|r| types.is_empty() || types.iter().any(|t| text(r, "type") == Some(t)))
        .filter(|r| !problems_only || text(r, "type") == Some("PROBLEM"))
        .filter(|r| matches_all(r, &filters, db.clock_time()))
        .filter(|r| matches_search(r, &["subject", "display_id"], search.as_deref()))
        .collect();
    sort_records(&mut rows, &keys);
    Ok(rows)
}

/// `POST /api/v1/workspaces/{workspace_id}/requests/list` (also the trash list).
pub(crate) async fn list(
    State(sb): State<Sandbox>,
    Path(ws): Path<String>,
    params: Params,
    body: Body,
) -> ApiResult<Json<Value>> {
    let w = window(&params, true)?;
    let db = sb.lock()?;
    let ws = path_workspace(&db, &ws)?;
    let rows = select(&db, ws, &params, &body.0)?;
    Ok(Json(page(rows.into_iter().map(Value::Object).collect(), w)))
}

/// `POST /api/v1/workspaces/{workspace_id}/requests/count`.
pub(crate) async fn count(
    State(sb): State<Sandbox>,
    Path(ws): Path<String>,
    params: Params,
    body: Body,
) -> ApiResult<Json<Value>> {
    let db = sb.lock()?;
    let ws = path_workspace(&db, &ws)?;
    let rows = select(&db, ws, &params, &body.0)?;
    let filter_name = params.get("filter_name").unwrap_or("all");
    Ok(Json(
        json!({"count": rows.len(), "filter_name": filter_name}),
    ))
}

/// `GET /api/v1/views/REQUEST`: the saved request views; each `filter_name`
/// works in the request list.
pub(crate) async fn views(
    State(sb): State<Sandbox>,
    HeaderWorkspace(header): HeaderWorkspace,
    params: Params,
) -> ApiResult<Json<Value>> {
    let w = window(&params, false)?;
    let db = sb.lock()?;
    let ws = pick_workspace(&db, &[header])?;
    let rows = db
        .views
        .iter()
        .map(|v| {
            let mut v = v.clone();
            v.insert("workspace_id".into(), json!(ws));
            Value::Object(v)
        })
        .collect();
    Ok(Json(page(rows, w)))
}

/// `GET /api/v1/workspaces/{workspace_id}/requests/priority-options`.
pub(crate) async fn priorities(
    State(sb): State<Sandbox>,
    Path(ws): Path<String>,
    params: Params,
) -> ApiResult<Json<Value>> {
    let w = window(&params, false)?;
    let db = sb.lock()?;
    path_workspace(&db, &ws)?;
    let rows = db.priorities.iter().cloned().map(Value::Object).collect();
    Ok(Json(page(rows, w)))
}
