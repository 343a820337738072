//! Tests of the generator and of the committed complete-set data.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Value, json};

use super::*;
use crate::core::catalog::{Catalog, ToolSetKind};

/// `METHOD /path` with every placeholder written `{}`, so paths compare whatever the
/// placeholders are called.
fn wire_key(method: &str, path: &str) -> String {
    let mut out = String::new();
    let mut depth = 0;
    for c in path.chars() {
        match c {
            '{' => {
                depth += 1;
                out.push('{');
            }
            '}' => {
                depth -= 1;
                out.push('}');
            }
            _ if depth > 0 => {}
            c => out.push(c),
        }
    }
    format!("{method} {out}")
}

fn committed_operations() -> Operations {
    serde_json::from_str(OPERATIONS_JSON).expect("operations.json parses")
}

fn complete() -> Catalog {
    Catalog::builtin().expect("built-in catalog loads")
}

#[test]
fn the_committed_tool_data_is_what_the_generator_makes() {
    let generated = complete_from(OPERATIONS_JSON).expect("the generator runs");
    assert!(
        generated == TOOLS_JSON,
        "{TOOLS_PATH} differs from what the generator makes from {OPERATIONS_PATH} and \
         {CURATION_PATH}; run `cargo xtask catalog` and commit the result"
    );
}

#[test]
fn every_operation_becomes_exactly_one_tool_with_its_method_and_path() {
    let ops = committed_operations();
    assert!(
        ops.operations.len() >= 100,
        "the reduced description holds the whole API ({} operations)",
        ops.operations.len()
    );
    let expected: BTreeMap<String, usize> = ops
        .operations
        .iter()
        .map(|o| (wire_key(o.method.as_str(), &o.path), 1))
        .collect();
    assert_eq!(
        expected.len(),
        ops.operations.len(),
        "operations are unique"
    );
    let catalog = complete();
    let mut listed: BTreeMap<String, usize> = BTreeMap::new();
    for tool in catalog.tools_of(ToolSetKind::Complete) {
        *listed
            .entry(wire_key(tool.source.http.as_str(), &tool.source.path))
            .or_default() += 1;
    }
    assert_eq!(listed, expected);
}

#[test]
fn complete_tools_meet_the_quality_bar() {
    let catalog = complete();
    let families = super::NAME_FAMILIES;
    for tool in catalog.tools_of(ToolSetKind::Complete) {
        let s = &tool.source;
        let name = tool.name();
        assert!(
            families.iter().any(|f| name.starts_with(f)),
            "{name} is in a naming family"
        );
        assert!(
            name.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'),
            "{name} is snake_case"
        );
        let expected_prefix = match s.method.as_str() {
            "list" => "list_all_atomicwork_",
            "get" => "get_single_atomicwork_",
            "create" => "create_a_atomicwork_",
            "update" => "update_a_atomicwork_",
            "delete" => "delete_a_atomicwork_",
            _ => "atomicwork_",
        };
        assert!(
            name.starts_with(expected_prefix),
            "{name}: method {} belongs to the family {expected_prefix}",
            s.method
        );
        assert!(s.title.len() >= 8, "{name} has a title");
        assert!(
            s.description.len() >= 60 && s.description.ends_with('.'),
            "{name} has a description of its own: {:?}",
            s.description
        );
        for p in s.params.iter().filter(|p| p.location == Location::Path) {
            assert!(
                mentions(&s.description, &p.name),
                "{name}: the description names the id it needs, {}",
                p.name
            );
        }
        let read = tool.is_read();
        assert_eq!(tool.annotations.read_only_hint, read, "{name}");
        if read {
            assert!(!tool.annotations.destructive_hint, "{name}");
        }
        if s.method == "delete" {
            assert!(tool.annotations.destructive_hint, "{name}");
        }
        assert!(
            tool.input_schema["properties"].is_object(),
            "{name} has an input schema"
        );
        // Every tool the texts point to is in the complete set too.
        let texts = std::iter::once(s.description.as_str())
            .chain(s.params.iter().map(|p| p.description.as_str()));
        for text in texts {
            for word in text.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')) {
                let names_tool = families.iter().any(|f| word.starts_with(f))
                    && word.contains("atomicwork_")
                    && word.len() > "atomicwork_".len();
                if names_tool {
                    assert!(
                        catalog.get_in(ToolSetKind::Complete, word).is_some(),
                        "{name} points to {word}, which the complete set does not have"
                    );
                }
            }
        }
    }
}

#[test]
fn curated_tools_keep_their_names_and_take_the_published_path() {
    let ops = committed_operations();
    let published: BTreeSet<String> = ops
        .operations
        .iter()
        .map(|o| wire_key(o.method.as_str(), &o.path))
        .collect();
    let catalog = complete();
    let mut mapped = 0;
    for curated in catalog.tools_of(ToolSetKind::Curated) {
        let key = wire_key(curated.source.http.as_str(), &curated.source.path);
        if !published.contains(&key) {
            continue;
        }
        mapped += 1;
        let complete_tools: Vec<_> = catalog
            .tools_of(ToolSetKind::Complete)
            .iter()
            .filter(|t| wire_key(t.source.http.as_str(), &t.source.path) == key)
            .collect();
        assert_eq!(complete_tools.len(), 1, "{key}");
        let tool = complete_tools[0];
        // Two curated tools name the same operation in three cases; the complete set
        // keeps one of them.
        if tool.name() != curated.name() {
            assert!(
                [
                    "list_all_atomicwork_assets_search",
                    "get_single_atomicwork_requests_id_by_id",
                    "list_all_atomicwork_request_trash"
                ]
                .contains(&curated.name()),
                "{} maps to {key}, which the complete set calls {}",
                curated.name(),
                tool.name()
            );
            continue;
        }
        assert_eq!(tool.source.tags.first(), curated.source.tags.first());
    }
    assert!(mapped >= 24, "{mapped} curated tools map to operations");
}

#[test]
fn the_published_examples_validate_against_the_tool_schemas() {
    let ops = committed_operations();
    let catalog = complete();
    let mut checked = 0;
    for op in ops.operations.iter().filter(|o| !o.examples.is_empty()) {
        let key = wire_key(op.method.as_str(), &op.path);
        let tool = catalog
            .tools_of(ToolSetKind::Complete)
            .iter()
            .find(|t| wire_key(t.source.http.as_str(), &t.source.path) == key)
            .expect("a tool per operation");
        for example in &op.examples {
            let argument = example_argument(tool, example);
            let schema = &tool.input_schema["properties"][argument];
            let validator = jsonschema::validator_for(schema).expect("schema compiles");
            let errors: Vec<String> = validator
                .iter_errors(example)
                .map(|e| e.to_string())
                .collect();
            assert!(errors.is_empty(), "{}: {errors:?}", tool.name());
            // The whole call validates too, with the example as that argument.
            let mut args = serde_json::Map::new();
            args.insert(argument.to_string(), example.clone());
            assert_eq!(tool.validate(&args), Ok(()), "{}", tool.name());
            checked += 1;
        }
    }
    assert!(checked >= 5, "{checked} examples checked");
}

/// The argument a body example is for: the bare-array body, or the `filters` field.
fn example_argument(tool: &crate::core::catalog::Tool, example: &Value) -> &'static str {
    if tool.source.body == BodyEncoding::Array {
        "body"
    } else if example.is_array() && tool.param("filters").is_some() {
        "filters"
    } else {
        panic!("{}: no argument takes the example {example}", tool.name())
    }
}

#[test]
fn a_filter_schema_rejects_what_the_api_does_not_accept() {
    let catalog = complete();
    let tool = catalog
        .get_in(ToolSetKind::Complete, "list_all_atomicwork_requests")
        .expect("tool");
    let bad_operator = json!({"body": [{"attribute": "status", "operator": "LIKE", "values": [{"value": "OPEN"}]}]});
    let errors = tool
        .validate(bad_operator.as_object().expect("object"))
        .expect_err("LIKE is not an operator");
    assert!(errors.iter().any(|e| e.contains("body")), "{errors:?}");
    let not_a_list = json!({"body": {"attribute": "status"}});
    assert!(
        tool.validate(not_a_list.as_object().expect("object"))
            .is_err()
    );
}

// ---------------------------------------------------------------------------------------
// The generator on small inputs: its rules and its failures.
// ---------------------------------------------------------------------------------------

const MINI_SPEC: &str = r##"
openapi: 3.1.0
paths:
  /api/v1/widgets/{widgetId}:
    get:
      operationId: get-widget
      summary: Text that must not be kept
      description: |
        Returns a widget. Example body:

        ```json
        [{"attribute": "color", "operator": "EQUALS", "values": [{"value": "red"}]}]
        ```
      tags: [widgets]
      parameters:
        - name: X-Api-Key
          in: header
          required: true
          schema: {type: string}
        - name: widgetId
          in: path
          required: true
          description: prose to drop
          schema: {type: integer, format: int64}
        - name: expand
          in: query
          schema: {$ref: '#/components/schemas/Expand'}
  /api/v1/workspaces/{id}/widgets:
    post:
      operationId: create-widget
      tags: [widgets]
      parameters:
        - name: id
          in: path
          required: true
          schema: {type: integer}
      requestBody:
        content:
          multipart/form-data:
            schema:
              type: object
              required: [name]
              properties:
                name: {type: string, description: words}
                photo: {type: string, format: binary}
                more: {type: array, items: {type: string, format: binary}}
                node: {$ref: '#/components/schemas/Node'}
components:
  schemas:
    Expand:
      type: string
      enum: [PARTS, OWNER]
      description: also dropped
    Node:
      type: object
      properties:
        child: {$ref: '#/components/schemas/Node'}
"##;

const MINI_CURATION: &str = r#"
tags: { widgets: widgets }
params: { expand: What to include. }
idSources: {}
operations:
  GET /api/v1/widgets/{widgetId}:
    name: get_single_atomicwork_widget_by_id
    method: get
    title: Get a widget
    description: Returns one widget by its id.
  POST /api/v1/workspaces/{id}/widgets:
    name: create_a_atomicwork_widget
    method: create
    title: Create a widget
    description: Creates a widget in a workspace.
"#;

#[test]
fn reducing_a_document_keeps_structure_and_drops_prose() {
    let ops = reduce_spec(MINI_SPEC).expect("reduces");
    let text = serde_json::to_string(&ops).expect("serialises");
    for prose in [
        "Text that must not",
        "prose to drop",
        "also dropped",
        "words",
        "operationId",
        "get-widget",
    ] {
        assert!(!text.contains(prose), "{prose:?} was kept: {text}");
    }
    let get = &ops.operations[0];
    assert_eq!(get.key(), "GET /api/v1/widgets/{widgetId}");
    assert_eq!(get.params.len(), 2, "the API key header is left out");
    assert_eq!(
        get.params[1].schema,
        json!({"type": "string", "enum": ["PARTS", "OWNER"]})
    );
    assert_eq!(
        get.examples,
        vec![json!([{"attribute": "color", "operator": "EQUALS", "values": [{"value": "red"}]}])]
    );
    let post = &ops.operations[1];
    let body = post.body.as_ref().expect("body");
    assert_eq!(body.content_type, "multipart/form-data");
    // The self-referencing schema ends in an open schema instead of looping.
    assert_eq!(
        body.schema["properties"]["node"],
        json!({"type": "object", "properties": {"child": {}}})
    );
}

#[test]
fn generating_applies_the_naming_and_argument_rules() {
    let ops = reduce_spec(MINI_SPEC).expect("reduces");
    let tools = sources_with(&ops, MINI_CURATION, &[]).expect("generates");
    let get = tools
        .iter()
        .find(|t| t.name == "get_single_atomicwork_widget_by_id")
        .expect("get");
    assert_eq!(
        get.path, "/api/v1/widgets/{id}",
        "the addressed record's id is `id`"
    );
    assert_eq!(get.params[0].name, "id");
    assert!(get.params[0].required);
    assert_eq!(get.params[1].description, "What to include.");
    assert!(
        get.description.ends_with("Needs id."),
        "{}",
        get.description
    );
    let post = tools
        .iter()
        .find(|t| t.name == "create_a_atomicwork_widget")
        .expect("create");
    assert_eq!(post.path, "/api/v1/workspaces/{workspace_id}/widgets");
    assert_eq!(post.body, BodyEncoding::Multipart);
    let workspace = post
        .params
        .iter()
        .find(|p| p.name == WORKSPACE_ARG)
        .expect("workspace");
    assert!(!workspace.required, "the server's workspace fills it");
    let photo = post
        .params
        .iter()
        .find(|p| p.name == "photo")
        .expect("photo");
    assert_eq!(
        (photo.location, photo.kind),
        (Location::File, Some(ParamKind::File))
    );
    let more = post.params.iter().find(|p| p.name == "more").expect("more");
    assert_eq!(more.kind, Some(ParamKind::Files));
    let name = post.params.iter().find(|p| p.name == "name").expect("name");
    assert!(name.required && name.location == Location::Body);
    // The generated sources are valid catalog entries.
    Catalog::from_sources(tools).expect("the generated tools load");
}

#[test]
fn generating_fails_on_an_operation_without_curation_and_names_a_suggestion() {
    let ops = reduce_spec(MINI_SPEC).expect("reduces");
    let partial = MINI_CURATION
        .split("  POST /api/v1/workspaces")
        .next()
        .expect("head");
    let err = sources_with(&ops, partial, &[]).expect_err("missing curation");
    let text = err.to_string();
    assert!(
        text.contains("POST /api/v1/workspaces/{id}/widgets"),
        "{text}"
    );
    assert!(
        text.contains("create_a_atomicwork_workspaces_widgets"),
        "{text}"
    );
}

#[test]
fn generating_fails_on_curation_for_an_operation_that_does_not_exist() {
    let ops = reduce_spec(MINI_SPEC).expect("reduces");
    let extra = format!(
        "{MINI_CURATION}  DELETE /api/v1/widgets/{{widgetId}}:\n    name: delete_a_atomicwork_widget_by_id\n    method: delete\n    title: Delete\n    description: Deletes.\n"
    );
    let err = sources_with(&ops, &extra, &[]).expect_err("stale entry");
    assert!(
        err.to_string()
            .contains("DELETE /api/v1/widgets/{widgetId}"),
        "{err}"
    );
}

#[test]
fn generating_fails_on_an_unmapped_tag_and_a_repeated_name() {
    let ops = reduce_spec(MINI_SPEC).expect("reduces");
    let no_tag = MINI_CURATION.replace("tags: { widgets: widgets }", "tags: {}");
    let err = sources_with(&ops, &no_tag, &[]).expect_err("unmapped tag");
    assert!(err.to_string().contains("\"widgets\""), "{err}");
    let twice = MINI_CURATION.replace(
        "create_a_atomicwork_widget",
        "get_single_atomicwork_widget_by_id",
    );
    let err = sources_with(&ops, &twice, &[]).expect_err("name twice");
    assert!(err.to_string().contains("used twice"), "{err}");
}

#[test]
fn generating_fails_when_a_body_field_takes_an_argument_name() {
    let spec = MINI_SPEC.replace(
        "name: {type: string, description: words}",
        "workspace_id: {type: integer}",
    );
    let spec = spec.replace("required: [name]", "required: []");
    let ops = reduce_spec(&spec).expect("reduces");
    let err = sources_with(&ops, MINI_CURATION, &[]).expect_err("collision");
    assert!(err.to_string().contains("\"workspace_id\""), "{err}");
}

#[test]
fn reducing_fails_on_what_the_generator_cannot_represent() {
    let cookie = MINI_SPEC.replace(
        "in: header\n          required: true",
        "in: cookie\n          required: true",
    );
    assert!(
        reduce_spec(&cookie)
            .expect_err("cookie")
            .to_string()
            .contains("cookie")
    );
    let bad_ref = MINI_SPEC.replace(
        "#/components/schemas/Expand",
        "#/components/schemas/Missing",
    );
    assert!(
        reduce_spec(&bad_ref)
            .expect_err("ref")
            .to_string()
            .contains("Missing")
    );
    let xml = MINI_SPEC.replace("multipart/form-data:", "application/xml:");
    assert!(
        reduce_spec(&xml)
            .expect_err("xml")
            .to_string()
            .contains("application/xml")
    );
    let fence = MINI_SPEC.replace("        ```\n      tags", "      tags");
    assert!(
        reduce_spec(&fence)
            .expect_err("fence")
            .to_string()
            .contains("fence")
    );
    assert!(reduce_spec("paths: [").is_err());
}

// ---------------------------------------------------------------------------------------
// Against the published document itself (not in the repository).
// ---------------------------------------------------------------------------------------

/// The published document, from `AWMCP_OPENAPI_SPEC`.
fn published_spec() -> String {
    let path = std::env::var("AWMCP_OPENAPI_SPEC")
        .expect("set AWMCP_OPENAPI_SPEC to the Atomicwork OpenAPI document");
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {path}: {e}"))
}

#[test]
#[ignore = "needs Atomicwork's OpenAPI document, which the repository does not carry: set AWMCP_OPENAPI_SPEC and run with --ignored"]
fn the_published_document_reduces_to_the_committed_operations() {
    let generated = operations_from_spec(&published_spec()).expect("reduces");
    assert!(
        generated == OPERATIONS_JSON,
        "{OPERATIONS_PATH} differs from the published document; run `cargo xtask catalog --spec FILE`"
    );
}

#[test]
#[ignore = "needs Atomicwork's OpenAPI document, which the repository does not carry: set AWMCP_OPENAPI_SPEC and run with --ignored"]
fn the_complete_set_lists_every_published_operation_once_and_copies_no_prose() {
    let spec = published_spec();
    let doc: Value = serde_saphyr::from_str(&spec).expect("the document parses");
    let mut published: BTreeMap<String, usize> = BTreeMap::new();
    let mut prose = String::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for (verb, op) in item.as_object().expect("path item") {
            *published
                .entry(wire_key(&verb.to_ascii_uppercase(), path))
                .or_default() += 1;
            for key in ["summary", "description"] {
                if let Some(text) = op.get(key).and_then(Value::as_str) {
                    prose.push_str(text);
                    prose.push('\n');
                }
            }
        }
    }
    let catalog = complete();
    let mut listed: BTreeMap<String, usize> = BTreeMap::new();
    for tool in catalog.tools_of(ToolSetKind::Complete) {
        *listed
            .entry(wire_key(tool.source.http.as_str(), &tool.source.path))
            .or_default() += 1;
        for sentence in tool.source.description.split(". ") {
            let sentence = sentence.trim().trim_end_matches('.');
            if sentence.len() >= 40 {
                assert!(
                    !prose.contains(sentence),
                    "{}: the sentence {sentence:?} is the document's own",
                    tool.name()
                );
            }
        }
    }
    assert_eq!(listed, published);
}
