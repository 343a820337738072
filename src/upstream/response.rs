//! Upstream answers become MCP tool results: JSON passed through (cut to the size cap at a
//! JSON-safe boundary), and every failure explained with what to do next.

use std::time::Duration;

use serde_json::value::RawValue;
use serde_json::{Map, Value, json};

use super::ratelimit::RateLimitInfo;
use super::redact::{Redactor, has_json_escape};
use crate::core::catalog::{HttpMethod, Tool};
use crate::core::tool_result::ToolResult;

/// Upstream text quoted in an error result is cut to this many characters.
const ERROR_BODY_CHARS: usize = 2_000;
/// Longest text block of an error result, in characters. Error texts quote arguments and
/// upstream messages, which can be arbitrarily long; a longer block is cut with a note.
pub(crate) const MAX_ERROR_TEXT_CHARS: usize = 4_000;
/// Added to failures of a write that may have reached Atomicwork.
const MAYBE_APPLIED: &str = " The change may or may not have been applied: check with a read tool before retrying, so it is not made twice.";

/// Redaction and capping of tool results: they need the API key, which only the upstream
/// side knows.
impl ToolResult {
    /// Replaces every occurrence of `secret` in text and structured content, however it
    /// is spelled there (as sent, JSON-escaped or behind `\u` escapes), so the result is
    /// clean whichever path built it.
    pub(super) fn redact(&mut self, secret: &str) {
        let redactor = Redactor::new(secret);
        for block in &mut self.content {
            if let Some(clean) = redactor.json_text(block) {
                *block = clean;
            }
        }
        let structured = self.structured.as_ref();
        if let Some(clean) = structured.and_then(|raw| redactor.json_text(raw.get())) {
            self.structured = RawValue::from_string(clean).ok();
        }
    }

    /// Cuts every text block of an error result to [`MAX_ERROR_TEXT_CHARS`], with a note
    /// saying how long it was. `secret` is redacted first, so no part of it survives the
    /// cut. Results that are not errors are left alone (they have their own cap).
    pub(crate) fn cap_error_text(&mut self, secret: &str) {
        if !self.is_error {
            return;
        }
        let redactor = Redactor::new(secret);
        for block in &mut self.content {
            redactor.string(block);
            cap_text(block, MAX_ERROR_TEXT_CHARS, redactor);
        }
    }
}

/// Cuts `text` to at most `max_chars` characters, ending with a note that says how long
/// it was; a start of the key left at the cut is removed.
pub(crate) fn cap_text(text: &mut String, max_chars: usize, redactor: Redactor<'_>) {
    if fits(text, max_chars) {
        return;
    }
    let full = text.chars().count();
    let note = format!("… [cut: the text was {full} characters]");
    let room = max_chars.saturating_sub(note.chars().count());
    if let Some((at, _)) = text.char_indices().nth(room) {
        text.truncate(at);
    }
    redactor.cut_end(text, room);
    text.push_str(&note);
}

/// Structured content from JSON text already written, without writing it again.
pub(super) fn json_copy(text: &str) -> Option<Box<RawValue>> {
    RawValue::from_string(text.to_owned()).ok()
}

/// What a result message needs to know about the call.
pub(super) struct CallContext<'a> {
    pub(crate) tool: &'a Tool,
    pub(crate) method: HttpMethod,
    pub(crate) path: &'a str,
    pub(crate) workspace: Option<&'a str>,
    pub(crate) paging: Paging,
    pub(crate) max_chars: usize,
    pub(crate) attempts: u32,
    pub(crate) timeout: Duration,
    /// The API key, removed from every text before it is cut.
    pub(crate) redactor: Redactor<'a>,
}

impl CallContext<'_> {
    fn call(&self) -> String {
        format!("{} {}", self.method, self.path)
    }

    fn after_attempts(&self) -> String {
        if self.attempts > 1 {
            format!(" (after {} attempts)", self.attempts)
        } else {
            String::new()
        }
    }

    fn is_read(&self) -> bool {
        self.tool.is_read()
    }

    fn workspace_text(&self) -> String {
        match self.workspace {
            Some(ws) => format!("workspace {ws}"),
            None => "no workspace was sent".into(),
        }
    }
}

/// Which paging arguments the tool takes, and the page asked for.
#[derive(Debug, Clone, Default)]
pub(super) struct Paging {
    pub(crate) has_page: bool,
    pub(crate) has_per_page: bool,
    pub(crate) has_next_page_token: bool,
    pub(crate) page: Option<u64>,
}

impl Paging {
    pub(super) fn of(tool: &Tool, query: &[(String, String)]) -> Self {
        Paging {
            has_page: tool.param("page").is_some(),
            has_per_page: tool.param("per_page").is_some(),
            has_next_page_token: tool.param("next_page_token").is_some(),
            page: query
                .iter()
                .find(|(k, _)| k == "page")
                .and_then(|(_, v)| v.parse().ok()),
        }
    }
}

// ---------------------------------------------------------------------------------------
// Success

/// A 2xx answer: JSON as text (and as structured content when it is an object), an empty
/// body as a short acknowledgement, other text as text.
pub(super) fn success(
    ctx: &CallContext<'_>,
    status: u16,
    content_type: &str,
    body: &[u8],
) -> ToolResult {
    if body.iter().all(u8::is_ascii_whitespace) {
        let ack = json!({"ok": true, "status": status}).to_string();
        let structured = json_copy(&ack);
        return ToolResult::ok(vec![ack], structured);
    }
    match passthrough(body, ctx) {
        Passthrough::Done(result) => result,
        Passthrough::NeedsTree => match serde_json::from_slice::<Value>(body) {
            Ok(value) => fit_json(value, ctx),
            Err(_) => not_json(ctx, status, content_type, body),
        },
        Passthrough::NotJson => not_json(ctx, status, content_type, body),
    }
}

/// A 2xx body that is not JSON: text cut to the cap, or a note on data that is not text.
fn not_json(ctx: &CallContext<'_>, status: u16, content_type: &str, body: &[u8]) -> ToolResult {
    match std::str::from_utf8(body) {
        Ok(text) => ToolResult::ok(fit_text(text, ctx), None),
        Err(_) => ToolResult::ok(
            vec![format!(
                "Atomicwork answered HTTP {status} with {} bytes of non-text data ({}), which cannot be shown here.",
                body.len(),
                if content_type.is_empty() {
                    "no content type"
                } else {
                    content_type
                }
            )],
            None,
        ),
    }
}

/// What [`passthrough`] made of a body.
enum Passthrough {
    /// A JSON document within the size cap, passed through.
    Done(ToolResult),
    /// Not JSON at all.
    NotJson,
    /// JSON over the cap, a body with `\u`/`\/` escapes (not parsed here) or one that
    /// echoes the API key: it goes to a tree, and to the text path when that fails (a tree
    /// is also stricter about nesting depth and number range).
    NeedsTree,
}

/// The common answer, a JSON document within the size cap, passed through as it came
/// (whitespace between tokens removed) without building a tree. Answers with `\u`/`\/`
/// escapes go to the tree, where they are normalised, so the text holds what the escapes
/// spell; so do answers that echo the API key, which is redacted in the tree's strings.
fn passthrough(body: &[u8], ctx: &CallContext<'_>) -> Passthrough {
    let max_chars = ctx.max_chars;
    if has_json_escape(body) || ctx.redactor.found_in(body) {
        return Passthrough::NeedsTree;
    }
    let Ok(raw) = serde_json::from_slice::<&RawValue>(body) else {
        return Passthrough::NotJson;
    };
    let is_object = raw.get().starts_with('{');
    let (text, structured) = match compact(raw.get()) {
        Some(text) => {
            let structured = if is_object { json_copy(&text) } else { None };
            (text, structured)
        }
        None => (raw.get().to_string(), is_object.then(|| raw.to_owned())),
    };
    if !fits(&text, max_chars) {
        return Passthrough::NeedsTree;
    }
    Passthrough::Done(ToolResult::ok(vec![text], structured))
}

/// True when `text` has at most `max_chars` characters (counted only when its bytes
/// exceed the cap).
fn fits(text: &str, max_chars: usize) -> bool {
    text.len() <= max_chars || text.chars().count() <= max_chars
}

fn is_json_whitespace(b: u8) -> bool {
    matches!(b, b' ' | b'\n' | b'\r' | b'\t')
}

/// Valid JSON text without the whitespace between tokens; `None` when it has none.
fn compact(json: &str) -> Option<String> {
    let bytes = json.as_bytes();
    let mut out: Option<Vec<u8>> = None;
    let (mut copied, mut i) = (0, 0);
    while i < bytes.len() {
        if bytes[i] == b'"' {
            i = string_end(bytes, i + 1);
        } else if is_json_whitespace(bytes[i]) {
            let o = out.get_or_insert_with(|| Vec::with_capacity(bytes.len()));
            o.extend_from_slice(&bytes[copied..i]);
            while i < bytes.len() && is_json_whitespace(bytes[i]) {
                i += 1;
            }
            copied = i;
        } else {
            i += 1;
        }
    }
    let mut out = out?;
    out.extend_from_slice(&bytes[copied..]);
    // Only ASCII whitespace outside strings was removed, so the text is still UTF-8.
    Some(
        String::from_utf8(out)
            .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned()),
    )
}

/// The index after the quote that closes the string whose text starts at `from`.
fn string_end(bytes: &[u8], mut from: usize) -> usize {
    while let Some(rest) = bytes.get(from..) {
        match memchr::memchr2(b'"', b'\\', rest) {
            Some(off) if rest[off] == b'\\' => from += off + 2,
            Some(off) => return from + off + 1,
            None => break,
        }
    }
    bytes.len()
}

/// JSON text within the size cap: drops trailing items of `data` (or of a top-level
/// array) so the text stays valid JSON; otherwise cuts the text. The API key is redacted
/// first.
fn fit_json(mut value: Value, ctx: &CallContext<'_>) -> ToolResult {
    ctx.redactor.value(&mut value);
    let max = ctx.max_chars;
    let text = serde_json::to_string(&value).unwrap_or_default();
    if fits(&text, max) {
        let structured = if value.is_object() {
            json_copy(&text)
        } else {
            None
        };
        return ToolResult::ok(vec![text], structured);
    }
    let full = text.chars().count();
    match value {
        Value::Object(mut obj) if obj.get("data").is_some_and(Value::is_array) => {
            let items = match obj.insert("data".into(), Value::Array(Vec::new())) {
                Some(Value::Array(items)) => items,
                _ => Vec::new(),
            };
            let base = serde_json::to_string(&obj)
                .unwrap_or_default()
                .chars()
                .count();
            let Some(kept) = items_that_fit(&items, base, max) else {
                return ToolResult::ok(fit_text(&text, ctx), None);
            };
            let total = items.len();
            let facts = Facts::from_object(&obj, kept, total, full);
            obj.insert(
                "data".into(),
                Value::Array(items.into_iter().take(kept).collect()),
            );
            let shown = Value::Object(obj).to_string();
            let structured = json_copy(&shown);
            ToolResult::ok(vec![shown, items_note(ctx, &facts)], structured)
        }
        Value::Array(items) => {
            let Some(kept) = items_that_fit(&items, 2, max) else {
                return ToolResult::ok(fit_text(&text, ctx), None);
            };
            let facts = Facts::from_object(&Map::new(), kept, items.len(), full);
            let shown = Value::Array(items.into_iter().take(kept).collect()).to_string();
            ToolResult::ok(vec![shown, items_note(ctx, &facts)], None)
        }
        _ => ToolResult::ok(fit_text(&text, ctx), None),
    }
}

/// How many leading items fit: `base` is the length with an empty array, each item adds
/// its length plus a comma after the first. `None` when not even an empty array fits.
fn items_that_fit(items: &[Value], base: usize, max: usize) -> Option<usize> {
    if base > max {
        return None;
    }
    let mut used = base;
    for (i, item) in items.iter().enumerate() {
        let add = item.to_string().chars().count() + usize::from(i > 0);
        if used + add > max {
            return Some(i);
        }
        used += add;
    }
    Some(items.len())
}

struct Facts {
    kept: usize,
    total: usize,
    full_chars: usize,
    total_count: Option<u64>,
    has_token: bool,
}

impl Facts {
    fn from_object(obj: &Map<String, Value>, kept: usize, total: usize, full_chars: usize) -> Self {
        Facts {
            kept,
            total,
            full_chars,
            total_count: obj.get("total_count").and_then(Value::as_u64),
            has_token: obj
                .get("next_page_token")
                .is_some_and(|t| !t.is_null() && t.as_str() != Some("")),
        }
    }
}

fn items_note(ctx: &CallContext<'_>, f: &Facts) -> String {
    let mut note = format!(
        "[Result truncated] The full result was {} characters, over this server's limit of {}. \
         Kept the first {} of {} items; the JSON above is complete and valid, but the other {} items are missing.",
        f.full_chars,
        ctx.max_chars,
        f.kept,
        f.total,
        f.total - f.kept
    );
    if let Some(n) = f.total_count {
        note.push_str(&format!(" total_count reports {n} matching items in all."));
    }
    let p = &ctx.paging;
    if p.has_per_page {
        let per_page = f.kept.max(1);
        note.push_str(&format!(
            " To see every item, call again with per_page={per_page} (or less) and step through the pages with page=1, 2, 3, ….",
        ));
    } else if p.has_page {
        let next = p.page.unwrap_or(1).saturating_add(1);
        note.push_str(&format!(
            " Continue with page={next}; to see the items dropped here, narrow the request (filters or search_key)."
        ));
    } else {
        note.push_str(" Narrow the request (filters, search_key or a more specific id) to get a smaller result.");
    }
    if p.has_next_page_token && f.has_token {
        note.push_str(
            " The next_page_token in this result continues after the full page, so passing it would skip the dropped items; prefer a smaller per_page.",
        );
    }
    note
}

/// Text cut at a character boundary, with a note when it was cut. The API key is
/// redacted before the cut, and a start of it left at the cut is removed.
fn fit_text(text: &str, ctx: &CallContext<'_>) -> Vec<String> {
    let max = ctx.max_chars;
    let text = ctx.redactor.text(text);
    let Some((cut, _)) = text.char_indices().nth(max) else {
        return vec![text.into_owned()];
    };
    let full = text.chars().count();
    let mut note = format!(
        "[Result truncated] The result was {full} characters, over this server's limit of {max}; only the first {max} are shown, so the text above is incomplete."
    );
    if ctx.paging.has_per_page {
        note.push_str(" Call again with a smaller per_page to get a result that fits.");
    } else {
        note.push_str(" Narrow the request (filters, search_key or a more specific id) to get a smaller result.");
    }
    let mut shown = text[..cut].to_string();
    ctx.redactor.cut_end(&mut shown, max);
    vec![shown, note]
}

// ---------------------------------------------------------------------------------------
// Failures

/// A non-2xx answer: status, Atomicwork's `{error, code}`, and what to do next.
pub(super) fn http_failure(
    ctx: &CallContext<'_>,
    status: u16,
    body: &[u8],
    rate: Option<&RateLimitInfo>,
    location: Option<&str>,
) -> ToolResult {
    let reason = http::StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .map(|r| format!(" ({r})"))
        .unwrap_or_default();
    let mut text = format!(
        "{} failed: Atomicwork answered HTTP {status}{reason} to {}{}.",
        ctx.tool.name(),
        ctx.call(),
        ctx.after_attempts()
    );
    let parsed: Option<Value> = serde_json::from_slice(body).ok();
    let envelope = parsed.as_ref().and_then(Envelope::of);
    if let Some(e) = &envelope {
        let message = quoted(&e.message, ctx.max_chars, ctx.redactor);
        text.push_str(&format!(" Atomicwork says: {message:?}"));
        if let Some(code) = &e.code {
            text.push_str(&format!(" (code {code})"));
        }
        text.push('.');
    }
    text.push(' ');
    text.push_str(&hint(ctx, status, rate, location));
    let mut result = ToolResult::error(text);
    let only_envelope = envelope.as_ref().is_some_and(|e| e.is_whole_body);
    if !only_envelope && let Some(snippet) = body_snippet(body, ctx.max_chars, ctx.redactor) {
        result.content.push(format!("Response body: {snippet}"));
    }
    result
}

/// Atomicwork's error envelope `{error, code}` (also `message` for the text).
struct Envelope {
    message: String,
    code: Option<String>,
    is_whole_body: bool,
}

impl Envelope {
    fn of(v: &Value) -> Option<Self> {
        let obj = v.as_object()?;
        let message = ["error", "message"]
            .iter()
            .find_map(|k| match obj.get(*k)? {
                Value::String(s) if !s.is_empty() => Some(s.clone()),
                Value::Object(inner) => inner.get("message")?.as_str().map(str::to_string),
                _ => None,
            })?;
        let code = match obj.get("code") {
            Some(Value::String(s)) if !s.is_empty() => Some(s.clone()),
            Some(Value::Number(n)) => Some(n.to_string()),
            _ => None,
        };
        let is_whole_body = obj
            .keys()
            .all(|k| matches!(k.as_str(), "error" | "message" | "code" | "status"));
        Some(Envelope {
            message,
            code,
            is_whole_body,
        })
    }
}

/// The error body as quoted in an error result: the API key redacted, then cut to
/// [`ERROR_BODY_CHARS`] (or the result cap, if lower).
fn body_snippet(body: &[u8], max_chars: usize, redactor: Redactor<'_>) -> Option<String> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return None;
    }
    let Ok(text) = std::str::from_utf8(body) else {
        return Some(format!("({} bytes of non-text data)", body.len()));
    };
    Some(quoted(text.trim(), max_chars, redactor))
}

/// Upstream text as quoted in an error result, so the advice after it is never cut
/// away: the API key redacted, then cut to [`ERROR_BODY_CHARS`] (or the result cap, if
/// lower) with a start of the key left at the cut removed.
fn quoted(text: &str, max_chars: usize, redactor: Redactor<'_>) -> String {
    let text = redactor.text(text);
    let limit = ERROR_BODY_CHARS.min(max_chars);
    match text.char_indices().nth(limit) {
        Some((cut, _)) => {
            let mut shown = text[..cut].to_string();
            redactor.cut_end(&mut shown, limit);
            format!("{shown}… (cut)")
        }
        None => text.into_owned(),
    }
}

fn hint(
    ctx: &CallContext<'_>,
    status: u16,
    rate: Option<&RateLimitInfo>,
    location: Option<&str>,
) -> String {
    match status {
        400 | 422 => "The request was rejected as invalid: fix the arguments Atomicwork's message points at and call again.".into(),
        401 => "The API key was not accepted (missing, wrong or revoked). This is a server configuration problem: \
                the operator must fix the API key Secret (spec.atomicwork.apiKeySecretRef). Retrying will not help."
            .into(),
        403 => format!(
            "The API key is not allowed to do this ({}). The operator must give the key's user the needed role or \
             workspace access, or use another key; retrying will not help. If the workspace is wrong, pass the right workspace_id.",
            ctx.workspace_text()
        ),
        404 => format!(
            "Nothing was found at {} ({}). Check the id(s) in the path and the workspace; use a list or search tool to find valid ids.",
            ctx.path,
            ctx.workspace_text()
        ),
        405 => format!(
            "Atomicwork does not accept {} on this path. The tool's mapping may not match this tenant's API; the operator can \
             correct the method or path with a catalog override. Retrying will not help.",
            ctx.method
        ),
        409 => "The request conflicts with the record's current state (it changed meanwhile, already exists, or its state forbids this). \
                Fetch the record again, then decide whether to call again with updated arguments."
            .into(),
        429 => rate_limited_hint(rate),
        300..=399 => format!(
            "Redirects are not followed (they could carry the API key elsewhere){}. The operator should check spec.atomicwork.baseUrl \
             (https, and the tenant host name).",
            location.map(|l| format!("; it pointed to {l}")).unwrap_or_default()
        ),
        500..=599 => server_error_hint(ctx, status),
        _ => "The request was refused; check the arguments and the workspace, then call again.".into(),
    }
}

fn rate_limited_hint(rate: Option<&RateLimitInfo>) -> String {
    let mut hint = String::from("The call was rate limited by Atomicwork and was not carried out.");
    match rate.and_then(RateLimitInfo::wait_seconds) {
        Some(s) => hint.push_str(&format!(" Retry after {s} seconds.")),
        None => hint.push_str(" Wait about 10-30 seconds before calling again."),
    }
    if let Some(limit) = rate.and_then(|r| r.limit.as_deref()) {
        match limit.split_once(";w=") {
            Some((n, w)) => hint.push_str(&format!(" The limit is {n} requests per {w} seconds.")),
            None => hint.push_str(&format!(" The limit is {limit} requests per window.")),
        }
    }
    hint.push_str(" Make fewer calls, e.g. a larger per_page instead of many pages.");
    hint
}

fn server_error_hint(ctx: &CallContext<'_>, status: u16) -> String {
    let mut hint = if matches!(status, 502..=504) {
        "Atomicwork, or a gateway in front of it, is unavailable right now. Retry in a little while.".to_string()
    } else {
        "Atomicwork failed while handling the request (a server-side error, not necessarily caused by the arguments). \
         Retry later; if it keeps failing, try different arguments."
            .to_string()
    };
    if !ctx.is_read() {
        hint.push_str(MAYBE_APPLIED);
    }
    hint
}

/// A failure before any HTTP status arrived.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum TransportKind {
    Timeout,
    /// Could not connect; `sent` is true when the connection broke after the request
    /// may have reached Atomicwork.
    Connect {
        sent: bool,
    },
    Tls,
    /// The answer could not be read (broken body, bad encoding).
    Protocol,
}

pub(super) fn transport_failure(
    ctx: &CallContext<'_>,
    kind: TransportKind,
    host: &str,
    detail: &str,
) -> ToolResult {
    let tool = ctx.tool.name();
    let attempts = ctx.after_attempts();
    let text = match kind {
        TransportKind::Timeout => {
            let mut t = format!(
                "{tool} failed: Atomicwork did not answer {} within {} s{attempts}.",
                ctx.call(),
                ctx.timeout.as_secs_f64()
            );
            if ctx.is_read() {
                t.push_str(" It may be slow or overloaded: retry in a little while, or ask for less (smaller per_page, narrower filters).");
            } else {
                t.push_str(MAYBE_APPLIED);
            }
            t
        }
        TransportKind::Connect { sent } => {
            let mut t = format!(
                "{tool} failed: could not reach Atomicwork at {host}: {detail}{attempts}. This is a connection problem, not a problem \
                 with the arguments. Retry later; if it persists, the operator should check spec.atomicwork.baseUrl and that the \
                 tenant is reachable."
            );
            if sent && !ctx.is_read() {
                t.push_str(MAYBE_APPLIED);
            }
            t
        }
        TransportKind::Tls => format!(
            "{tool} failed: the secure (TLS) connection to {host} failed: {detail}. The server's certificate was not accepted or \
             TLS could not be negotiated; retrying will not help. The operator should check spec.atomicwork.baseUrl (tenant host \
             name, https)."
        ),
        TransportKind::Protocol => {
            let mut t = format!(
                "{tool} failed: Atomicwork's answer to {} could not be read: {detail}{attempts}.",
                ctx.call()
            );
            if ctx.is_read() {
                t.push_str(" Retry in a little while.");
            } else {
                t.push_str(MAYBE_APPLIED);
            }
            t
        }
    };
    ToolResult::error(text)
}
