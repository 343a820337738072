//! Problems: the assessment form (read and submit) and task updates.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde_json::{Value, json};

use super::body::{Body, check_enum, only_keys, opt_enum, opt_id, opt_object, opt_str, opt_time};
use super::error::{ApiError, ApiResult};
use super::store::{Db, KEY_USER_ID, Obj, find_display, position, text};
use super::{Sandbox, parse_id};

const TASK_STATUSES: &[&str] = &["OPEN", "IN_PROGRESS", "COMPLETE"];
const TASK_FIELDS: &[&str] = &["name", "description", "due_date", "assignee", "status"];

fn find(db: &Db, raw: &str) -> ApiResult<usize> {
    let raw = raw.trim();
    find_display(db.problems.iter().map(|p| &p.rec), raw)
        .ok_or_else(|| ApiError::not_found(format!("Problem {raw} not found")))
}

/// `GET /api/v1/problems/{display_id}/assessment-form`: the form's fields and answers.
pub(crate) async fn form(
    State(sb): State<Sandbox>,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let db = sb.lock()?;
    let at = find(&db, &id)?;
    Ok(Json(Value::Object(db.problems[at].form.clone())))
}

/// Checks one answer against its field definition.
fn check_answer(def: &Obj, key: &str, value: &Value) -> ApiResult<()> {
    let name = format!("form_fields.{key}");
    let options: Vec<&str> = def
        .get("options")
        .and_then(Value::as_array)
        .map(|o| o.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    match (text(def, "type"), value) {
        (_, Value::Null) => Ok(()),
        (Some("select"), Value::String(s)) => check_enum(&name, s, &options).map(|_| ()),
        (Some("multi_select"), Value::Array(items)) => items.iter().try_for_each(|i| {
            let s = i.as_str().unwrap_or_default();
            check_enum(&name, s, &options).map(|_| ())
        }),
        (Some("multi_select"), _) => Err(ApiError::bad_request(format!("{name} must be an array"))),
        (Some("select" | "text"), _) if !value.is_string() => {
            Err(ApiError::bad_request(format!("{name} must be a string")))
        }
        _ => Ok(()),
    }
}

/// Validates submitted answers against the form and merges them in.
fn merge_answers(form: &mut Obj, answers: Obj) -> ApiResult<()> {
    let defs: Vec<Obj> = form
        .get("fields")
        .and_then(Value::as_array)
        .map(|f| f.iter().filter_map(Value::as_object).cloned().collect())
        .unwrap_or_default();
    let def_of = |k: &str| defs.iter().find(|d| text(d, "key") == Some(k));
    for (key, value) in &answers {
        let def = def_of(key).ok_or_else(|| {
            let keys: Vec<&str> = defs.iter().filter_map(|d| text(d, "key")).collect();
            ApiError::bad_request(format!(
                "form_fields: unknown field '{key}'; fields: {}",
                keys.join(", ")
            ))
        })?;
        check_answer(def, key, value)?;
    }
    let mut merged = form
        .get("form_fields")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    merged.extend(answers);
    for def in &defs {
        let key = text(def, "key").unwrap_or_default();
        let required = def.get("required").and_then(Value::as_bool) == Some(true);
        if required && merged.get(key).is_none_or(Value::is_null) {
            return Err(ApiError::required(&format!("form_fields.{key}")));
        }
    }
    form.insert("form_fields".into(), Value::Object(merged));
    Ok(())
}

/// `POST /api/v1/problems/{display_id}/assessment-form`: submits answers (merged
/// into the earlier ones).
pub(crate) async fn submit_form(
    State(sb): State<Sandbox>,
    Path(id): Path<String>,
    body: Body,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let o = body.into_object()?;
    let answers =
        opt_object(&o, "form_fields")?.ok_or_else(|| ApiError::required("form_fields"))?;
    let mut guard = sb.lock()?;
    let db = &mut *guard;
    let at = find(db, &id)?;
    let mut form = db.problems[at].form.clone();
    merge_answers(&mut form, answers)?;
    form.insert("updated_at".into(), json!(db.now()));
    form.insert("submitted_by".into(), db.user_ref(Some(KEY_USER_ID)));
    db.problems[at].form = form.clone();
    Ok((StatusCode::CREATED, Json(Value::Object(form))))
}

/// Checks a task update and returns the fields it sets.
fn checked_task(db: &Db, o: &Obj) -> ApiResult<Obj> {
    only_keys(o, TASK_FIELDS)?;
    let mut set = Obj::new();
    if o.contains_key("name") {
        match opt_str(o, "name")? {
            Some(n) if !n.trim().is_empty() => set.insert("name".into(), json!(n)),
            _ => return Err(ApiError::bad_request("name must not be empty")),
        };
    }
    if o.contains_key("description") {
        set.insert("description".into(), json!(opt_str(o, "description")?));
    }
    if o.contains_key("due_date") {
        set.insert("due_date".into(), json!(opt_time(o, "due_date")?));
    }
    if o.contains_key("assignee") {
        let id = opt_id(o, "assignee")?;
        if let Some(id) = id {
            db.require_user("assignee", id)?;
        }
        set.insert("assignee_id".into(), json!(id));
    }
    if let Some(status) = opt_enum(o, "status", TASK_STATUSES)? {
        set.insert("status".into(), json!(status));
    }
    Ok(set)
}

/// `PUT /api/v1/problems/{display_id}/tasks/{id}`: sets the given task fields
/// (none is required, so fields left out keep their values).
pub(crate) async fn update_task(
    State(sb): State<Sandbox>,
    Path((problem, task)): Path<(String, String)>,
    body: Body,
) -> ApiResult<Json<Value>> {
    let o = body.into_object()?;
    let task = parse_id("task id", &task)?;
    let mut guard = sb.lock()?;
    let db = &mut *guard;
    let at = find(db, &problem)?;
    let display = text(&db.problems[at].rec, "display_id")
        .unwrap_or_default()
        .to_owned();
    let t = position(&db.problems[at].tasks, task).ok_or_else(|| {
        ApiError::not_found(format!("Task {task} not found in problem {display}"))
    })?;
    let set = checked_task(db, &o)?;
    let mut rec = db.problems[at].tasks[t].clone();
    rec.extend(set);
    rec.insert("updated_at".into(), json!(db.now()));
    db.hydrate(&mut rec);
    db.problems[at].tasks[t] = rec.clone();
    Ok(Json(Value::Object(rec)))
}
