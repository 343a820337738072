//! The audit log: seeded events plus those the sandbox's own writes record
//! (asset assignments, role changes, new users), newest first.

use axum::Json;
use axum::extract::State;
use serde_json::Value;

use super::Sandbox;
use super::error::ApiResult;
use super::params::{Params, SortKey, cursor_page, cursor_window, matches_search, sort_records};
use super::store::Obj;

/// `GET /api/v1/audit-logs`: `page` or `next_page_token`, `per_page`, `search_key`
/// (matched on description, event type and entity name).
pub(crate) async fn list(State(sb): State<Sandbox>, params: Params) -> ApiResult<Json<Value>> {
    let w = cursor_window(&params)?;
    let search = params.search_key();
    let db = sb.lock()?;
    let mut rows: Vec<Obj> = db
        .audit
        .iter()
        .filter(|e| {
            matches_search(
                e,
                &["description", "event_type", "entity_name"],
                search.as_deref(),
            )
        })
        .cloned()
        .collect();
    let newest_first = [
        SortKey {
            field: "event_at".into(),
            descending: true,
        },
        SortKey {
            field: "id".into(),
            descending: true,
        },
    ];
    sort_records(&mut rows, &newest_first);
    Ok(Json(cursor_page(
        rows.into_iter().map(Value::Object).collect(),
        w,
    )))
}
