//! multipart/form-data tools: file arguments arrive as base64 inside the JSON arguments and
//! leave as real file parts next to the `in: body` fields.

use std::fmt;

use base64::Engine;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use bytes::Bytes;
use serde_json::{Map, Value, json};

use super::UpstreamOptions;
use super::request::{BuildError, PreparedBody, json_fields, scalar_text};
use crate::core::catalog::{Location, ParamKind, Tool};

/// Standard alphabet; padding optional, because models often drop it.
const BASE64: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

const DEFAULT_CONTENT_TYPE: &str = "application/octet-stream";

/// One decoded file, sent as a multipart part named `field`.
#[derive(Clone, PartialEq)]
pub(crate) struct FilePart {
    pub(crate) field: String,
    pub(crate) filename: String,
    pub(crate) content_type: String,
    pub(crate) bytes: Bytes,
}

impl fmt::Debug for FilePart {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FilePart")
            .field("field", &self.field)
            .field("filename", &self.filename)
            .field("content_type", &self.content_type)
            .field("len", &self.bytes.len())
            .finish()
    }
}

/// Text fields from the body arguments and file parts from the file arguments.
pub(super) fn build(tool: &Tool, args: &Map<String, Value>) -> Result<PreparedBody, BuildError> {
    let mut fields = Vec::new();
    for (name, value) in json_fields(tool, args) {
        push_field(&mut fields, &name, &value);
    }
    let mut files = Vec::new();
    for p in tool
        .source
        .params
        .iter()
        .filter(|p| p.location == Location::File)
    {
        match (args.get(&p.name), p.kind) {
            (None | Some(Value::Null), _) => {}
            (Some(Value::Array(items)), Some(ParamKind::Files)) => {
                for item in items {
                    files.push(file_part(&p.name, item)?);
                }
            }
            (Some(Value::Array(_)), _) => {
                return Err(BuildError::BadFile {
                    name: p.name.clone(),
                    reason: "takes one file object, not a list".into(),
                });
            }
            (Some(v), _) => files.push(file_part(&p.name, v)?),
        }
    }
    Ok(PreparedBody::Multipart { fields, files })
}

/// Strings as they are, numbers and booleans as written, objects as JSON text, and one
/// field per item for lists.
fn push_field(out: &mut Vec<(String, String)>, name: &str, value: &Value) {
    match value {
        Value::Null => {}
        Value::Array(items) => {
            for item in items {
                out.push((name.to_string(), field_text(item)));
            }
        }
        v => out.push((name.to_string(), field_text(v))),
    }
}

fn field_text(v: &Value) -> String {
    scalar_text(v).unwrap_or_else(|| v.to_string())
}

fn file_part(name: &str, v: &Value) -> Result<FilePart, BuildError> {
    let bad = |reason: String| BuildError::BadFile {
        name: name.to_string(),
        reason,
    };
    let Some(obj) = v.as_object() else {
        return Err(bad(
            "each file must be an object {\"filename\", \"content_type\", \"content_base64\"}"
                .into(),
        ));
    };
    let filename = match obj.get("filename") {
        Some(Value::String(s)) if !s.trim().is_empty() => s.clone(),
        _ => return Err(bad("each file needs a non-empty \"filename\"".into())),
    };
    if filename.chars().any(char::is_control) {
        return Err(bad(format!(
            "file name {filename:?} contains control characters"
        )));
    }
    let content_type = match obj.get("content_type") {
        None | Some(Value::Null) => DEFAULT_CONTENT_TYPE.to_string(),
        Some(Value::String(s)) if s.trim().is_empty() => DEFAULT_CONTENT_TYPE.to_string(),
        Some(Value::String(s)) if is_media_type(s.trim()) => s.trim().to_string(),
        Some(other) => {
            return Err(bad(format!(
                "content_type {other} of {filename:?} is not a media type such as text/plain or application/pdf"
            )));
        }
    };
    let Some(Value::String(encoded)) = obj.get("content_base64") else {
        return Err(bad(format!(
            "file {filename:?} needs \"content_base64\": the file's bytes, base64-encoded"
        )));
    };
    let bytes = decode(encoded).map_err(|e| {
        bad(format!(
            "content_base64 of {filename:?} is not valid base64 (standard alphabet, e.g. \"aGVsbG8=\"): {e}"
        ))
    })?;
    Ok(FilePart {
        field: name.to_string(),
        filename,
        content_type,
        bytes: Bytes::from(bytes),
    })
}

/// Decodes base64, tolerating line breaks and a `data:...;base64,` prefix.
fn decode(encoded: &str) -> Result<Vec<u8>, base64::DecodeError> {
    let payload = match encoded.split_once(";base64,") {
        Some((prefix, rest)) if prefix.starts_with("data:") => rest,
        _ => encoded,
    };
    let compact: String = payload
        .chars()
        .filter(|c| !c.is_ascii_whitespace())
        .collect();
    BASE64.decode(compact)
}

/// `type/subtype` of RFC 9110 token characters, optionally followed by `; parameters`.
fn is_media_type(s: &str) -> bool {
    let token = |t: &str| {
        !t.is_empty()
            && t.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"!#$&-^_.+".contains(&b))
    };
    let (essence, params) = s.split_once(';').unwrap_or((s, ""));
    let Some((ty, sub)) = essence.trim().split_once('/') else {
        return false;
    };
    token(ty) && token(sub) && params.bytes().all(|b| b == b' ' || b.is_ascii_graphic())
}

/// Enforces the per-file and per-call upload limits.
pub(super) fn check_limits(body: &PreparedBody, opts: &UpstreamOptions) -> Result<(), BuildError> {
    let PreparedBody::Multipart { files, .. } = body else {
        return Ok(());
    };
    let mut total = 0usize;
    for f in files {
        if f.bytes.len() > opts.max_file_bytes {
            return Err(BuildError::FileTooLarge {
                name: f.field.clone(),
                filename: f.filename.clone(),
                size: f.bytes.len(),
                limit: opts.max_file_bytes,
            });
        }
        total = total.saturating_add(f.bytes.len());
        if total > opts.max_upload_bytes {
            return Err(BuildError::UploadTooLarge {
                filename: f.filename.clone(),
                total,
                limit: opts.max_upload_bytes,
            });
        }
    }
    Ok(())
}

/// Characters a part's name is sent without: a name with any other character is sent
/// percent-encoded, as `name*=utf-8''…` (RFC 7578 and 8187).
const NAME_AS_IS: &percent_encoding::AsciiSet = &percent_encoding::CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'<')
    .add(b'>')
    .add(b'`')
    .add(b'#')
    .add(b'?')
    .add(b'{')
    .add(b'}')
    .add(b'/')
    .add(b'%');

/// A multipart/form-data body: its `Content-Type` (with a fresh random boundary) and its
/// bytes, text fields first, then files. No fields and no files is an empty body.
pub(super) fn encode(
    fields: &[(String, String)],
    files: &[FilePart],
) -> Result<(http::HeaderValue, Bytes), BuildError> {
    let boundary = boundary();
    let content_type = http::HeaderValue::try_from(format!(
        "multipart/form-data; boundary={boundary}"
    ))
    .map_err(|_| BuildError::BadValue {
        name: "multipart".into(),
        reason: "the form's boundary is not a header value".into(),
    })?;
    if fields.is_empty() && files.is_empty() {
        return Ok((content_type, Bytes::new()));
    }
    let size = fields
        .iter()
        .map(|(k, v)| k.len() + v.len() + 128)
        .sum::<usize>()
        + files
            .iter()
            .map(|f| f.field.len() + f.filename.len() + f.content_type.len() + f.bytes.len() + 160)
            .sum::<usize>();
    let mut out = Vec::with_capacity(size);
    for (name, value) in fields {
        part_head(&mut out, &boundary, name, None);
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    for f in files {
        if !is_media_type(&f.content_type) {
            return Err(BuildError::BadFile {
                name: f.field.clone(),
                reason: format!(
                    "content_type {:?} is not a valid media type",
                    f.content_type
                ),
            });
        }
        part_head(
            &mut out,
            &boundary,
            &f.field,
            Some((&f.filename, &f.content_type)),
        );
        out.extend_from_slice(&f.bytes);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    Ok((content_type, Bytes::from(out)))
}

/// The boundary line and headers of one part, up to and including the blank line.
fn part_head(out: &mut Vec<u8>, boundary: &str, name: &str, file: Option<(&str, &str)>) {
    out.extend_from_slice(format!("--{boundary}\r\nContent-Disposition: form-data; ").as_bytes());
    let encoded = std::borrow::Cow::from(percent_encoding::utf8_percent_encode(name, NAME_AS_IS));
    match encoded {
        std::borrow::Cow::Borrowed(plain) => {
            out.extend_from_slice(b"name=\"");
            out.extend_from_slice(plain.as_bytes());
            out.push(b'"');
        }
        std::borrow::Cow::Owned(escaped) => {
            out.extend_from_slice(b"name*=utf-8''");
            out.extend_from_slice(escaped.as_bytes());
        }
    }
    if let Some((filename, content_type)) = file {
        out.extend_from_slice(b"; filename=\"");
        for c in filename.chars() {
            if matches!(c, '\\' | '"' | '\r' | '\n') {
                out.push(b'\\');
            }
            let mut buf = [0u8; 4];
            out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
        }
        out.push(b'"');
        out.extend_from_slice(b"\r\nContent-Type: ");
        out.extend_from_slice(content_type.as_bytes());
    }
    out.extend_from_slice(b"\r\n\r\n");
}

/// 256 random bits as four groups of hex digits.
fn boundary() -> String {
    let mut words = [0u64; 4];
    for (i, w) in words.iter_mut().enumerate() {
        // Without the system's randomness, a boundary that still differs per call.
        *w = getrandom::u64().unwrap_or_else(|_| {
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos() as u64);
            nanos.rotate_left(i as u32 * 16) ^ 0x9e37_79b9_7f4a_7c15
        });
    }
    format!(
        "{:016x}-{:016x}-{:016x}-{:016x}",
        words[0], words[1], words[2], words[3]
    )
}

/// What a dry run shows of a multipart body: field values, and file names, sizes and
/// types, never file bytes.
pub(super) fn describe(fields: &[(String, String)], files: &[FilePart]) -> Value {
    let fields: Vec<Value> = fields.iter().map(|(k, v)| json!([k, v])).collect();
    let files: Vec<Value> = files
        .iter()
        .map(|f| {
            json!({
                "field": f.field,
                "filename": f.filename,
                "content_type": f.content_type,
                "size_bytes": f.bytes.len(),
            })
        })
        .collect();
    json!({"multipart/form-data": {"fields": fields, "files": files}})
}
