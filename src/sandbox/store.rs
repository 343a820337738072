//! The in-memory tenant: records kept as JSON objects (the wire shape), plus the
//! few typed parts (memberships, notes, tasks) the handlers need to reach quickly.

use std::collections::BTreeMap;

use jiff::Timestamp;
use serde_json::{Value, json};

use super::error::{ApiError, ApiResult};

/// One JSON object record.
pub(crate) type Obj = serde_json::Map<String, Value>;

/// The user the sandbox's API key belongs to (an IT admin); it authors notes and
/// is the default requester.
pub(crate) const KEY_USER_ID: u64 = 101;
/// The workspace the sandbox's API key is scoped to, used when a call names none.
pub(crate) const KEY_WORKSPACE_ID: u64 = 1;

/// Time of the first write after seeding; every write moves the clock one minute.
const CLOCK_START: i64 = 1_773_478_800; // 2026-03-14T09:00:00Z

/// A request or change with its activity notes.
#[derive(Debug, Clone)]
pub(crate) struct Ticket {
    pub(crate) rec: Obj,
    pub(crate) notes: Vec<Obj>,
}

/// A user's membership in a workspace.
#[derive(Debug, Clone)]
pub(crate) struct Member {
    pub(crate) workspace_id: u64,
    pub(crate) user_id: u64,
    pub(crate) kind: String,
    pub(crate) org_roles: Vec<String>,
    pub(crate) joined_at: String,
}

/// A problem record with its tasks and its assessment form.
#[derive(Debug, Clone)]
pub struct Problem {
    pub(crate) rec: Obj,
    pub(crate) tasks: Vec<Obj>,
    pub(crate) form: Obj,
}

/// The whole simulated tenant.
#[derive(Debug, Clone, Default)]
pub(crate) struct Db {
    pub(crate) clock: i64,
    pub(crate) counters: BTreeMap<String, u64>,
    pub(crate) workspaces: Vec<Obj>,
    pub(crate) users: Vec<Obj>,
    pub(crate) members: Vec<Member>,
    pub(crate) groups: Vec<Obj>,
    pub(crate) categories: Vec<Obj>,
    pub(crate) items: Vec<Obj>,
    pub(crate) forms: Vec<Obj>,
    pub(crate) views: Vec<Obj>,
    pub(crate) priorities: Vec<Obj>,
    pub(crate) templates: Vec<Obj>,
    pub(crate) asset_types: Vec<Obj>,
    pub(crate) requests: Vec<Ticket>,
    pub(crate) changes: Vec<Ticket>,
    pub(crate) problems: Vec<Problem>,
    pub(crate) assets: Vec<Obj>,
    pub(crate) audit: Vec<Obj>,
    pub(crate) attachments: Vec<Obj>,
    /// Generic records of the complete set's other operations, by collection path.
    pub(crate) generic: BTreeMap<String, Vec<Obj>>,
}

/// Reads a non-negative integer field.
pub(crate) fn uint(rec: &Obj, key: &str) -> Option<u64> {
    rec.get(key).and_then(Value::as_u64)
}

/// Reads a string field.
pub(crate) fn text<'a>(rec: &'a Obj, key: &str) -> Option<&'a str> {
    rec.get(key).and_then(Value::as_str)
}

/// The record with this `id`.
pub(crate) fn by_id(records: &[Obj], id: u64) -> Option<&Obj> {
    records.iter().find(|r| uint(r, "id") == Some(id))
}

/// Where the record with this `id` sits.
pub(crate) fn position(records: &[Obj], id: u64) -> Option<usize> {
    records.iter().position(|r| uint(r, "id") == Some(id))
}

/// Where the record named by `raw` sits: a numeric id, else a display id such
/// as `CHG-1` (any case).
pub(crate) fn find_display<'a>(
    records: impl IntoIterator<Item = &'a Obj>,
    raw: &str,
) -> Option<usize> {
    let raw = raw.trim();
    let numeric = raw.parse::<u64>().ok();
    records.into_iter().position(|r| match numeric {
        Some(n) => uint(r, "id") == Some(n),
        None => text(r, "display_id").is_some_and(|d| d.eq_ignore_ascii_case(raw)),
    })
}

/// An attachment in its public `{id, file_name, content_type, size}` form.
pub(crate) fn attachment_view(rec: &Obj) -> Value {
    Value::Object(pick(rec, &["id", "file_name", "content_type", "size"]))
}

/// Turns a `json!({...})` literal into a record (anything else gives an empty one).
pub(crate) fn obj(v: Value) -> Obj {
    match v {
        Value::Object(map) => map,
        _ => Obj::new(),
    }
}

/// Keeps only the listed keys of a record.
pub(crate) fn pick(rec: &Obj, keys: &[&str]) -> Obj {
    keys.iter()
        .filter_map(|k| rec.get(*k).map(|v| ((*k).to_owned(), v.clone())))
        .collect()
}

impl Db {
    pub(crate) fn new() -> Self {
        Self {
            clock: CLOCK_START,
            ..Self::default()
        }
    }

    /// The sandbox clock's reading, without moving it (what "now" is for filters).
    pub(crate) fn clock_time(&self) -> Timestamp {
        Timestamp::from_second(self.clock).unwrap_or(Timestamp::UNIX_EPOCH)
    }

    /// The next timestamp for a write (deterministic: one minute per write).
    pub(crate) fn now(&mut self) -> String {
        let at = Timestamp::from_second(self.clock).unwrap_or(Timestamp::UNIX_EPOCH);
        self.clock += 60;
        at.to_string()
    }

    /// The next number in a named sequence.
    pub(crate) fn next(&mut self, sequence: &str) -> u64 {
        let n = self.counters.entry(sequence.to_owned()).or_insert(0);
        *n += 1;
        *n
    }

    /// Makes a sequence continue after `at_least`.
    pub(crate) fn bump(&mut self, sequence: &str, at_least: u64) {
        let n = self.counters.entry(sequence.to_owned()).or_insert(0);
        *n = (*n).max(at_least);
    }

    pub(crate) fn workspace(&self, id: u64) -> ApiResult<&Obj> {
        by_id(&self.workspaces, id)
            .ok_or_else(|| ApiError::not_found(format!("Workspace {id} not found")))
    }

    pub(crate) fn user(&self, id: u64) -> Option<&Obj> {
        by_id(&self.users, id)
    }

    /// The short `{id, name, email}` form of a user embedded in other records.
    pub(crate) fn user_ref(&self, id: Option<u64>) -> Value {
        match id.and_then(|id| self.user(id)) {
            Some(u) => Value::Object(pick(u, &["id", "name", "email"])),
            None => Value::Null,
        }
    }

    /// Checks that a user id from a body names a user.
    pub(crate) fn require_user(&self, field: &str, id: u64) -> ApiResult<()> {
        match self.user(id) {
            Some(_) => Ok(()),
            None => Err(ApiError::bad_request(format!(
                "{field}: user {id} does not exist"
            ))),
        }
    }

    pub(crate) fn group_ref(&self, id: Option<u64>) -> Value {
        let found = id.and_then(|id| by_id(&self.groups, id));
        match found {
            Some(g) => Value::Object(pick(g, &["id", "name"])),
            None => Value::Null,
        }
    }

    /// The short `{id, name, asset_type}` form of an asset linked from a change.
    pub(crate) fn asset_ref(&self, id: u64) -> Value {
        match by_id(&self.assets, id) {
            Some(a) => Value::Object(pick(a, &["id", "name", "asset_type"])),
            None => Value::Null,
        }
    }

    pub(crate) fn require_group(&self, id: u64) -> ApiResult<()> {
        match self.group_ref(Some(id)) {
            Value::Null => Err(ApiError::bad_request(format!(
                "agent_group: group {id} does not exist"
            ))),
            _ => Ok(()),
        }
    }

    /// Fills the embedded user/group objects from their `*_id` fields.
    pub(crate) fn hydrate(&self, rec: &mut Obj) {
        for role in ["requester", "assignee", "owner"] {
            let key = format!("{role}_id");
            if rec.contains_key(&key) {
                let r = self.user_ref(uint(rec, &key));
                rec.insert(role.to_owned(), r);
            }
        }
        if rec.contains_key("agent_group_id") {
            let g = self.group_ref(uint(rec, "agent_group_id"));
            rec.insert("agent_group".to_owned(), g);
        }
    }

    pub(crate) fn member(&self, workspace_id: u64, user_id: u64) -> Option<&Member> {
        self.members
            .iter()
            .find(|m| m.workspace_id == workspace_id && m.user_id == user_id)
    }

    /// A membership as the members endpoints show it.
    pub(crate) fn member_view(&self, m: &Member) -> Value {
        let user = self.user(m.user_id).cloned().unwrap_or_default();
        let mut out = pick(&user, &["id", "name", "email", "title", "department"]);
        out.insert(
            "user_status".into(),
            user.get("user_status").cloned().unwrap_or(Value::Null),
        );
        out.insert("workspace_id".into(), json!(m.workspace_id));
        out.insert("type".into(), json!(m.kind));
        out.insert("org_roles".into(), json!(m.org_roles));
        out.insert("joined_at".into(), json!(m.joined_at));
        Value::Object(out)
    }

    /// An uploaded attachment in its public form ([`attachment_view`]).
    pub(crate) fn attachment(&self, id: u64) -> ApiResult<Value> {
        by_id(&self.attachments, id)
            .map(attachment_view)
            .ok_or_else(|| {
                ApiError::bad_request(format!(
                    "attachments: attachment {id} does not exist (upload it first)"
                ))
            })
    }

    /// The name of the key's user, who is the actor of every sandbox write.
    pub(crate) fn actor_name(&self) -> String {
        self.user(KEY_USER_ID)
            .and_then(|u| text(u, "name"))
            .unwrap_or("API user")
            .to_owned()
    }

    /// Records an audit-log event at the current clock.
    pub(crate) fn audit_event(&mut self, mut event: Obj) {
        let id = self.next("audit");
        let at = self.now();
        event.insert("id".into(), json!(id));
        event.insert("actor".into(), self.user_ref(Some(KEY_USER_ID)));
        event.insert("event_at".into(), json!(at));
        self.audit.push(event);
    }
}
