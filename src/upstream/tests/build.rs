//! Pure request building: paths, queries, bodies, workspaces and their errors.

use serde_json::json;

use super::{args, custom_tool, file_arg, target, tool};
use crate::core::base_url::BaseUrl;
use crate::upstream::{BuildError, PreparedBody, UpstreamOptions, build_request, multipart};

const BASE: &str = "https://acme.atomicwork.com";

fn path_of(tool_name: &str, a: serde_json::Value) -> Result<String, BuildError> {
    build_request(&tool(tool_name), &args(a), &target(BASE)).map(|p| p.path)
}

#[test]
fn path_injection_attempts_stay_one_segment() {
    let cases = [
        ("%2e%2e", "/api/v1/requests/%252e%252e"),
        ("?x=1", "/api/v1/requests/%3Fx%3D1"),
        ("x#frag", "/api/v1/requests/x%23frag"),
        ("a b\\c", "/api/v1/requests/a%20b%5Cc"),
        ("...", "/api/v1/requests/..."),
        ("ITREQ-12", "/api/v1/requests/ITREQ-12"),
        ("Ünïcode", "/api/v1/requests/%C3%9Cn%C3%AFcode"),
    ];
    for (id, expected) in cases {
        let path = path_of(
            "get_single_atomicwork_requests_number_by_id",
            json!({"id": id}),
        );
        assert_eq!(path.as_deref(), Ok(expected), "id {id:?}");
    }
}

#[test]
fn url_never_gains_a_query_or_fragment_from_an_id() {
    let p = build_request(
        &tool("get_single_atomicwork_requests_number_by_id"),
        &args(json!({"id": "?x=1#y"})),
        &target(BASE),
    )
    .expect("builds");
    assert_eq!(
        p.url,
        "https://acme.atomicwork.com/api/v1/requests/%3Fx%3D1%23y"
    );
    assert!(p.query.is_empty());
}

#[test]
fn dot_segments_are_rejected_with_a_clear_error() {
    for id in [".", ".."] {
        let err = path_of(
            "get_single_atomicwork_requests_number_by_id",
            json!({"id": id}),
        )
        .expect_err("dot segment rejected");
        assert_eq!(
            err,
            BuildError::BadPathSegment {
                name: "id".into(),
                value: id.into()
            }
        );
        assert!(err.to_string().contains("not a valid id"), "{err}");
    }
}

#[test]
fn ids_with_a_slash_are_refused() {
    for id in ["a/b", "../admin", "/", "ITREQ-1/", "%2F/x"] {
        let err = path_of(
            "get_single_atomicwork_requests_number_by_id",
            json!({"id": id}),
        )
        .expect_err("an id with a slash is refused");
        assert_eq!(
            err,
            BuildError::BadPathSegment {
                name: "id".into(),
                value: id.into()
            }
        );
        assert!(err.to_string().contains("\"/\""), "{err}");
    }
}

#[test]
fn over_long_path_and_query_values_are_refused_naming_the_argument_and_limit() {
    use crate::upstream::request::{MAX_PATH_VALUE_CHARS, MAX_QUERY_VALUE_CHARS};
    let get = tool("get_single_atomicwork_requests_number_by_id");
    let fits = "I".repeat(MAX_PATH_VALUE_CHARS);
    assert!(build_request(&get, &args(json!({"id": fits})), &target(BASE)).is_ok());
    for (name, a, limit) in [
        (
            "id",
            json!({"id": "I".repeat(1_000_000)}),
            MAX_PATH_VALUE_CHARS,
        ),
        (
            "id",
            json!({"id": "/".repeat(MAX_PATH_VALUE_CHARS + 1)}),
            MAX_PATH_VALUE_CHARS,
        ),
        (
            "workspace_id",
            json!({"id": "1", "workspace_id": "7".repeat(5_000)}),
            MAX_PATH_VALUE_CHARS,
        ),
    ] {
        let err = build_request(&get, &args(a), &target(BASE)).expect_err("too long");
        let text = err.to_string();
        assert!(text.contains(&format!("`{name}`")), "{text}");
        assert!(text.contains(&limit.to_string()), "{text}");
        assert!(text.len() < 400, "the value is not quoted: {text}");
    }
    let audit = tool("list_all_atomicwork_audit_logs");
    let long = "s".repeat(MAX_QUERY_VALUE_CHARS + 1);
    let err = build_request(&audit, &args(json!({"search_key": long})), &target(BASE))
        .expect_err("too long");
    let text = err.to_string();
    assert!(
        text.contains("`search_key`") && text.contains(&MAX_QUERY_VALUE_CHARS.to_string()),
        "{text}"
    );
    assert!(text.len() < 400, "{text}");
    let fits = "s".repeat(MAX_QUERY_VALUE_CHARS);
    assert!(build_request(&audit, &args(json!({"search_key": fits})), &target(BASE)).is_ok());
}

#[test]
fn a_url_over_the_limit_is_refused() {
    use crate::upstream::MAX_URL_BYTES;
    let t = tool("list_all_atomicwork_requester_entities");
    let ids: Vec<u64> = (100_000..102_000).collect();
    let a = json!({"entity_type": "SERVICE_REQUEST", "service_item_ids": ids});
    let err = build_request(&t, &args(a), &target(BASE)).expect_err("URL too long");
    let text = err.to_string();
    assert!(text.contains(&MAX_URL_BYTES.to_string()), "{text}");
    let few = json!({"entity_type": "SERVICE_REQUEST", "service_item_ids": [100_000, 100_001]});
    assert!(build_request(&t, &args(few), &target(BASE)).is_ok());
}

#[tokio::test]
async fn over_long_and_slashed_ids_send_nothing_and_say_why() {
    let server = wiremock::MockServer::start().await;
    wiremock::Mock::given(wiremock::matchers::any())
        .respond_with(wiremock::ResponseTemplate::new(200))
        .expect(0)
        .mount(&server)
        .await;
    for id in ["I".repeat(1_000_000), "a/b".to_string()] {
        let o = super::call_with(
            &server.uri(),
            "get_single_atomicwork_requests_number_by_id",
            json!({"id": id}),
            |_| {},
        )
        .await;
        assert_eq!(o.class, crate::upstream::OutcomeClass::InvalidArguments);
        assert_eq!(o.attempts, 0);
        let text = o.result.content.join("\n");
        assert!(
            text.contains("invalid arguments") && text.contains("`id`"),
            "{text}"
        );
        assert!(text.len() < 600, "{} characters", text.len());
        assert!(!text.contains("Retry"), "not worth retrying: {text}");
    }
    server.verify().await;
}

#[test]
fn missing_path_param_is_named() {
    for a in [json!({}), json!({"id": ""}), json!({"id": null})] {
        let err =
            path_of("get_single_atomicwork_requests_number_by_id", a).expect_err("missing id");
        assert!(matches!(&err, BuildError::MissingPathParam { name, .. } if name == "id"));
        assert!(err.to_string().contains("`id`"), "{err}");
    }
}

#[test]
fn missing_workspace_explains_how_to_find_one() {
    let mut t = target(BASE);
    t.workspace_id = None;
    let err = build_request(
        &tool("list_all_atomicwork_workspace_members"),
        &args(json!({})),
        &t,
    )
    .expect_err("no workspace");
    assert_eq!(err, BuildError::MissingWorkspace);
    let text = err.to_string();
    assert!(text.contains("no default workspace"), "{text}");
    assert!(text.contains("list_all_atomicwork_workspaces"), "{text}");
}

#[test]
fn workspace_argument_overrides_default_in_path_and_header() {
    let p = build_request(
        &tool("list_all_atomicwork_workspace_members"),
        &args(json!({"workspace_id": 12})),
        &target(BASE),
    )
    .expect("builds");
    assert_eq!(p.path, "/api/v1/workspaces/12/members");
    assert_eq!(p.workspace.as_deref(), Some("12"));

    let d = build_request(
        &tool("list_all_atomicwork_workspace_members"),
        &args(json!({})),
        &target(BASE),
    )
    .expect("builds");
    assert_eq!(d.path, "/api/v1/workspaces/7/members");
    assert_eq!(d.workspace.as_deref(), Some("7"));
}

#[test]
fn workspace_in_body_stays_in_body_and_sets_header() {
    let p = build_request(
        &tool("create_a_atomicwork_request"),
        &args(json!({"subject": "s", "workspace_id": 9})),
        &target(BASE),
    )
    .expect("builds");
    assert_eq!(p.workspace.as_deref(), Some("9"));
    assert_eq!(
        p.body,
        PreparedBody::Json(json!({"subject": "s", "workspace_id": 9}))
    );
}

#[test]
fn header_injection_through_workspace_is_rejected() {
    let err = build_request(
        &tool("list_all_atomicwork_request_views"),
        &args(json!({"workspace_id": "7\r\nX-Evil: 1"})),
        &target(BASE),
    )
    .expect_err("rejected");
    assert!(matches!(err, BuildError::BadValue { ref name, .. } if name == "workspace_id"));
}

#[test]
fn path_default_from_schema() {
    let p = path_of(
        "list_all_atomicwork_requester_entities",
        json!({"request_id": "ITREQ-1"}),
    );
    assert_eq!(p.as_deref(), Ok("/api/v1/forms/REQUEST/requester/entities"));
    let p = path_of(
        "list_all_atomicwork_requester_entities",
        json!({"request_id": "ITREQ-1", "entity_type": "SERVICE_REQUEST"}),
    );
    assert_eq!(
        p.as_deref(),
        Ok("/api/v1/forms/SERVICE_REQUEST/requester/entities")
    );
}

#[test]
fn query_values_arrays_bools_numbers_and_page_default() {
    let t = custom_tool(json!({
        "name": "q_tool", "title": "Q", "description": "query test", "method": "list",
        "tags": ["t"], "http": "GET", "path": "/api/v1/q", "pageDefault": true,
        "fixedQuery": {"filter_name": "trash"},
        "params": [
            {"name": "ids", "in": "query", "schema": {"type": "array"}},
            {"name": "flag", "in": "query", "schema": {"type": "boolean"}},
            {"name": "ratio", "in": "query", "schema": {"type": "number"}},
            {"name": "text", "in": "query", "schema": {"type": "string"}},
            {"name": "page", "in": "query", "schema": {"type": "integer"}}
        ]
    }));
    let p = build_request(
        &t,
        &args(json!({"ids": [1, "b c"], "flag": false, "ratio": 2.5, "text": "a&b=c", "unknown": "x"})),
        &target(BASE),
    )
    .expect("builds");
    let q: Vec<(&str, &str)> = p
        .query
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    assert_eq!(
        q,
        [
            ("ids", "1"),
            ("ids", "b c"),
            ("flag", "false"),
            ("ratio", "2.5"),
            ("text", "a&b=c"),
            ("filter_name", "trash"),
            ("page", "1"),
        ]
    );
    assert_eq!(
        p.url,
        "https://acme.atomicwork.com/api/v1/q?ids=1&ids=b%20c&flag=false&ratio=2.5&text=a%26b%3Dc&filter_name=trash&page=1"
    );
    let given = build_request(&t, &args(json!({"page": 3})), &target(BASE)).expect("builds");
    let pages: Vec<&str> = given
        .query
        .iter()
        .filter(|(k, _)| k == "page")
        .map(|(_, v)| v.as_str())
        .collect();
    assert_eq!(pages, ["3"]);
}

#[test]
fn object_in_query_is_an_error() {
    let err = build_request(
        &tool("list_all_atomicwork_audit_logs"),
        &args(json!({"search_key": {"a": 1}})),
        &target(BASE),
    )
    .expect_err("object rejected");
    assert!(matches!(err, BuildError::BadValue { ref name, .. } if name == "search_key"));
    assert!(err.to_string().contains("cannot be an object"), "{err}");
}

#[test]
fn query_default_from_schema_fills_filter_name() {
    let p = build_request(
        &tool("list_all_atomicwork_requests_search"),
        &args(json!({})),
        &target(BASE),
    )
    .expect("builds");
    assert_eq!(
        p.url,
        "https://acme.atomicwork.com/api/v1/workspaces/7/requests/list?filter_name=all&page=1"
    );
    assert_eq!(p.body, PreparedBody::Json(json!([])));
}

#[test]
fn additional_body_passes_undeclared_fields_and_others_are_dropped() {
    let p = build_request(
        &tool("atomicwork_requests_number_partial_update"),
        &args(json!({"id": "ITREQ-1", "status": "OPEN", "custom_x": {"k": 1}})),
        &target(BASE),
    )
    .expect("builds");
    assert_eq!(
        p.body,
        PreparedBody::Json(json!({"status": "OPEN", "custom_x": {"k": 1}}))
    );
    let q = build_request(
        &tool("create_a_atomicwork_asset"),
        &args(json!({"asset_type_id": 1, "form_fields": {}, "stray": true})),
        &target(BASE),
    )
    .expect("builds");
    assert_eq!(
        q.body,
        PreparedBody::Json(json!({"asset_type_id": 1, "form_fields": {}}))
    );
}

#[test]
fn array_body_must_be_a_list() {
    let err = build_request(
        &tool("list_all_atomicwork_assets"),
        &args(json!({"body": {"attribute": "status"}})),
        &target(BASE),
    )
    .expect_err("object body rejected");
    assert!(matches!(err, BuildError::BadValue { ref name, .. } if name == "body"));
}

#[test]
fn base_url_with_trailing_slash_and_prefix() {
    let mut t = target("https://acme.atomicwork.com/");
    let p = build_request(
        &tool("list_all_atomicwork_request_views"),
        &args(json!({})),
        &t,
    )
    .expect("builds");
    assert_eq!(p.url, "https://acme.atomicwork.com/api/v1/views/REQUEST");
    t.base_url = BaseUrl::parse("http://gateway.local/atomicwork/").expect("base URL");
    let p = build_request(
        &tool("list_all_atomicwork_request_views"),
        &args(json!({})),
        &t,
    )
    .expect("builds");
    assert_eq!(
        p.url,
        "http://gateway.local/atomicwork/api/v1/views/REQUEST"
    );
}

#[test]
fn multipart_fields_and_files() {
    let p = build_request(
        &tool("create_a_atomicwork_change_management_changes_create_with_file"),
        &args(json!({
            "subject": "Patch",
            "requester": 42,
            "attachments": [file_arg("a.txt", Some("text/plain"), b"alpha"), file_arg("b.bin", None, &[0, 255])]
        })),
        &target(BASE),
    )
    .expect("builds");
    let PreparedBody::Multipart { fields, files } = p.body else {
        panic!("multipart body expected");
    };
    assert_eq!(
        fields,
        vec![
            ("requester".into(), "42".into()),
            ("subject".into(), "Patch".into())
        ]
    );
    assert_eq!(files.len(), 2);
    assert_eq!(
        (files[0].field.as_str(), files[0].filename.as_str()),
        ("attachments", "a.txt")
    );
    assert_eq!(files[0].content_type, "text/plain");
    assert_eq!(&files[0].bytes[..], b"alpha");
    assert_eq!(files[1].content_type, "application/octet-stream");
    assert_eq!(&files[1].bytes[..], &[0, 255]);
}

#[test]
fn multipart_arrays_repeat_and_objects_become_json_text() {
    let t = custom_tool(json!({
        "name": "mp", "title": "M", "description": "multipart test", "method": "create",
        "tags": ["t"], "http": "POST", "path": "/api/v1/mp", "body": "multipart",
        "params": [
            {"name": "tags", "in": "body", "schema": {"type": "array"}},
            {"name": "meta", "in": "body", "schema": {"type": "object"}},
            {"name": "flag", "in": "body", "schema": {"type": "boolean"}},
            {"name": "file", "in": "file", "kind": "file"}
        ]
    }));
    let p = build_request(
        &t,
        &args(json!({"tags": [1, "two", {"x": 3}], "meta": {"a": [1]}, "flag": true})),
        &target(BASE),
    )
    .expect("builds");
    let PreparedBody::Multipart { fields, files } = p.body else {
        panic!("multipart body expected");
    };
    let f: Vec<(&str, &str)> = fields
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    assert_eq!(
        f,
        [
            ("flag", "true"),
            ("meta", "{\"a\":[1]}"),
            ("tags", "1"),
            ("tags", "two"),
            ("tags", "{\"x\":3}")
        ]
    );
    assert!(files.is_empty());
}

#[test]
fn bad_base64_names_the_argument() {
    let err = build_request(
        &tool("create_a_atomicwork_attachment"),
        &args(json!({"file": {"filename": "x.txt", "content_base64": "not base64!"}})),
        &target(BASE),
    )
    .expect_err("bad base64");
    assert!(matches!(err, BuildError::BadFile { ref name, .. } if name == "file"));
    let text = err.to_string();
    assert!(
        text.contains("`file`") && text.contains("x.txt") && text.contains("base64"),
        "{text}"
    );
}

#[test]
fn base64_with_line_breaks_data_url_or_no_padding_decodes() {
    for encoded in ["aGVs\nbG8=", "data:text/plain;base64,aGVsbG8=", "aGVsbG8"] {
        let p = build_request(
            &tool("create_a_atomicwork_attachment"),
            &args(json!({"file": {"filename": "h.txt", "content_base64": encoded}})),
            &target(BASE),
        )
        .expect("builds");
        let PreparedBody::Multipart { files, .. } = p.body else {
            panic!("multipart body expected");
        };
        assert_eq!(&files[0].bytes[..], b"hello", "{encoded:?}");
    }
}

#[test]
fn file_name_with_control_characters_is_rejected() {
    let err = build_request(
        &tool("create_a_atomicwork_attachment"),
        &args(json!({"file": {"filename": "a\r\nContent-Type: x", "content_base64": "aGk="}})),
        &target(BASE),
    )
    .expect_err("rejected");
    assert!(matches!(err, BuildError::BadFile { .. }), "{err}");
}

#[test]
fn bad_content_type_is_rejected() {
    let err = build_request(
        &tool("create_a_atomicwork_attachment"),
        &args(json!({"file": {"filename": "a.txt", "content_type": "text", "content_base64": "aGk="}})),
        &target(BASE),
    )
    .expect_err("rejected");
    assert!(err.to_string().contains("media type"), "{err}");
}

#[test]
fn size_limits_name_the_file_and_the_limit() {
    let opts = UpstreamOptions {
        max_file_bytes: 4,
        max_upload_bytes: 6,
        ..UpstreamOptions::default()
    };
    let tool = tool("create_a_atomicwork_change_management_changes_create_with_file");
    let big = build_request(
        &tool,
        &args(json!({"subject": "s", "attachments": [file_arg("big.log", None, b"12345")]})),
        &target(BASE),
    )
    .expect("builds");
    let err = multipart::check_limits(&big.body, &opts).expect_err("file too large");
    assert_eq!(
        err,
        BuildError::FileTooLarge {
            name: "attachments".into(),
            filename: "big.log".into(),
            size: 5,
            limit: 4
        }
    );
    assert!(
        err.to_string().contains("big.log") && err.to_string().contains("4 bytes"),
        "{err}"
    );

    let many = build_request(
        &tool,
        &args(json!({"subject": "s", "attachments": [file_arg("a", None, b"1234"), file_arg("b", None, b"1234")]})),
        &target(BASE),
    )
    .expect("builds");
    let err = multipart::check_limits(&many.body, &opts).expect_err("upload too large");
    assert!(
        matches!(
            err,
            BuildError::UploadTooLarge {
                total: 8,
                limit: 6,
                ..
            }
        ),
        "{err}"
    );
    let small = build_request(
        &tool,
        &args(json!({"subject": "s", "attachments": [file_arg("a", None, b"12"), file_arg("b", None, b"1234")]})),
        &target(BASE),
    )
    .expect("builds");
    assert_eq!(multipart::check_limits(&small.body, &opts), Ok(()));
}
