//! The CRD as generated, committed and read back; example manifests through the real types.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;

use atomicwork_mcp::k8s::crd::{AtomicworkMcpServer, ToolExposure};
use atomicwork_mcp::local::manifest::{documents, manifest_files};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::CustomResourceExt;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn committed_crd_matches_the_types() {
    let committed =
        std::fs::read_to_string(root().join("crds/atomicworkmcpservers.mcp.atomicwork.dev.yaml"))
            .expect("committed CRD");
    assert_eq!(
        committed,
        atomicwork_mcp::cli::crd_yaml().expect("crd yaml"),
        "crds/ is stale: regenerate with `cargo run -- crd`"
    );
    let parsed: CustomResourceDefinition = serde_saphyr::from_str(&committed).expect("CRD parses");
    assert_eq!(parsed, AtomicworkMcpServer::crd());
}

#[test]
fn crd_is_structural_and_needs_no_new_api_server_features() {
    let crd = AtomicworkMcpServer::crd();
    let version = &crd.spec.versions[0];
    assert!(
        version
            .subresources
            .as_ref()
            .and_then(|s| s.status.as_ref())
            .is_some()
    );
    assert_eq!(
        crd.spec.names.short_names.as_deref(),
        Some(&["awmcp".to_string()][..])
    );
    let columns: Vec<_> = version
        .additional_printer_columns
        .iter()
        .flatten()
        .map(|c| c.name.as_str())
        .collect();
    for c in ["Ready", "Tools", "Expires", "Age"] {
        assert!(columns.contains(&c), "printer column {c}");
    }
    let yaml = atomicwork_mcp::cli::crd_yaml().expect("crd yaml");
    // Selectable fields need API servers newer than 1.24. CEL rules are kept only on the
    // spec, where an API server without them (1.24, feature gate off) drops them and the
    // controller applies the same checks: exactly two, both about `auth.oauth`.
    assert!(!yaml.contains("selectableFields"));
    assert_eq!(yaml.matches("x-kubernetes-validations").count(), 1);
    let rules = version
        .schema
        .as_ref()
        .and_then(|s| s.open_api_v3_schema.as_ref())
        .and_then(|s| s.properties.as_ref())
        .and_then(|p| p.get("spec"))
        .and_then(|s| s.x_kubernetes_validations.clone())
        .unwrap_or_default();
    assert_eq!(rules.len(), 2);
    for rule in &rules {
        assert!(rule.rule.contains("self.auth.oauth"), "{}", rule.rule);
        assert!(
            rule.message
                .as_deref()
                .is_some_and(|m| m.contains("spec.auth.oauth"))
        );
    }
    // Structural: every object schema says its type.
    let schema = serde_json::to_value(&version.schema).expect("schema json");
    check_typed(&schema["openAPIV3Schema"], "openAPIV3Schema");
}

fn check_typed(schema: &serde_json::Value, at: &str) {
    let Some(obj) = schema.as_object() else {
        return;
    };
    if obj.contains_key("properties") || obj.contains_key("items") {
        assert!(obj.contains_key("type"), "{at} has no type");
    }
    for key in ["anyOf", "oneOf", "allOf"] {
        assert!(
            !obj.contains_key(key) || obj.contains_key("type"),
            "{at}.{key}"
        );
    }
    if let Some(props) = obj.get("properties").and_then(|p| p.as_object()) {
        for (name, sub) in props {
            check_typed(sub, &format!("{at}.{name}"));
        }
    }
    if let Some(items) = obj.get("items") {
        check_typed(items, &format!("{at}[]"));
    }
}

#[test]
fn field_descriptions_come_from_doc_comments() {
    let crd = AtomicworkMcpServer::crd();
    let schema = serde_json::to_value(&crd.spec.versions[0].schema).expect("schema");
    let methods = &schema["openAPIV3Schema"]["properties"]["spec"]["properties"]["methods"];
    let text = methods["description"].as_str().expect("description");
    assert!(
        text.contains("read") && text.contains("partial_update"),
        "{text}"
    );
    let exposure = &schema["openAPIV3Schema"]["properties"]["spec"]["properties"]["toolExposure"];
    // No default: unset means `all`, except for a complete server of more than 60 tools.
    assert_eq!(exposure["default"], serde_json::Value::Null);
    let text = exposure["description"].as_str().expect("description");
    assert!(text.contains("complete") && text.contains("60"), "{text}");
    let set = &schema["openAPIV3Schema"]["properties"]["spec"]["properties"]["toolSet"];
    assert_eq!(set["enum"], serde_json::json!(["curated", "complete"]));
    let text = set["description"].as_str().expect("description");
    assert!(
        text.contains("curated") && text.contains("published API"),
        "{text}"
    );
}

#[test]
fn manifest_round_trips_through_the_types() {
    let yaml = r#"
apiVersion: mcp.atomicwork.dev/v1alpha1
kind: AtomicworkMcpServer
metadata: { name: change-ops, namespace: it-ops }
spec:
  displayName: Change Ops
  atomicwork:
    baseUrl: https://acme.atomicwork.com
    apiKeySecretRef: { name: atomicwork-api }
    workspaceId: "12"
  methods: [read]
  tags: [changes, requests]
  tools: { deny: [delete_a_atomicwork_requests_number_by_id] }
  toolExposure: discovery
  expiresAt: "2026-12-31T23:59:59Z"
  requireApiTokenAuth: true
  apiTokenSecretRef: { name: mcp-client-tokens }
  dryRun: true
  rateLimit: { requestsPerMinute: 120, burst: 20 }
  suspend: false
"#;
    let server: AtomicworkMcpServer = serde_saphyr::from_str(yaml).expect("parses");
    assert_eq!(
        server.spec.atomicwork.api_key_secret_ref.key, "apiKey",
        "key defaults"
    );
    assert_eq!(server.spec.tool_exposure, Some(ToolExposure::Discovery));
    assert_eq!(server.spec.rate_limit.map(|r| r.burst), Some(Some(20)));
    let again: AtomicworkMcpServer =
        serde_saphyr::from_str(&serde_saphyr::to_string(&server).expect("serialises"))
            .expect("reparses");
    assert_eq!(again.spec, server.spec);
}

#[test]
fn unknown_enum_values_are_rejected() {
    let yaml = r#"
apiVersion: mcp.atomicwork.dev/v1alpha1
kind: AtomicworkMcpServer
metadata: { name: x }
spec:
  atomicwork: { baseUrl: "https://a.atomicwork.com", apiKeySecretRef: { name: s } }
  toolExposure: everything
"#;
    assert!(serde_saphyr::from_str::<AtomicworkMcpServer>(yaml).is_err());
}

#[test]
fn every_example_server_deserializes_and_resolves_its_filters() {
    let catalog = atomicwork_mcp::core::catalog::Catalog::builtin().expect("catalog");
    let files = manifest_files(&root().join("examples")).expect("examples");
    let mut servers = 0;
    for file in files {
        let text = std::fs::read_to_string(&file).expect("read");
        for doc in documents(&text)
            .iter()
            .filter(|d| d.contains("kind: AtomicworkMcpServer"))
        {
            let server: AtomicworkMcpServer =
                serde_saphyr::from_str(doc).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
            let f = atomicwork_mcp::k8s::resolve::tool_filter(&server);
            let tools = atomicwork_mcp::core::catalog::filter(&catalog, &f)
                .unwrap_or_else(|e| panic!("{}: {e}", file.display()));
            assert!(!tools.is_empty(), "{}: no tools", file.display());
            // Tool overrides apply too.
            let names: Vec<String> = tools.iter().map(|t| t.name().to_string()).collect();
            let overrides = atomicwork_mcp::k8s::resolve::tool_overrides_of(&server);
            catalog
                .shaped_tool_set(f.set, &names, &overrides)
                .unwrap_or_else(|e| panic!("{}: {e}", file.display()));
            servers += 1;
        }
    }
    assert!(servers >= 3, "examples hold {servers} servers");
}
