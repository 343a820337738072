//! multipart/form-data input: attachment upload, and the form fields plus file
//! parts of change create-with-files. Only file metadata is kept, not the bytes.

use axum::Json;
use axum::extract::multipart::MultipartRejection;
use axum::extract::{Multipart, State};
use axum::http::StatusCode;
use serde_json::{Value, json};

use super::Sandbox;
use super::error::{ApiError, ApiResult};
use super::store::{Db, Obj, attachment_view, obj};

/// A file part as received: its part name and metadata.
#[derive(Debug, Clone)]
pub(crate) struct FilePart {
    pub(crate) part: String,
    pub(crate) file_name: String,
    pub(crate) content_type: String,
    pub(crate) size: usize,
}

/// The parts of a multipart body: text fields in order, then file parts.
#[derive(Debug, Default)]
pub(crate) struct Form {
    pub(crate) fields: Vec<(String, String)>,
    pub(crate) files: Vec<FilePart>,
}

fn multipart_error(status: StatusCode, text: String) -> ApiError {
    ApiError::new(status, format!("invalid multipart/form-data body: {text}"))
}

/// Reads every part; a part with a file name is a file, any other is a text field.
pub(crate) async fn read_form(mp: Result<Multipart, MultipartRejection>) -> ApiResult<Form> {
    let mut mp = mp.map_err(|e| multipart_error(e.status(), e.body_text()))?;
    let mut form = Form::default();
    while let Some(field) = mp
        .next_field()
        .await
        .map_err(|e| multipart_error(e.status(), e.body_text()))?
    {
        let part = field.name().unwrap_or("").to_owned();
        let file_name = field.file_name().map(str::to_owned);
        let content_type = field.content_type().map(str::to_owned);
        let bytes = field
            .bytes()
            .await
            .map_err(|e| multipart_error(e.status(), e.body_text()))?;
        match file_name {
            Some(file_name) => form.files.push(FilePart {
                part,
                file_name,
                content_type: content_type.unwrap_or_else(|| "application/octet-stream".into()),
                size: bytes.len(),
            }),
            None => {
                let text = String::from_utf8(bytes.to_vec()).map_err(|_| {
                    ApiError::bad_request(format!("form field '{part}' must be UTF-8 text"))
                })?;
                form.fields.push((part, text));
            }
        }
    }
    Ok(form)
}

/// Stores an uploaded file's metadata and returns its public form.
pub(crate) fn store_attachment(db: &mut Db, file: &FilePart) -> Value {
    let id = db.next("attachment");
    let rec = obj(json!({
        "id": id, "file_name": file.file_name, "content_type": file.content_type,
        "size": file.size, "created_at": db.now(),
    }));
    let public = attachment_view(&rec);
    db.attachments.push(rec);
    public
}

/// `POST /api/v1/attachments`: one `file` part; answers `{id, file_name, content_type, size}`.
pub(crate) async fn upload(
    State(sb): State<Sandbox>,
    mp: Result<Multipart, MultipartRejection>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let form = read_form(mp).await?;
    let file = form
        .files
        .iter()
        .find(|f| f.part == "file")
        .ok_or_else(|| ApiError::required("file (a multipart file part named 'file')"))?;
    let mut db = sb.lock()?;
    let out = store_attachment(&mut db, file);
    Ok((StatusCode::CREATED, Json(out)))
}

/// Form fields that hold lists (repeat the field, or send `a,b`).
const LIST_FIELDS: &[&str] = &["tags", "assets", "linked_requests", "attachments"];
/// Form fields that hold JSON objects.
const OBJECT_FIELDS: &[&str] = &["custom_fields", "template_fields"];

fn json_object(key: &str, raw: &str) -> ApiResult<Obj> {
    match serde_json::from_str(raw) {
        Ok(Value::Object(map)) => Ok(map),
        _ => Err(ApiError::bad_request(format!(
            "{key} must be a JSON object"
        ))),
    }
}

/// Turns text form fields into the same object a JSON create body would be.
/// `data_json` (a JSON object) supplies fields the form itself does not set.
pub(crate) fn fields_to_object(fields: &[(String, String)]) -> ApiResult<Obj> {
    let mut out = Obj::new();
    let mut extra = Obj::new();
    for (name, value) in fields {
        let key = name.trim_end_matches("[]");
        if key == "data_json" {
            extra.extend(json_object(key, value)?);
        } else if LIST_FIELDS.contains(&key) {
            let items = value.split(',').map(str::trim).filter(|v| !v.is_empty());
            let entry = out.entry(key).or_insert_with(|| json!([]));
            if let Value::Array(list) = entry {
                list.extend(items.map(|v| json!(v)));
            }
        } else if OBJECT_FIELDS.contains(&key) {
            out.insert(key.to_owned(), Value::Object(json_object(key, value)?));
        } else {
            out.insert(key.to_owned(), json!(value));
        }
    }
    for (k, v) in extra {
        out.entry(k).or_insert(v);
    }
    Ok(out)
}
