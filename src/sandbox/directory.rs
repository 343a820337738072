//! Workspaces, members, users, the service catalog, request forms and requester
//! entities.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde_json::{Value, json};

use super::body::{Body, check_enum, id_list, only_keys, opt_enum, opt_str, req_str, str_list};
use super::error::{ApiError, ApiResult};
use super::params::{Params, matches_search, page, window};
use super::requests::REQUEST_TYPES;
use super::store::{Db, KEY_USER_ID, Member, Obj, by_id, obj, text, uint};
use super::{HeaderWorkspace, Sandbox, parse_id, path_workspace};

const USER_TYPES: &[&str] = &["EMPLOYEE", "EXTERNAL", "AI_EMPLOYEE"];
const CATEGORY_TYPES: &[&str] = &[
    "SERVICE_REQUEST",
    "INCIDENT",
    "ACCESS_MANAGEMENT",
    "UNKNOWN",
];
const FORM_TYPES: &[&str] = &[
    "REQUEST",
    "QUESTION_REQUEST",
    "INCIDENT_REQUEST",
    "SERVICE_REQUEST",
    "PROBLEM_REQUEST",
];

fn values(rows: impl Iterator<Item = Obj>) -> Vec<Value> {
    rows.map(Value::Object).collect()
}

/// `GET /api/v1/workspaces`: `is_member_of=true` keeps those the key's user belongs to.
pub(crate) async fn workspaces(
    State(sb): State<Sandbox>,
    params: Params,
) -> ApiResult<Json<Value>> {
    let w = window(&params, true)?;
    let member_only = params.bool("is_member_of")?.unwrap_or(false);
    let search = params.search_key();
    let db = sb.lock()?;
    let rows = db.workspaces.iter().filter_map(|ws| {
        let id = uint(ws, "id")?;
        let is_member = db.member(id, KEY_USER_ID).is_some();
        let count = db.members.iter().filter(|m| m.workspace_id == id).count();
        let mut row = ws.clone();
        row.insert("is_member".into(), json!(is_member));
        row.insert("member_count".into(), json!(count));
        let keep = (!member_only || is_member)
            && matches_search(&row, &["name", "description"], search.as_deref());
        keep.then_some(row)
    });
    Ok(Json(page(values(rows), w)))
}

/// `GET /api/v1/workspaces/{workspace_id}/members`.
pub(crate) async fn members(
    State(sb): State<Sandbox>,
    Path(ws): Path<String>,
    params: Params,
) -> ApiResult<Json<Value>> {
    let w = window(&params, true)?;
    let search = params.search_key();
    let db = sb.lock()?;
    let ws = path_workspace(&db, &ws)?;
    let rows: Vec<Value> = db
        .members
        .iter()
        .filter(|m| m.workspace_id == ws)
        .map(|m| db.member_view(m))
        .filter(|v| {
            v.as_object()
                .is_some_and(|o| matches_search(o, &["name", "email"], search.as_deref()))
        })
        .collect();
    Ok(Json(page(rows, w)))
}

fn role_event(db: &Db, m: &Member, before: &Member) -> Obj {
    let name = db
        .user(m.user_id)
        .and_then(|u| text(u, "name"))
        .unwrap_or("user");
    obj(json!({
        "event_type": "ROLE_CHANGED", "entity_type": "USER", "entity_id": m.user_id,
        "entity_name": name, "ip_address": null,
        "description": format!("{} changed {name}'s role in workspace {}", db.actor_name(), m.workspace_id),
        "changes": {
            "workspace_id": m.workspace_id,
            "type": {"old": before.kind, "new": m.kind},
            "org_roles": {"old": before.org_roles, "new": m.org_roles},
        },
    }))
}

/// `PATCH /api/v1/workspaces/{workspace_id}/members/{id}`: sets `type` and/or
/// `org_roles`; the change is written to the audit log.
pub(crate) async fn update_member(
    State(sb): State<Sandbox>,
    Path((ws, user)): Path<(String, String)>,
    body: Body,
) -> ApiResult<Json<Value>> {
    let o = body.into_object()?;
    let user = parse_id("member id", &user)?;
    let mut guard = sb.lock()?;
    let db = &mut *guard;
    let ws = path_workspace(db, &ws)?;
    only_keys(&o, &["type", "org_roles"])?;
    let kind = opt_enum(&o, "type", USER_TYPES)?;
    let roles = o
        .contains_key("org_roles")
        .then(|| str_list(&o, "org_roles"))
        .transpose()?;
    let at = db
        .members
        .iter()
        .position(|m| m.workspace_id == ws && m.user_id == user)
        .ok_or_else(|| {
            ApiError::not_found(format!("User {user} is not a member of workspace {ws}"))
        })?;
    let before = db.members[at].clone();
    if let Some(kind) = kind {
        db.members[at].kind = kind;
    }
    if let Some(roles) = roles {
        db.members[at].org_roles = roles;
    }
    let after = db.members[at].clone();
    let event = role_event(db, &after, &before);
    db.audit_event(event);
    Ok(Json(db.member_view(&after)))
}

fn user_view(db: &Db, u: &Obj) -> Value {
    let id = uint(u, "id");
    let workspaces: Vec<u64> = db
        .members
        .iter()
        .filter(|m| Some(m.user_id) == id)
        .map(|m| m.workspace_id)
        .collect();
    let mut out = u.clone();
    out.insert("workspaces".into(), json!(workspaces));
    Value::Object(out)
}

fn equals(rec: &Obj, key: &str, wanted: Option<&str>) -> bool {
    wanted.is_none_or(|w| text(rec, key).is_some_and(|v| v.eq_ignore_ascii_case(w)))
}

/// `GET /api/v1/users/list`: `search_key` (name, email), `role`, `user_status`, `types[]`.
pub(crate) async fn users(State(sb): State<Sandbox>, params: Params) -> ApiResult<Json<Value>> {
    let w = window(&params, true)?;
    let search = params.search_key();
    let types = params
        .list("types")
        .iter()
        .map(|t| check_enum("types", t, USER_TYPES))
        .collect::<ApiResult<Vec<_>>>()?;
    let db = sb.lock()?;
    let rows: Vec<Value> = db
        .users
        .iter()
        .filter(|u| matches_search(u, &["name", "email"], search.as_deref()))
        .filter(|u| equals(u, "role", params.get("role")))
        .filter(|u| equals(u, "user_status", params.get("user_status")))
        .filter(|u| types.is_empty() || types.iter().any(|t| text(u, "type") == Some(t)))
        .map(|u| user_view(&db, u))
        .collect();
    Ok(Json(page(rows, w)))
}

fn checked_email(db: &Db, o: &Obj) -> ApiResult<String> {
    let email = req_str(o, "email")?.trim().to_lowercase();
    let valid = email
        .split_once('@')
        .is_some_and(|(local, domain)| !local.is_empty() && domain.contains('.'));
    if !valid {
        return Err(ApiError::bad_request(format!(
            "email '{email}' is not a valid email address"
        )));
    }
    if db
        .users
        .iter()
        .any(|u| text(u, "email") == Some(email.as_str()))
    {
        return Err(ApiError::conflict(format!(
            "A user with email {email} already exists"
        )));
    }
    Ok(email)
}

fn display_name(email: &str, first: Option<&str>, last: Option<&str>) -> String {
    let joined = [first, last]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join(" ");
    if joined.trim().is_empty() {
        email.split('@').next().unwrap_or(email).to_owned()
    } else {
        joined
    }
}

/// `POST /api/v1/users` (`?send_email=true` marks the user invited). Listed
/// workspaces get the user as a requester.
pub(crate) async fn create_user(
    State(sb): State<Sandbox>,
    params: Params,
    body: Body,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let o = body.into_object()?;
    let invite = params.bool("send_email")?.unwrap_or(false);
    let mut guard = sb.lock()?;
    let db = &mut *guard;
    let email = checked_email(db, &o)?;
    let workspaces = id_list(&o, "workspaces")?;
    for ws in &workspaces {
        db.workspace(*ws).map_err(|_| {
            ApiError::bad_request(format!("workspaces: workspace {ws} does not exist"))
        })?;
    }
    let (first, last) = (opt_str(&o, "first_name")?, opt_str(&o, "last_name")?);
    let user = obj(json!({
        "email": email, "first_name": first, "last_name": last,
        "name": display_name(&email, first.as_deref(), last.as_deref()),
        "title": opt_str(&o, "title")?, "department": opt_str(&o, "department")?,
        "employee_id": opt_str(&o, "employee_id")?, "phone_number": opt_str(&o, "phone_number")?,
        "type": opt_enum(&o, "type", USER_TYPES)?.unwrap_or_else(|| "EMPLOYEE".into()),
        "role": "END_USER", "user_status": if invite { "INVITED" } else { "ACTIVE" },
    }));
    Ok((StatusCode::CREATED, Json(store_user(db, user, &workspaces))))
}

fn store_user(db: &mut Db, mut user: Obj, workspaces: &[u64]) -> Value {
    let id = db.next("user");
    let now = db.now();
    user.insert("id".into(), json!(id));
    user.insert("created_at".into(), json!(now));
    for ws in workspaces {
        db.members.push(Member {
            workspace_id: *ws,
            user_id: id,
            kind: "EMPLOYEE".into(),
            org_roles: Vec::new(),
            joined_at: now.clone(),
        });
    }
    let name = user.get("name").cloned().unwrap_or(Value::Null);
    let description = format!(
        "{} created user {}",
        db.actor_name(),
        name.as_str().unwrap_or("")
    );
    db.users.push(user.clone());
    db.audit_event(obj(json!({
        "event_type": "USER_CREATED", "entity_type": "USER", "entity_id": id,
        "entity_name": name, "description": description, "changes": {}, "ip_address": null,
    })));
    user_view(db, &user)
}

/// `GET /api/v1/workspaces/{workspace_id}/catalogue/categories`.
pub(crate) async fn categories(
    State(sb): State<Sandbox>,
    Path(ws): Path<String>,
    params: Params,
) -> ApiResult<Json<Value>> {
    let w = window(&params, true)?;
    let kind = params
        .get("category_type")
        .map(|k| check_enum("category_type", k, CATEGORY_TYPES))
        .transpose()?;
    let search = params.search_key();
    let db = sb.lock()?;
    let ws = path_workspace(&db, &ws)?;
    let rows = db
        .categories
        .iter()
        .filter(|c| uint(c, "workspace_id") == Some(ws))
        .filter(|c| {
            kind.as_deref()
                .is_none_or(|k| text(c, "category_type") == Some(k))
        })
        .filter(|c| matches_search(c, &["name", "description"], search.as_deref()))
        .map(|c| {
            let id = uint(c, "id");
            let count = db
                .items
                .iter()
                .filter(|i| uint(i, "category_id") == id)
                .count();
            let mut row = c.clone();
            row.insert("item_count".into(), json!(count));
            row
        });
    Ok(Json(page(values(rows), w)))
}

/// `GET /api/v1/workspaces/{workspace_id}/catalogue/items`.
pub(crate) async fn items(
    State(sb): State<Sandbox>,
    Path(ws): Path<String>,
    params: Params,
) -> ApiResult<Json<Value>> {
    let w = window(&params, true)?;
    let category = params.u64("category_id")?;
    let published = params.bool("is_published")?;
    let search = params.search_key();
    let db = sb.lock()?;
    let ws = path_workspace(&db, &ws)?;
    let category_of = |id: Option<u64>| {
        id.and_then(|id| by_id(&db.categories, id))
            .filter(|c| uint(c, "workspace_id") == Some(ws))
    };
    if let Some(c) = category
        && category_of(Some(c)).is_none()
    {
        return Err(ApiError::not_found(format!(
            "Category {c} not found in workspace {ws}"
        )));
    }
    let rows = db
        .items
        .iter()
        .filter(|i| uint(i, "workspace_id") == Some(ws))
        .filter(|i| category.is_none() || uint(i, "category_id") == category)
        .filter(|i| published.is_none_or(|p| i.get("is_published") == Some(&json!(p))))
        .filter(|i| matches_search(i, &["name", "description"], search.as_deref()))
        .map(|i| {
            let mut row = i.clone();
            let cat = category_of(uint(i, "category_id"));
            let cat = cat.map(|c| super::store::pick(c, &["id", "name", "category_type"]));
            row.insert("category".into(), json!(cat));
            row
        });
    Ok(Json(page(values(rows), w)))
}

/// Checks service item ids and returns them.
fn checked_items(db: &Db, params: &Params) -> ApiResult<Vec<u64>> {
    let mut ids = params.u64_list("service_item_ids")?;
    ids.extend(params.u64_list("catalog_item_ids")?);
    for id in &ids {
        if by_id(&db.items, *id).is_none() {
            return Err(ApiError::bad_request(format!(
                "service item {id} does not exist"
            )));
        }
    }
    Ok(ids)
}

fn form_has_item(form: &Obj, ids: &[u64]) -> bool {
    form.get("service_item_ids")
        .and_then(Value::as_array)
        .is_some_and(|list| {
            list.iter()
                .any(|v| v.as_u64().is_some_and(|v| ids.contains(&v)))
        })
}

/// `GET /api/v1/forms/requests`: request forms, narrowed by workspace, form type,
/// request type, a request's own form, or service items. `view` is accepted.
pub(crate) async fn forms(
    State(sb): State<Sandbox>,
    HeaderWorkspace(header): HeaderWorkspace,
    params: Params,
) -> ApiResult<Json<Value>> {
    let w = window(&params, false)?;
    let form_type = params
        .get("request_form_type")
        .map(|t| check_enum("request_form_type", t, FORM_TYPES))
        .transpose()?;
    let mut request_type = params
        .get("request_type")
        .map(|t| check_enum("request_type", t, REQUEST_TYPES))
        .transpose()?;
    let db = sb.lock()?;
    let mut ws = params.u64("workspace_id")?.or(header);
    let mut items = checked_items(&db, &params)?;
    if let Some(r) = params.get("request_id") {
        let t = &db.requests[super::requests::find(&db, r)?].rec;
        ws = uint(t, "workspace_id");
        request_type = text(t, "type").map(str::to_owned);
        items.extend(uint(t, "service_item_id"));
    }
    if let Some(ws) = ws {
        db.workspace(ws)?;
    }
    let rows = db
        .forms
        .iter()
        .filter(|f| ws.is_none() || uint(f, "workspace_id") == ws)
        .filter(|f| {
            form_type
                .as_deref()
                .is_none_or(|t| text(f, "request_form_type") == Some(t))
        })
        .filter(|f| {
            request_type
                .as_deref()
                .is_none_or(|t| text(f, "request_type") == Some(t))
        })
        .filter(|f| items.is_empty() || form_has_item(f, &items))
        .cloned();
    Ok(Json(page(values(rows), w)))
}

/// The workspace a requester-entities call is about, from whichever of its
/// three accepted inputs it has.
fn entities_workspace(db: &Db, params: &Params, header: Option<u64>) -> ApiResult<u64> {
    if let Some(r) = params.get("request_id") {
        let at = super::requests::find(db, r)?;
        return uint(&db.requests[at].rec, "workspace_id")
            .ok_or_else(|| ApiError::internal("request has no workspace"));
    }
    if let Some(item) = checked_items(db, params)?.first() {
        return by_id(&db.items, *item)
            .and_then(|i| uint(i, "workspace_id"))
            .ok_or_else(|| ApiError::internal("service item has no workspace"));
    }
    let ws = params.u64("workspace_id")?.or(header);
    match (ws, params.get("request_form_type")) {
        (Some(ws), Some(form_type)) => {
            check_enum("request_form_type", form_type, FORM_TYPES)?;
            db.workspace(ws)?;
            Ok(ws)
        }
        _ => Err(ApiError::bad_request(
            "one of request_id, service_item_ids, or workspace_id together with request_form_type is required",
        )),
    }
}

/// `GET /api/v1/forms/{entity_type}/requester/entities`: who can be the requester
/// (the workspace's members).
pub(crate) async fn requester_entities(
    State(sb): State<Sandbox>,
    HeaderWorkspace(header): HeaderWorkspace,
    Path(entity_type): Path<String>,
    params: Params,
) -> ApiResult<Json<Value>> {
    check_enum("entity_type", &entity_type, REQUEST_TYPES)?;
    let w = window(&params, true)?;
    let search = params.search_key();
    let db = sb.lock()?;
    let ws = entities_workspace(&db, &params, header)?;
    let rows = db
        .members
        .iter()
        .filter(|m| m.workspace_id == ws)
        .filter_map(|m| db.user(m.user_id))
        .filter(|u| matches_search(u, &["name", "email"], search.as_deref()))
        .map(|u| super::store::pick(u, &["id", "name", "email", "department", "type"]));
    Ok(Json(page(values(rows), w)))
}
