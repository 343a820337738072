//! Packaging checks that need no cluster: the Dockerfile, the kustomize base in deploy/,
//! the Helm chart's static parts and the example manifests. Rendering the chart with Helm
//! is `.ci/helm-lint`'s job.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use atomicwork_mcp::core::catalog::{Catalog, filter};
use atomicwork_mcp::k8s::crd::AtomicworkMcpServer;
use atomicwork_mcp::k8s::resolve::{ResolveOptions, resolve};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Container, Service};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::CustomResourceExt;
use serde::de::DeserializeOwned;
use serde_json::Value;

const CRD_FILE: &str = "crds/atomicworkmcpservers.mcp.atomicwork.dev.yaml";
const CHART: &str = "charts/atomicwork-mcp-operator";
const IMAGE: &str = "ghcr.io/atomicwork-mcp-operator/atomicwork-mcp";
const NAMESPACE: &str = "atomicwork-mcp";

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn read(rel: &str) -> String {
    std::fs::read_to_string(root().join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

/// Every document of a YAML stream, as JSON values (empty documents skipped).
fn docs_of(text: &str, what: &str) -> Vec<Value> {
    serde_saphyr::from_multiple::<Value>(text)
        .unwrap_or_else(|e| panic!("{what}: not valid YAML: {e}"))
        .into_iter()
        .filter(|d| !d.is_null())
        .collect()
}

fn docs(rel: &str) -> Vec<Value> {
    docs_of(&read(rel), rel)
}

fn yaml_files(dir: &Path, recurse: bool) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.expect("dir entry").path();
        if path.is_dir() {
            if recurse {
                out.extend(yaml_files(&path, true));
            }
        } else if path.extension().is_some_and(|e| e == "yaml" || e == "yml") {
            out.push(path);
        }
    }
    out.sort();
    out
}

fn rel(path: &Path) -> String {
    path.strip_prefix(root())
        .unwrap_or(path)
        .display()
        .to_string()
}

fn kind(doc: &Value) -> &str {
    doc["kind"].as_str().unwrap_or_default()
}

fn name(doc: &Value) -> &str {
    doc["metadata"]["name"].as_str().unwrap_or_default()
}

/// The path of the first part of `expected` that `actual` lacks or has differently.
fn missing_from(expected: &Value, actual: &Value, at: &str) -> Option<String> {
    match (expected, actual) {
        (Value::Object(e), Value::Object(a)) => e.iter().find_map(|(k, v)| match a.get(k) {
            Some(av) => missing_from(v, av, &format!("{at}.{k}")),
            None => Some(format!("{at}.{k}")),
        }),
        (Value::Array(e), Value::Array(a)) if e.len() == a.len() => e
            .iter()
            .zip(a)
            .enumerate()
            .find_map(|(i, (ev, av))| missing_from(ev, av, &format!("{at}[{i}]"))),
        (Value::Number(e), Value::Number(a)) if e.as_f64() == a.as_f64() => None,
        (e, a) if e == a => None,
        _ => Some(at.to_string()),
    }
}

/// Deserialises into the API type and back; every field written must survive, so a
/// misspelt or misplaced field (which the API server would drop or refuse) is caught.
fn typed<T: DeserializeOwned + serde::Serialize>(doc: &Value, what: &str) -> T {
    let typed: T = serde_json::from_value(doc.clone())
        .unwrap_or_else(|e| panic!("{what}: not a valid {}: {e}", kind(doc)));
    let back = serde_json::to_value(&typed).expect("serialises");
    if let Some(path) = missing_from(doc, &back, "") {
        panic!(
            "{what}: field {path} is not part of {} (misspelt or misplaced?)",
            kind(doc)
        );
    }
    typed
}

fn check_known_kind(doc: &Value, what: &str) {
    use k8s_openapi::api::core::v1 as core;
    use k8s_openapi::api::networking::v1 as net;
    use k8s_openapi::api::rbac::v1 as rbac;
    use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
    match (doc["apiVersion"].as_str().unwrap_or_default(), kind(doc)) {
        ("v1", "Namespace") => drop(typed::<core::Namespace>(doc, what)),
        ("v1", "ConfigMap") => drop(typed::<ConfigMap>(doc, what)),
        ("v1", "Secret") => drop(typed::<core::Secret>(doc, what)),
        ("v1", "Service") => drop(typed::<Service>(doc, what)),
        ("v1", "ServiceAccount") => drop(typed::<core::ServiceAccount>(doc, what)),
        ("apps/v1", "Deployment") => drop(typed::<Deployment>(doc, what)),
        ("policy/v1", "PodDisruptionBudget") => drop(typed::<PodDisruptionBudget>(doc, what)),
        ("rbac.authorization.k8s.io/v1", "ClusterRole") => {
            drop(typed::<rbac::ClusterRole>(doc, what))
        }
        ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding") => {
            drop(typed::<rbac::ClusterRoleBinding>(doc, what))
        }
        ("rbac.authorization.k8s.io/v1", "Role") => drop(typed::<rbac::Role>(doc, what)),
        ("rbac.authorization.k8s.io/v1", "RoleBinding") => {
            drop(typed::<rbac::RoleBinding>(doc, what))
        }
        ("networking.k8s.io/v1", "Ingress") => drop(typed::<net::Ingress>(doc, what)),
        ("networking.k8s.io/v1", "NetworkPolicy") => drop(typed::<net::NetworkPolicy>(doc, what)),
        ("apiextensions.k8s.io/v1", "CustomResourceDefinition") => {
            drop(typed::<CustomResourceDefinition>(doc, what))
        }
        ("mcp.atomicwork.dev/v1alpha1", "AtomicworkMcpServer") => {
            drop(typed::<AtomicworkMcpServer>(doc, what))
        }
        ("kustomize.config.k8s.io/v1beta1", "Kustomization") => {}
        (api, k) => panic!("{what}: unexpected object {api} {k}"),
    }
}

// ---------------------------------------------------------------------------------------
// Every manifest parses.

#[test]
fn every_manifest_under_deploy_examples_and_crds_parses_as_known_objects() {
    let mut files = yaml_files(&root().join("deploy"), true);
    files.extend(yaml_files(&root().join("examples"), true));
    files.extend(yaml_files(&root().join("crds"), true));
    files.extend(yaml_files(&root().join(CHART).join("crds"), true));
    assert!(files.len() >= 15, "found only {files:?}");
    for file in files {
        let what = rel(&file);
        let docs = docs(&what);
        assert!(!docs.is_empty(), "{what}: no documents");
        if is_catalog_override(&docs) {
            // A catalog override file for `--catalog`, not a Kubernetes manifest.
            Catalog::with_overrides(&read(&what), &what)
                .unwrap_or_else(|e| panic!("{what}: catalog override does not load: {e}"));
            continue;
        }
        for (i, doc) in docs.iter().enumerate() {
            let at = format!("{what} (document {})", i + 1);
            assert!(doc["apiVersion"].is_string(), "{at}: no apiVersion");
            assert!(doc["kind"].is_string(), "{at}: no kind");
            if kind(doc) != "Kustomization" {
                assert!(!name(doc).is_empty(), "{at}: no metadata.name");
            }
            check_known_kind(doc, &at);
        }
    }
}

// ---------------------------------------------------------------------------------------
// The CRD: one source in crds/, never a drifting copy.

#[test]
fn chart_crd_is_byte_identical_to_crds_dir() {
    let source = read(CRD_FILE);
    let chart_copy = read(&format!(
        "{CHART}/crds/atomicworkmcpservers.mcp.atomicwork.dev.yaml"
    ));
    assert!(
        source == chart_copy,
        "{CHART}/crds/ differs from {CRD_FILE}: copy it again with\n  cp {CRD_FILE} {CHART}/crds/"
    );
    let chart_crds = yaml_files(&root().join(CHART).join("crds"), true);
    assert_eq!(chart_crds.len(), 1, "{chart_crds:?}");
}

/// `kubectl apply -f crds/` reads every `.yaml`, `.yml` and `.json` file there and fails on
/// any document that is not an object the API server knows: crds/ holds nothing but the
/// generated CRDs, one file each, named after the CRD.
#[test]
fn crds_dir_holds_only_the_generated_crds() {
    let mut names = Vec::new();
    for entry in std::fs::read_dir(root().join("crds")).expect("crds/") {
        let path = entry.expect("entry").path();
        let what = rel(&path);
        assert!(path.is_file(), "{what}: crds/ holds files only");
        let docs = docs(&what);
        assert_eq!(docs.len(), 1, "{what}: one CRD per file");
        let doc = &docs[0];
        assert_eq!(
            (doc["apiVersion"].as_str(), kind(doc)),
            (Some("apiextensions.k8s.io/v1"), "CustomResourceDefinition"),
            "{what}: crds/ holds only CustomResourceDefinitions"
        );
        assert_eq!(
            path.file_name().and_then(|n| n.to_str()),
            Some(format!("{}.yaml", name(doc)).as_str()),
            "{what}: named after the CRD"
        );
        assert_eq!(
            read(&what),
            atomicwork_mcp::cli::crd_yaml().expect("crd yaml"),
            "{what} is not the `crd` command's output"
        );
        names.push(name(doc).to_string());
    }
    assert_eq!(names, [AtomicworkMcpServer::crd_name()]);
}

#[test]
fn deploy_crd_is_a_byte_identical_copy_of_crds_dir() {
    let kustomization = &docs("deploy/kustomization.yaml")[0];
    let resources = string_list(&kustomization["resources"]);
    assert!(resources.contains(&"crd.yaml".to_string()), "{resources:?}");
    assert!(
        read("deploy/crd.yaml") == read(CRD_FILE),
        "deploy/crd.yaml differs from {CRD_FILE}: copy it again with\n  cp {CRD_FILE} deploy/crd.yaml"
    );
    let crds: Vec<String> = yaml_files(&root().join("deploy"), true)
        .iter()
        .flat_map(|f| docs(&rel(f)))
        .filter(|d| kind(d) == "CustomResourceDefinition")
        .map(|d| name(&d).to_string())
        .collect();
    assert_eq!(
        crds,
        [AtomicworkMcpServer::crd_name()],
        "one CRD in deploy/"
    );
}

fn string_list(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

// ---------------------------------------------------------------------------------------
// deploy/: the kustomize base.

fn rbac_landed() -> bool {
    let present = root().join("deploy/rbac.yaml").exists();
    if !present {
        println!("note: deploy/rbac.yaml does not exist yet; checks that need it are skipped");
    }
    present
}

#[test]
fn kustomizations_list_files_that_exist() {
    for (dir, file) in [("deploy", "kustomization.yaml")] {
        let k = &docs(&format!("{dir}/{file}"))[0];
        let resources = string_list(&k["resources"]);
        assert!(!resources.is_empty(), "{dir}/{file} lists nothing");
        for r in resources {
            let path = root().join(dir).join(&r);
            if r == "rbac.yaml" && dir == "deploy" && !rbac_landed() {
                continue;
            }
            let is_kustomization = ["kustomization.yaml", "kustomization.yml"]
                .iter()
                .any(|k| path.join(k).is_file());
            assert!(
                path.is_file() || is_kustomization,
                "{dir}/{file} lists {r}, which is neither a file nor a kustomization directory"
            );
        }
    }
    // And every manifest in deploy/ is listed, so none is silently left out.
    let listed: BTreeSet<String> = string_list(&docs("deploy/kustomization.yaml")[0]["resources"])
        .into_iter()
        .collect();
    for file in yaml_files(&root().join("deploy"), false) {
        let f = file
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default()
            .to_string();
        assert!(
            f == "kustomization.yaml" || listed.contains(&f),
            "deploy/{f} is not listed in deploy/kustomization.yaml"
        );
    }
}

/// Every object of the base, by kind and name.
fn deploy_objects() -> BTreeMap<(String, String), Value> {
    let mut out = BTreeMap::new();
    for file in yaml_files(&root().join("deploy"), false) {
        for doc in docs(&rel(&file)) {
            if kind(&doc) != "Kustomization" {
                out.insert((kind(&doc).to_string(), name(&doc).to_string()), doc);
            }
        }
    }
    out
}

fn deploy_object<T: DeserializeOwned>(kind: &str, name: &str) -> T {
    let objects = deploy_objects();
    let doc = objects
        .get(&(kind.to_string(), name.to_string()))
        .unwrap_or_else(|| panic!("deploy/ has no {kind} {name}"));
    serde_json::from_value(doc.clone()).unwrap_or_else(|e| panic!("{kind} {name}: {e}"))
}

fn env_from_field(c: &Container, var: &str) -> Option<String> {
    c.env
        .iter()
        .flatten()
        .find(|e| e.name == var)
        .and_then(|e| e.value_from.as_ref())
        .and_then(|v| v.field_ref.as_ref())
        .map(|f| f.field_path.clone())
}

fn env_from_config_map(c: &Container, var: &str) -> Option<(String, String)> {
    c.env
        .iter()
        .flatten()
        .find(|e| e.name == var)
        .and_then(|e| e.value_from.as_ref())
        .and_then(|v| v.config_map_key_ref.as_ref())
        .map(|r| (r.name.clone(), r.key.clone()))
}

/// What every Deployment of the operator must carry, whichever way it is installed.
fn check_deployment(d: &Deployment, liveness_port: &str) {
    let name = d.metadata.name.clone().unwrap_or_default();
    let spec = &d.spec;
    let pod = spec.template.spec.as_ref().expect("pod spec");
    let psc = pod.security_context.as_ref().expect("pod securityContext");
    assert_eq!(psc.run_as_non_root, Some(true), "{name}: runAsNonRoot");
    assert_eq!(psc.run_as_user, Some(65532), "{name}: runAsUser");
    assert_eq!(
        psc.seccomp_profile.as_ref().map(|s| s.type_.as_str()),
        Some("RuntimeDefault"),
        "{name}: pod seccompProfile"
    );
    assert_eq!(pod.containers.len(), 1, "{name}: one container");
    let c = &pod.containers[0];
    let sc = c
        .security_context
        .as_ref()
        .expect("container securityContext");
    assert_eq!(sc.run_as_non_root, Some(true), "{name}: runAsNonRoot");
    assert_eq!(
        sc.read_only_root_filesystem,
        Some(true),
        "{name}: readOnlyRootFilesystem"
    );
    assert_eq!(
        sc.allow_privilege_escalation,
        Some(false),
        "{name}: allowPrivilegeEscalation"
    );
    assert_eq!(
        sc.capabilities.as_ref().and_then(|c| c.drop.clone()),
        Some(vec!["ALL".to_string()]),
        "{name}: capabilities drop ALL"
    );
    assert_eq!(
        sc.seccomp_profile.as_ref().map(|s| s.type_.as_str()),
        Some("RuntimeDefault"),
        "{name}: container seccompProfile"
    );
    for (probe, path) in [
        (&c.liveness_probe, "/healthz"),
        (&c.readiness_probe, "/readyz"),
    ] {
        let get = probe
            .as_ref()
            .and_then(|p| p.http_get.as_ref())
            .unwrap_or_else(|| panic!("{name}: no HTTP probe for {path}"));
        assert_eq!(get.path.as_deref(), Some(path), "{name}: probe path");
        assert_eq!(
            get.port,
            IntOrString::String(liveness_port.into()),
            "{name}: probe port"
        );
        assert!(
            c.ports
                .iter()
                .flatten()
                .any(|p| p.name.as_deref() == Some(liveness_port)),
            "{name}: probe port {liveness_port} is not a container port"
        );
    }
    let res = c.resources.as_ref().expect("resources");
    for key in ["cpu", "memory"] {
        assert!(
            res.requests.as_ref().is_some_and(|r| r.contains_key(key)),
            "{name}: requests.{key}"
        );
        assert!(
            res.limits.as_ref().is_some_and(|r| r.contains_key(key)),
            "{name}: limits.{key}"
        );
    }
    assert_eq!(
        env_from_field(c, "POD_NAMESPACE").as_deref(),
        Some("metadata.namespace"),
        "{name}: POD_NAMESPACE from the downward API"
    );
    assert!(
        c.image
            .as_deref()
            .is_some_and(|i| i == format!("{IMAGE}:0.1.0")),
        "{name}: image {:?}",
        c.image
    );
    // Selector, pod labels and the ServiceAccount line up.
    let selector = spec.selector.match_labels.clone().unwrap_or_default();
    let labels = spec
        .template
        .metadata
        .as_ref()
        .and_then(|m| m.labels.clone())
        .unwrap_or_default();
    assert!(!selector.is_empty());
    for (k, v) in &selector {
        assert_eq!(labels.get(k), Some(v), "{name}: pod label {k}");
    }
    assert_eq!(
        pod.service_account_name.as_deref(),
        Some(name.as_str()),
        "{name}: runs as ServiceAccount {name}"
    );
}

fn container(d: &Deployment) -> &Container {
    &d.spec.template.spec.as_ref().expect("pod").containers[0]
}

#[test]
fn deploy_controller_runs_two_leader_elected_replicas_with_the_public_url_from_the_config_map() {
    let d: Deployment = deploy_object("Deployment", "atomicwork-mcp-controller");
    assert_eq!(d.metadata.namespace.as_deref(), Some(NAMESPACE));
    assert_eq!(d.spec.replicas, Some(2));
    check_deployment(&d, "metrics");
    let c = container(&d);
    let args = c.args.clone().unwrap_or_default();
    assert_eq!(args[0], "controller");
    assert!(
        args.contains(&"--public-url=$(PUBLIC_URL)".to_string()),
        "{args:?}"
    );
    assert_eq!(
        env_from_config_map(c, "PUBLIC_URL"),
        Some(("atomicwork-mcp-config".into(), "publicUrl".into()))
    );
    let cm: ConfigMap = deploy_object("ConfigMap", "atomicwork-mcp-config");
    let url = cm
        .data
        .as_ref()
        .and_then(|d| d.get("publicUrl"))
        .expect("publicUrl key");
    assert!(url.starts_with("https://"), "{url}");
    assert!(
        c.ports
            .iter()
            .flatten()
            .any(|p| p.container_port == 9090 && p.name.as_deref() == Some("metrics"))
    );
    // The public URL is set in exactly one place.
    let everywhere: Vec<String> = deploy_objects()
        .values()
        .map(|d| serde_json::to_string(d).expect("json"))
        .filter(|s| s.contains("mcp.example.com"))
        .collect();
    assert_eq!(everywhere.len(), 1, "public URL written more than once");
}

#[test]
fn deploy_dataplane_runs_two_replicas_behind_a_port_80_service() {
    let d: Deployment = deploy_object("Deployment", "atomicwork-mcp-dataplane");
    assert_eq!(d.metadata.namespace.as_deref(), Some(NAMESPACE));
    assert_eq!(d.spec.replicas, Some(2));
    check_deployment(&d, "http");
    let c = container(&d);
    assert_eq!(c.args.as_ref().map(|a| a[0].as_str()), Some("dataplane"));
    assert!(
        c.ports
            .iter()
            .flatten()
            .any(|p| p.container_port == 8080 && p.name.as_deref() == Some("http"))
    );
    let svc: Service = deploy_object("Service", "atomicwork-mcp-dataplane");
    let port = &svc
        .spec
        .as_ref()
        .expect("spec")
        .ports
        .as_ref()
        .expect("ports")[0];
    assert_eq!(port.port, 80);
    assert_eq!(port.target_port, Some(IntOrString::String("http".into())));
}

fn env_value(c: &Container, var: &str) -> Option<String> {
    c.env
        .iter()
        .flatten()
        .find(|e| e.name == var)
        .and_then(|e| e.value.clone())
}

/// Kubernetes kills a pod `terminationGracePeriodSeconds` after SIGTERM (30 s unless
/// set); the data plane drains requests that may run up to its request deadline.
#[test]
fn deploy_dataplane_grace_period_covers_the_request_deadline_and_the_drain() {
    let d: Deployment = deploy_object("Deployment", "atomicwork-mcp-dataplane");
    let deadline: i64 = env_value(container(&d), "REQUEST_TIMEOUT_SECONDS")
        .expect("REQUEST_TIMEOUT_SECONDS set on the data plane")
        .parse()
        .expect("a number of seconds");
    let grace = d
        .spec
        .template
        .spec
        .as_ref()
        .and_then(|p| p.termination_grace_period_seconds)
        .unwrap_or(30);
    assert!(
        grace >= deadline + 30,
        "terminationGracePeriodSeconds {grace} does not cover the {deadline} s deadline plus 30 s of drain"
    );
}

/// The Lease is owned by the controller Deployment (deleting it deletes the Lease): the
/// controller is told its Deployment's name, which must be the Deployment's own.
#[test]
fn deploy_controller_names_its_own_deployment_as_the_lease_owner() {
    let d: Deployment = deploy_object("Deployment", "atomicwork-mcp-controller");
    assert_eq!(
        env_value(container(&d), "LEASE_OWNER_DEPLOYMENT"),
        d.metadata.name
    );
}

/// Only the leader reconciles, so a Service in front of the controller pods would hand a
/// scrape to the leader or the standby at random: the controller is scraped per pod.
#[test]
fn deploy_controller_metrics_are_scraped_per_pod() {
    let d: Deployment = deploy_object("Deployment", "atomicwork-mcp-controller");
    let template = d.spec.template.metadata.clone().unwrap_or_default();
    let pod_labels = template.labels.unwrap_or_default();
    for ((kind, name), doc) in deploy_objects() {
        if kind != "Service" {
            continue;
        }
        let svc: Service = serde_json::from_value(doc).expect("Service");
        let selector = svc.spec.and_then(|s| s.selector).unwrap_or_default();
        assert!(
            !selector.iter().all(|(k, v)| pod_labels.get(k) == Some(v)),
            "Service {name} balances across the controller's leader and standby"
        );
    }
    let annotations = template.annotations.unwrap_or_default();
    let get = |k: &str| annotations.get(k).map(String::as_str);
    assert_eq!(get("prometheus.io/scrape"), Some("true"));
    assert_eq!(get("prometheus.io/path"), Some("/metrics"));
    let port: i32 = get("prometheus.io/port")
        .and_then(|p| p.parse().ok())
        .expect("prometheus.io/port");
    assert!(
        container(&d)
            .ports
            .iter()
            .flatten()
            .any(|p| p.container_port == port && p.name.as_deref() == Some("metrics")),
        "the scraped port is the metrics port"
    );
}

#[test]
fn deploy_services_and_disruption_budgets_select_their_pods() {
    for part in ["controller", "dataplane"] {
        let d: Deployment = deploy_object("Deployment", &format!("atomicwork-mcp-{part}"));
        let pod_labels = d
            .spec
            .template
            .metadata
            .as_ref()
            .and_then(|m| m.labels.clone())
            .unwrap_or_default();
        let selects = |sel: &BTreeMap<String, String>| {
            !sel.is_empty() && sel.iter().all(|(k, v)| pod_labels.get(k) == Some(v))
        };
        let pdb: PodDisruptionBudget =
            deploy_object("PodDisruptionBudget", &format!("atomicwork-mcp-{part}"));
        let spec = pdb.spec.expect("pdb spec");
        assert!(
            selects(
                &spec
                    .selector
                    .and_then(|s| s.match_labels)
                    .unwrap_or_default()
            ),
            "PDB {part}"
        );
        assert!(spec.max_unavailable.is_some() || spec.min_available.is_some());
    }
    let d: Deployment = deploy_object("Deployment", "atomicwork-mcp-dataplane");
    let pod_labels = d
        .spec
        .template
        .metadata
        .as_ref()
        .and_then(|m| m.labels.clone())
        .unwrap_or_default();
    let svc: Service = deploy_object("Service", "atomicwork-mcp-dataplane");
    let selector = svc.spec.and_then(|s| s.selector).unwrap_or_default();
    assert!(
        !selector.is_empty() && selector.iter().all(|(k, v)| pod_labels.get(k) == Some(v)),
        "Service atomicwork-mcp-dataplane"
    );
}

#[test]
fn deploy_namespace_enforces_the_restricted_pod_security_standard() {
    let objects = deploy_objects();
    let ns = &objects[&("Namespace".to_string(), NAMESPACE.to_string())];
    assert_eq!(
        ns["metadata"]["labels"]["pod-security.kubernetes.io/enforce"],
        "restricted"
    );
    for ((kind, name), doc) in &objects {
        if !matches!(
            kind.as_str(),
            "Namespace" | "ClusterRole" | "ClusterRoleBinding" | "CustomResourceDefinition"
        ) {
            assert_eq!(doc["metadata"]["namespace"], NAMESPACE, "{kind} {name}");
        }
    }
}

/// `kubectl kustomize deploy/` (kustomize built into kubectl) where kubectl is installed.
/// Runs on a copy, with a stand-in rbac.yaml while the real one has not landed.
#[test]
fn kubectl_kustomize_builds_the_base() {
    if std::process::Command::new("kubectl")
        .arg("version")
        .arg("--client")
        .output()
        .is_err()
    {
        println!("note: kubectl is not installed; kustomize build skipped");
        return;
    }
    let tmp = tempfile::tempdir().expect("tempdir");
    for dir in ["deploy"] {
        std::fs::create_dir(tmp.path().join(dir)).expect("mkdir");
        for file in std::fs::read_dir(root().join(dir)).expect("read dir") {
            let path = file.expect("entry").path();
            if path.is_file() {
                std::fs::copy(
                    &path,
                    tmp.path().join(dir).join(path.file_name().expect("name")),
                )
                .expect("copy");
            }
        }
    }
    if !rbac_landed() {
        std::fs::write(
            tmp.path().join("deploy/rbac.yaml"),
            "apiVersion: v1\nkind: ServiceAccount\nmetadata: {name: stand-in, namespace: atomicwork-mcp}\n",
        )
        .expect("write");
    }
    let out = std::process::Command::new("kubectl")
        .arg("kustomize")
        .arg(tmp.path().join("deploy"))
        .output()
        .expect("kubectl runs");
    assert!(
        out.status.success(),
        "kubectl kustomize deploy/ failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let built = docs_of(&String::from_utf8_lossy(&out.stdout), "kustomize output");
    let count = |k: &str| built.iter().filter(|d| kind(d) == k).count();
    assert_eq!(count("Namespace"), 1);
    assert_eq!(count("CustomResourceDefinition"), 1);
    assert_eq!(count("ConfigMap"), 1);
    assert_eq!(count("Deployment"), 2);
    assert_eq!(count("Service"), 1);
    assert_eq!(count("PodDisruptionBudget"), 2);
    let crd = built
        .iter()
        .find(|d| kind(d) == "CustomResourceDefinition")
        .expect("crd");
    let source = &docs(CRD_FILE)[0];
    assert_eq!(
        (missing_from(source, crd, ""), missing_from(crd, source, "")),
        (None, None),
        "the built CRD is crds/'s"
    );
}

// ---------------------------------------------------------------------------------------
// RBAC: the chart's rules are deploy/rbac.yaml's.

/// One granted permission: (apiGroup, resource, sorted verbs, sorted resourceNames).
type Rule = (String, String, Vec<String>, Vec<String>);

/// (role kind, part) -> the rules granted to that part's ServiceAccount, from bindings.
fn rbac_by_subject(objects: &[Value]) -> BTreeMap<(String, String), Vec<Rule>> {
    let roles: BTreeMap<(String, String), &Value> = objects
        .iter()
        .filter(|o| matches!(kind(o), "ClusterRole" | "Role"))
        .map(|o| ((kind(o).to_string(), name(o).to_string()), &o["rules"]))
        .collect();
    let mut out: BTreeMap<_, Vec<_>> = BTreeMap::new();
    for b in objects
        .iter()
        .filter(|o| matches!(kind(o), "ClusterRoleBinding" | "RoleBinding"))
    {
        let role_kind = b["roleRef"]["kind"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let role_name = b["roleRef"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let rules = roles
            .get(&(role_kind.clone(), role_name.clone()))
            .unwrap_or_else(|| {
                panic!(
                    "binding {} refers to a missing {role_kind} {role_name}",
                    name(b)
                )
            });
        for s in b["subjects"].as_array().into_iter().flatten() {
            let sa = s["name"].as_str().unwrap_or_default();
            let part = ["controller", "dataplane"]
                .into_iter()
                .find(|p| sa.ends_with(&format!("-{p}")))
                .unwrap_or(sa)
                .to_string();
            let entry = out.entry((role_kind.clone(), part)).or_default();
            for r in rules.as_array().into_iter().flatten() {
                let mut verbs = string_list(&r["verbs"]);
                verbs.sort();
                let mut names = string_list(&r["resourceNames"]);
                names.sort();
                for g in string_list(&r["apiGroups"]) {
                    for res in string_list(&r["resources"]) {
                        entry.push((g.clone(), res, verbs.clone(), names.clone()));
                    }
                }
            }
            entry.sort();
        }
    }
    out
}

/// templates/rbac.yaml with the release called atomicwork-mcp in namespace atomicwork-mcp:
/// the template uses only these two values and label includes.
fn chart_rbac_rendered() -> Vec<Value> {
    let template = read(&format!("{CHART}/templates/rbac.yaml"));
    let text: String = template
        .lines()
        .filter(|l| !l.trim_start().starts_with("{{-"))
        .map(|l| {
            l.replace("{{ $fullname }}", "atomicwork-mcp")
                .replace("{{ .Release.Namespace }}", NAMESPACE)
                + "\n"
        })
        .collect();
    assert!(
        !text.contains("{{"),
        "templates/rbac.yaml uses template values this test does not know:\n{text}"
    );
    docs_of(&text, "templates/rbac.yaml")
}

#[test]
fn chart_rbac_grants_what_the_design_needs() {
    // Rendered as by default: the controller's ClusterRole bound cluster-wide, its Lease
    // and record Roles and the data plane's Role in the release namespace. (Exact equality with deploy/rbac.yaml is checked below.)
    let rbac = rbac_by_subject(&chart_rbac_rendered());
    let key = |k: &str, p: &str| (k.to_string(), p.to_string());
    let verbs = |part: &(String, String), group: &str, resource: &str| -> BTreeSet<String> {
        rbac.get(part)
            .into_iter()
            .flatten()
            .filter(|(g, r, _, names)| g == group && r == resource && names.is_empty())
            .flat_map(|(_, _, v, _)| v.iter().cloned())
            .collect()
    };
    let has = |part: &(String, String), group: &str, resource: &str, needed: &[&str]| {
        let granted = verbs(part, group, resource);
        for v in needed {
            assert!(
                granted.contains(*v),
                "{part:?} lacks {v} on {group}/{resource}: {granted:?}"
            );
        }
    };
    let controller = key("ClusterRole", "controller");
    has(
        &controller,
        "mcp.atomicwork.dev",
        "atomicworkmcpservers",
        &["list", "watch"],
    );
    has(
        &controller,
        "mcp.atomicwork.dev",
        "atomicworkmcpservers/status",
        &["patch"],
    );
    has(
        &controller,
        "",
        "secrets",
        &["list", "watch", "create", "patch", "delete"],
    );
    has(&controller, "events.k8s.io", "events", &["create"]);
    // The data plane: a namespaced Role over the runtime records, and nothing
    // cluster-wide.
    assert!(
        !rbac.contains_key(&key("ClusterRole", "dataplane")),
        "the data plane has no ClusterRole"
    );
    let dataplane = key("Role", "dataplane");
    has(&dataplane, "", "secrets", &["list", "watch"]);
    has(
        &dataplane,
        "discovery.k8s.io",
        "endpointslices",
        &["list", "watch"],
    );
    for (_, _, v, _) in &rbac[&dataplane] {
        assert!(
            v.iter()
                .all(|v| matches!(v.as_str(), "get" | "list" | "watch")),
            "the data plane must be read-only: {:?}",
            rbac[&dataplane]
        );
    }
    let lease = key("Role", "controller");
    has(&lease, "coordination.k8s.io", "leases", &["get", "create"]);
    // The runtime records, in the release namespace.
    has(
        &lease,
        "",
        "secrets",
        &["get", "list", "create", "patch", "delete"],
    );
    let lease_verbs = verbs(&lease, "coordination.k8s.io", "leases");
    assert!(lease_verbs.contains("patch") || lease_verbs.contains("update"));
    assert_eq!(rbac.len(), 3, "{:?}", rbac.keys().collect::<Vec<_>>());
}

#[test]
fn chart_rbac_equals_deploy_rbac() {
    if !rbac_landed() {
        return;
    }
    let chart = rbac_by_subject(&chart_rbac_rendered());
    let plain = rbac_by_subject(&docs("deploy/rbac.yaml"));
    assert_eq!(
        chart, plain,
        "the chart's RBAC ({CHART}/templates/rbac.yaml) and deploy/rbac.yaml grant different rules"
    );
    let accounts: BTreeSet<String> = docs("deploy/rbac.yaml")
        .iter()
        .filter(|d| kind(d) == "ServiceAccount")
        .map(|d| name(d).to_string())
        .collect();
    for sa in ["atomicwork-mcp-controller", "atomicwork-mcp-dataplane"] {
        assert!(
            accounts.contains(sa),
            "deploy/rbac.yaml has no ServiceAccount {sa}"
        );
    }
}

// ---------------------------------------------------------------------------------------
// The chart's static parts.

#[test]
fn chart_metadata_matches_the_crate() {
    let chart = &docs(&format!("{CHART}/Chart.yaml"))[0];
    assert_eq!(chart["apiVersion"], "v2");
    assert_eq!(chart["name"], "atomicwork-mcp-operator");
    assert_eq!(chart["version"], "0.1.0");
    assert_eq!(chart["appVersion"], env!("CARGO_PKG_VERSION"));
    let values = &docs(&format!("{CHART}/values.yaml"))[0];
    assert_eq!(values["image"]["repository"], IMAGE);
    assert_eq!(values["publicUrl"], "", "publicUrl must be set by the user");
    for template in ["controller.yaml", "dataplane.yaml"] {
        let text = read(&format!("{CHART}/templates/{template}"));
        for needle in [
            "livenessProbe",
            "readinessProbe",
            "/healthz",
            "/readyz",
            ".Values.securityContext",
            "resources",
        ] {
            assert!(text.contains(needle), "templates/{template} lacks {needle}");
        }
    }
    let helpers = read(&format!("{CHART}/templates/_helpers.tpl"));
    assert!(helpers.contains("required \"publicUrl is required"));
    assert!(read(&format!("{CHART}/templates/NOTES.txt")).contains("jsonpath='{.status.url}'"));
}

#[test]
fn chart_default_security_settings_are_restrictive() {
    let values = &docs(&format!("{CHART}/values.yaml"))[0];
    let pod = &values["podSecurityContext"];
    assert_eq!(pod["runAsNonRoot"], true);
    assert_eq!(pod["runAsUser"], 65532);
    assert_eq!(pod["seccompProfile"]["type"], "RuntimeDefault");
    let c = &values["securityContext"];
    assert_eq!(c["readOnlyRootFilesystem"], true);
    assert_eq!(c["allowPrivilegeEscalation"], false);
    assert_eq!(c["capabilities"]["drop"], serde_json::json!(["ALL"]));
    for part in ["controller", "dataplane"] {
        assert_eq!(values[part]["replicas"], 2, "{part}.replicas");
        for k in ["requests", "limits"] {
            assert!(
                values[part]["resources"][k]["memory"].is_string(),
                "{part}.resources.{k}"
            );
        }
    }
    for off in ["ingress", "serviceMonitor", "networkPolicy"] {
        assert_eq!(values[off]["enabled"], false, "{off} is off by default");
    }
    assert_eq!(values["otel"]["endpoint"], "", "tracing is off by default");
    assert_eq!(values["otel"]["headersSecret"]["name"], "");
}

fn merge(base: &mut Value, over: &Value) {
    match (base, over) {
        (Value::Object(b), Value::Object(o)) => {
            for (k, v) in o {
                match b.get_mut(k) {
                    Some(bv) => merge(bv, v),
                    None => {
                        b.insert(k.clone(), v.clone());
                    }
                }
            }
        }
        (b, o) => *b = o.clone(),
    }
}

fn with_values(over: Value) -> Value {
    let mut v = docs(&format!("{CHART}/values.yaml"))[0].clone();
    merge(&mut v, &over);
    v
}

#[test]
fn values_schema_accepts_the_shipped_values_and_refuses_bad_ones() {
    let schema: Value = serde_json::from_str(&read(&format!("{CHART}/values.schema.json")))
        .expect("schema is JSON");
    assert_eq!(schema["$schema"], "http://json-schema.org/draft-07/schema#");
    let validator = jsonschema::validator_for(&schema).expect("schema compiles");
    let errors = |v: &Value| -> Vec<String> {
        validator
            .iter_errors(v)
            .map(|e| format!("{} at {}", e, e.instance_path()))
            .collect()
    };
    let defaults = docs(&format!("{CHART}/values.yaml"))[0].clone();
    assert_eq!(errors(&defaults), Vec::<String>::new(), "values.yaml");
    let ci = docs(&format!("{CHART}/ci/test-values.yaml"))[0].clone();
    assert_eq!(
        errors(&with_values(ci)),
        Vec::<String>::new(),
        "ci/test-values.yaml"
    );
    for (bad, field) in [
        (serde_json::json!({"logFormat": "xml"}), "logFormat"),
        (
            serde_json::json!({"publicUrl": "mcp.example.com"}),
            "publicUrl",
        ),
        (
            serde_json::json!({"publicUrl": "ftp://mcp.example.com"}),
            "publicUrl",
        ),
        (
            serde_json::json!({"controller": {"replicas": "2"}}),
            "replicas",
        ),
        (serde_json::json!({"dataplane": {"port": 70000}}), "port"),
        (
            serde_json::json!({"dataplane": {"requestTimeoutSeconds": 0}}),
            "requestTimeoutSeconds",
        ),
        (
            serde_json::json!({"dataplane": {"requestTimeoutSeconds": "300"}}),
            "requestTimeoutSeconds",
        ),
        (
            serde_json::json!({"image": {"pullPolicy": "Sometimes"}}),
            "pullPolicy",
        ),
        (
            serde_json::json!({"ingress": {"enabled": "yes"}}),
            "enabled",
        ),
        (
            serde_json::json!({"watchNamespaces": ["It_Ops"]}),
            "watchNamespaces",
        ),
        (
            serde_json::json!({"publicURL": "https://mcp.example.com"}),
            "publicURL",
        ),
        (
            serde_json::json!({"otel": {"protocol": "http/json"}}),
            "protocol",
        ),
        (
            serde_json::json!({"otel": {"sampler": "sometimes"}}),
            "sampler",
        ),
        (
            serde_json::json!({"otel": {"samplerArg": "1.5"}}),
            "samplerArg",
        ),
        (serde_json::json!({"otel": {"samplerArg": 2}}), "samplerArg"),
        (
            serde_json::json!({"otel": {"endpoint": "otel-collector:4317"}}),
            "endpoint",
        ),
        (
            serde_json::json!({"otel": {"headers": "authorization=Bearer x"}}),
            "headers",
        ),
        (
            serde_json::json!({"otel": {"resourceAttributes": {"team,env": "x"}}}),
            "resourceAttributes",
        ),
    ] {
        let errs = errors(&with_values(bad.clone()));
        assert!(
            errs.iter().any(|e| e.contains(field)),
            "{bad} should be refused mentioning {field}; got {errs:?}"
        );
    }
    for good in [
        serde_json::json!({"publicUrl": "https://mcp.example.com"}),
        serde_json::json!({"publicUrl": "http://localhost:8080/"}),
        serde_json::json!({"logFormat": "text", "watchNamespaces": ["it-ops"]}),
        serde_json::json!({"otel": {"endpoint": "https://otlp.example.com/otlp",
            "sampler": "traceidratio", "samplerArg": 0.1}}),
        serde_json::json!({"otel": {"endpoint": "http://otel-collector.observability:4317",
            "protocol": "grpc", "samplerArg": "0.5",
            "resourceAttributes": {"deployment.environment": "production"}}}),
    ] {
        assert_eq!(
            errors(&with_values(good.clone())),
            Vec::<String>::new(),
            "{good}"
        );
    }
}

#[test]
fn chart_test_values_catalog_overrides_load() {
    let ci = &docs(&format!("{CHART}/ci/test-values.yaml"))[0];
    let file = serde_json::json!({ "tools": ci["catalogOverrides"] });
    let yaml = serde_saphyr::to_string(&file).expect("yaml");
    Catalog::with_overrides(&yaml, "ci/test-values.yaml").expect("overrides apply");
}

// ---------------------------------------------------------------------------------------
// Examples.

/// A file holding one `tools:` list and nothing Kubernetes.
fn is_catalog_override(docs: &[Value]) -> bool {
    matches!(docs, [doc] if doc["tools"].is_array() && doc.get("kind").is_none())
}

/// The example files that hold at least one AtomicworkMcpServer.
fn example_files() -> Vec<PathBuf> {
    yaml_files(&root().join("examples"), false)
        .into_iter()
        .filter(|f| {
            docs(&rel(f))
                .iter()
                .any(|d| kind(d) == "AtomicworkMcpServer")
        })
        .collect()
}

#[test]
fn every_example_is_self_contained_and_serves() {
    let catalog = Catalog::builtin().expect("catalog");
    let now = jiff::Timestamp::now();
    let files = example_files();
    assert!(files.len() >= 6, "{files:?}");
    for file in files {
        let what = rel(&file);
        let m = atomicwork_mcp::local::manifest::load(&file);
        assert!(m.errors.is_empty(), "{what}: {:?}", m.errors);
        assert!(!m.servers.is_empty(), "{what}: no AtomicworkMcpServer");
        for server in &m.servers {
            let id = format!(
                "{what} {}",
                server.metadata.name.as_deref().unwrap_or_default()
            );
            // The filters name only methods, tags and tools the catalog has.
            let f = atomicwork_mcp::k8s::resolve::tool_filter(server);
            let tools = filter(&catalog, &f).unwrap_or_else(|e| panic!("{id}: {e}"));
            assert!(!tools.is_empty(), "{id}: no tool matches");
            // And the server as a whole would be served, with the Secrets of its own file.
            // The controller and local mode always hold an approval key (spec.confirm).
            let opts = ResolveOptions {
                confirm_key: Some(atomicwork_mcp::core::secret::Secret::new(
                    "ZXhhbXBsZS1hcHByb3ZhbC1rZXktMDEyMzQ1Njc4OWFiY2RlZg",
                )),
                ..ResolveOptions::default()
            };
            let r = resolve(server, &m, &catalog, now, &opts);
            if let Err(problem) = &r.view {
                panic!("{id}: would not be served: {problem}");
            }
        }
    }
}

#[test]
fn examples_cover_the_common_cases() {
    let servers: Vec<(String, AtomicworkMcpServer)> = example_files()
        .iter()
        .flat_map(|f| {
            let what = rel(f);
            atomicwork_mcp::local::manifest::load(f)
                .servers
                .into_iter()
                .map(move |s| (what.clone(), s))
        })
        .collect();
    let find = |what: &str, pred: &dyn Fn(&AtomicworkMcpServer) -> bool| {
        servers
            .iter()
            .find(|(_, s)| pred(s))
            .unwrap_or_else(|| panic!("no example {what}"))
    };
    let (file, ro) = find("read-only audit/asset server", &|s| {
        s.spec.methods.as_deref() == Some(&["read".to_string()][..])
            && s.spec.tags.iter().flatten().any(|t| t == "audit")
    });
    assert!(
        ro.spec.tags.iter().flatten().any(|t| t == "assets"),
        "{file}"
    );
    find("change management server", &|s| {
        s.spec.tags.iter().flatten().any(|t| t == "changes") && !s.spec.dry_run
    });
    let (file, contractor) = find("expiring server", &|s| s.spec.expires_at.is_some());
    let text = read(file);
    assert!(
        text.contains("date -u -d '+48 hours' +%Y-%m-%dT%H:%M:%SZ"),
        "{file}"
    );
    let at: jiff::Timestamp = contractor
        .spec
        .expires_at
        .as_deref()
        .unwrap_or_default()
        .parse()
        .expect("RFC 3339");
    assert!(
        at > jiff::Timestamp::now() + jiff::SignedDuration::from_hours(24 * 365),
        "{file}: the placeholder expiresAt should stay in the future for years"
    );
    find("discovery-mode server", &|s| {
        s.spec.tool_exposure == Some(atomicwork_mcp::k8s::crd::ToolExposure::Discovery)
    });
    find("API-token-auth server", &|s| {
        s.spec.require_api_token_auth && s.spec.api_token_secret_ref.is_some()
    });
    find("dry-run server", &|s| s.spec.dry_run);
    find("server with tool overrides", &|s| {
        s.spec
            .tool_overrides
            .as_ref()
            .is_some_and(|o| o.values().any(|t| t.fixed.is_some()))
    });
    find("complete-set server", &|s| {
        s.spec.tool_set == Some(atomicwork_mcp::k8s::crd::ToolSetName::Complete)
    });
}

#[test]
fn examples_readme_tool_counts_match_the_filters() {
    let catalog = Catalog::builtin().expect("catalog");
    let readme = read("examples/README.md");
    let mut rows = 0;
    for line in readme
        .lines()
        .filter(|l| l.starts_with("| `") && l.contains(".yaml`"))
    {
        let cells: Vec<&str> = line.trim_matches('|').split('|').map(str::trim).collect();
        let file = cells[0].trim_matches('`');
        if !example_files().contains(&root().join("examples").join(file)) {
            continue;
        }
        let count: usize = cells[cells.len() - 1]
            .parse()
            .unwrap_or_else(|_| panic!("README row for {file}: no tool count"));
        let m = atomicwork_mcp::local::manifest::load(&root().join("examples").join(file));
        let server = &m.servers[0];
        let f = atomicwork_mcp::k8s::resolve::tool_filter(server);
        let actual = filter(&catalog, &f).expect("filter").len();
        assert_eq!(
            actual, count,
            "examples/README.md: {file} exposes {actual} tools"
        );
        rows += 1;
    }
    assert_eq!(
        rows,
        example_files().len(),
        "every example has a README row"
    );
}

// ---------------------------------------------------------------------------------------
// Dockerfile.

#[test]
fn dockerfile_builds_one_locked_release_binary_into_a_small_non_root_image() {
    let dockerfile = read("Dockerfile");
    let from: Vec<&str> = dockerfile
        .lines()
        .filter(|l| l.starts_with("FROM "))
        .collect();
    assert!(from.len() >= 2, "multi-stage: {from:?}");
    let runtime = from[from.len() - 1];
    assert!(
        runtime.contains("distroless/cc")
            || runtime.contains("debian:") && runtime.contains("slim"),
        "small runtime image: {runtime}"
    );
    let build = "cargo build --release --locked --bin atomicwork-mcp";
    assert!(
        dockerfile.matches(build).count() >= 2,
        "a dependency layer and the real build both use `{build}`"
    );
    let deps_layer = dockerfile
        .find("COPY Cargo.toml Cargo.lock")
        .expect("manifest copied first");
    let sources = dockerfile.find("COPY src ").expect("sources copied");
    assert!(
        deps_layer < sources,
        "dependencies are built before the sources are copied"
    );
    let after_runtime = &dockerfile[dockerfile.rfind("FROM ").expect("FROM")..];
    assert!(
        after_runtime.contains("USER 65532:65532"),
        "runs as uid 65532"
    );
    assert!(
        after_runtime.contains("ENTRYPOINT [\"/usr/local/bin/atomicwork-mcp\"]"),
        "the binary is the entry point"
    );
    assert_eq!(
        after_runtime.matches("COPY ").count(),
        1,
        "the runtime image holds only the binary"
    );
}

/// The image is built without default features: the sandbox tenant stays out of it (and
/// the fuzz harness, which no build of the binary enables).
#[test]
fn dockerfile_builds_the_binary_without_default_features() {
    let dockerfile = read("Dockerfile");
    let builds: Vec<&str> = dockerfile
        .lines()
        .filter(|l| l.contains("cargo build"))
        .collect();
    assert!(builds.len() >= 2, "{builds:?}");
    for line in builds {
        assert!(
            line.contains("--no-default-features"),
            "the image is built without the sandbox: {line}"
        );
        assert!(
            !line.contains("fuzzing"),
            "no fuzz harness in the image: {line}"
        );
    }
}

/// The instruction after `after` (continuation lines joined as Docker joins them).
fn docker_instruction_after(dockerfile: &str, after: &str) -> String {
    let start = dockerfile.find(after).expect("anchor") + after.len();
    let mut out = String::new();
    for line in dockerfile[start..].lines().skip(1) {
        if out.is_empty() && (line.trim().is_empty() || line.starts_with('#')) {
            continue;
        }
        match line.strip_suffix('\\') {
            Some(head) => out.push_str(head),
            None => {
                out.push_str(line);
                break;
            }
        }
    }
    out
}

/// Whether cargo can load the manifest in `dir` and sees the atomicwork-mcp binary.
fn manifest_loads(dir: &Path) -> Result<(), String> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = std::process::Command::new(cargo)
        .args([
            "build",
            "--offline",
            "--locked",
            "--release",
            "--bin",
            "no-such-binary",
        ])
        .current_dir(dir)
        .env("CARGO_TARGET_DIR", dir.join("target"))
        .output()
        .map_err(|e| e.to_string())?;
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    if stderr.contains("no bin target named `no-such-binary`") && stderr.contains("atomicwork-mcp")
    {
        Ok(())
    } else {
        Err(stderr)
    }
}

fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for entry in std::fs::read_dir(from).expect("read dir").flatten() {
        let path = entry.path();
        let dest = to.join(entry.file_name());
        if path.is_dir() {
            copy_tree(&path, &dest);
        } else {
            std::fs::copy(&path, &dest).expect("copy");
        }
    }
}

/// The dependency layer works from Cargo.toml and Cargo.lock alone: its placeholder step,
/// run here with sh, leaves a crate cargo can load whatever targets Cargo.toml declares;
/// and so does the build stage once src/ is copied over it.
#[test]
fn dockerfile_dependency_layer_loads_the_manifest_without_the_sources() {
    let dockerfile = read("Dockerfile");
    let run = docker_instruction_after(&dockerfile, "COPY Cargo.toml Cargo.lock ./");
    let script = run
        .strip_prefix("RUN ")
        .expect("a RUN follows the manifest COPY");
    assert!(
        !script.contains("cargo build"),
        "placeholders come before the build: {script}"
    );
    let tmp = tempfile::tempdir().expect("tempdir");
    for f in ["Cargo.toml", "Cargo.lock"] {
        std::fs::copy(root().join(f), tmp.path().join(f)).expect("copy");
    }
    let status = std::process::Command::new("sh")
        .arg("-c")
        .arg(script)
        .current_dir(tmp.path())
        .status()
        .expect("sh runs");
    assert!(status.success(), "the placeholder step failed");
    if let Err(e) = manifest_loads(tmp.path()) {
        panic!("cargo cannot load the manifest with the Dockerfile's placeholders:\n{e}");
    }
    copy_tree(&root().join("src"), &tmp.path().join("src"));
    if let Err(e) = manifest_loads(tmp.path()) {
        panic!("cargo cannot load the manifest in the build stage (placeholders + src/):\n{e}");
    }
}

/// A minimal .dockerignore matcher for the patterns used there (`*`, `!path`, `**/x`).
fn docker_ignored(patterns: &[String], path: &str) -> bool {
    let mut ignored = false;
    for p in patterns {
        let (negate, pat) = match p.strip_prefix('!') {
            Some(rest) => (true, rest),
            None => (false, p.as_str()),
        };
        let pat = pat.trim_end_matches('/');
        let matches = if pat == "*" {
            true
        } else if let Some(tail) = pat.strip_prefix("**/") {
            path.split('/').any(|seg| seg == tail)
        } else {
            path == pat || path.starts_with(&format!("{pat}/"))
        };
        if matches {
            ignored = !negate;
        }
    }
    ignored
}

#[test]
fn dockerignore_keeps_the_build_context_to_what_the_build_needs() {
    let patterns: Vec<String> = read(".dockerignore")
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_string)
        .collect();
    for out in [
        "target",
        "target/debug/atomicwork-mcp",
        ".git",
        ".git/HEAD",
        "charts",
        "deploy",
        "tests",
        "src/target",
    ] {
        assert!(
            docker_ignored(&patterns, out),
            "{out} should be left out of the build context"
        );
    }
    for needed in [
        "Cargo.toml",
        "Cargo.lock",
        "src/main.rs",
        "src/core/catalog/atomicwork.yaml",
    ] {
        assert!(
            !docker_ignored(&patterns, needed),
            "{needed} is needed by the build"
        );
    }
    // Files compiled in with include_str!/include_bytes! must be inside src/.
    let src = root().join("src").canonicalize().expect("src/");
    for file in walk(&src) {
        let text = std::fs::read_to_string(&file).unwrap_or_default();
        for (i, _) in text.match_indices("include_") {
            let rest = &text[i..];
            let Some(open) = rest.find("(\"") else {
                continue;
            };
            if !(rest.starts_with("include_str!") || rest.starts_with("include_bytes!")) {
                continue;
            }
            let arg = &rest[open + 2..];
            let included = &arg[..arg.find('"').expect("closing quote")];
            let target = file.parent().expect("dir").join(included);
            let target = target.canonicalize().unwrap_or(target);
            let inside = target.strip_prefix(&src).is_ok();
            assert!(
                inside,
                "{} includes {included}, outside src/ and the image build context",
                rel(&file)
            );
        }
    }
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).expect("read dir").flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
    out
}
