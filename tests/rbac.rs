//! `deploy/rbac.yaml` grants exactly the calls the code makes: the lists kept next to
//! the calls (`API_CALLS` in the controller, its apply step, its runtime records, the
//! lease and the data plane's feed). The data plane gets a namespaced Role and no
//! ClusterRole.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;
use std::path::Path;

use atomicwork_mcp::controller::{self, lease};
use atomicwork_mcp::dataplane;
use atomicwork_mcp::k8s::scope::ApiCall;
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, PolicyRule, Role, RoleBinding};
use serde_json::Value;

const NAMESPACE: &str = "atomicwork-mcp";

struct Manifests(Vec<Value>);

impl Manifests {
    fn load() -> Self {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/rbac.yaml");
        let text = std::fs::read_to_string(path).expect("deploy/rbac.yaml");
        let docs = atomicwork_mcp::local::manifest::documents(&text)
            .iter()
            .map(|d| serde_saphyr::from_str::<Value>(d).expect("valid YAML"))
            .filter(|v| !v.is_null())
            .collect();
        Manifests(docs)
    }

    fn get<T: serde::de::DeserializeOwned>(&self, kind: &str, name: &str) -> T {
        let doc = self
            .0
            .iter()
            .find(|d| d["kind"] == kind && d["metadata"]["name"] == name)
            .unwrap_or_else(|| panic!("{kind} {name} in deploy/rbac.yaml"));
        serde_json::from_value(doc.clone()).unwrap_or_else(|e| panic!("{kind} {name}: {e}"))
    }

    fn count(&self, kind: &str) -> usize {
        self.0.iter().filter(|d| d["kind"] == kind).count()
    }
}

fn granted(rules: &[PolicyRule]) -> BTreeSet<(String, String, String)> {
    let mut out = BTreeSet::new();
    for rule in rules {
        assert!(rule.resource_names.is_none() && rule.non_resource_urls.is_none());
        for group in rule.api_groups.iter().flatten() {
            for resource in rule.resources.iter().flatten() {
                for verb in &rule.verbs {
                    assert!(
                        group != "*" && resource != "*" && verb != "*",
                        "no wildcards"
                    );
                    out.insert((group.clone(), resource.clone(), verb.clone()));
                }
            }
        }
    }
    out
}

fn used(calls: &[ApiCall]) -> BTreeSet<(String, String, String)> {
    calls
        .iter()
        .map(|(g, r, v)| (g.to_string(), r.to_string(), v.to_string()))
        .collect()
}

#[test]
fn the_controller_cluster_role_grants_exactly_what_it_calls() {
    let m = Manifests::load();
    let role: ClusterRole = m.get("ClusterRole", "atomicwork-mcp-controller");
    assert_eq!(
        granted(role.rules.as_deref().unwrap_or_default()),
        used(&controller::controller_api_calls())
    );
}

#[test]
fn the_lease_role_grants_exactly_what_leader_election_calls() {
    let m = Manifests::load();
    let role: Role = m.get("Role", "atomicwork-mcp-controller-lease");
    assert_eq!(role.metadata.namespace.as_deref(), Some(NAMESPACE));
    assert_eq!(
        granted(role.rules.as_deref().unwrap_or_default()),
        used(lease::API_CALLS)
    );
}

#[test]
fn the_controller_record_role_grants_exactly_what_it_calls_on_records() {
    let m = Manifests::load();
    let role: Role = m.get("Role", "atomicwork-mcp-controller-records");
    assert_eq!(role.metadata.namespace.as_deref(), Some(NAMESPACE));
    assert_eq!(
        granted(role.rules.as_deref().unwrap_or_default()),
        used(&controller::record_api_calls())
    );
}

#[test]
fn the_dataplane_role_is_namespaced_read_only_and_exact() {
    let m = Manifests::load();
    let role: Role = m.get("Role", "atomicwork-mcp-dataplane");
    assert_eq!(role.metadata.namespace.as_deref(), Some(NAMESPACE));
    let rules = granted(role.rules.as_deref().unwrap_or_default());
    assert_eq!(rules, used(&dataplane::api_calls()));
    assert!(
        rules
            .iter()
            .all(|(_, _, verb)| verb == "list" || verb == "watch")
    );
    // Nothing cluster-wide: no ClusterRole of its own, and no ClusterRoleBinding names
    // its ServiceAccount.
    assert!(
        !m.0.iter()
            .any(|d| d["kind"] == "ClusterRole"
                && d["metadata"]["name"] == "atomicwork-mcp-dataplane")
    );
    for d in m.0.iter().filter(|d| d["kind"] == "ClusterRoleBinding") {
        let binding: ClusterRoleBinding = serde_json::from_value(d.clone()).unwrap();
        assert!(
            binding
                .subjects
                .iter()
                .flatten()
                .all(|s| s.name != "atomicwork-mcp-dataplane"),
            "the data plane is bound to no ClusterRole"
        );
    }
}

#[test]
fn each_role_is_bound_to_its_own_service_account() {
    let m = Manifests::load();
    assert_eq!(m.count("ServiceAccount"), 2);
    for sa in ["atomicwork-mcp-controller", "atomicwork-mcp-dataplane"] {
        let account: k8s_openapi::api::core::v1::ServiceAccount = m.get("ServiceAccount", sa);
        assert_eq!(account.metadata.namespace.as_deref(), Some(NAMESPACE));
    }
    let subject_of = |subjects: &Option<Vec<k8s_openapi::api::rbac::v1::Subject>>| {
        let s = subjects.as_deref().unwrap_or_default();
        assert_eq!(s.len(), 1);
        assert_eq!(s[0].kind, "ServiceAccount");
        assert_eq!(s[0].namespace.as_deref(), Some(NAMESPACE));
        s[0].name.clone()
    };
    let name = "atomicwork-mcp-controller";
    let binding: ClusterRoleBinding = m.get("ClusterRoleBinding", name);
    assert_eq!(
        (
            binding.role_ref.kind.as_str(),
            binding.role_ref.name.as_str()
        ),
        ("ClusterRole", name)
    );
    assert_eq!(subject_of(&binding.subjects), name);
    for (role, account) in [
        (
            "atomicwork-mcp-controller-lease",
            "atomicwork-mcp-controller",
        ),
        (
            "atomicwork-mcp-controller-records",
            "atomicwork-mcp-controller",
        ),
        ("atomicwork-mcp-dataplane", "atomicwork-mcp-dataplane"),
    ] {
        let binding: RoleBinding = m.get("RoleBinding", role);
        assert_eq!(binding.metadata.namespace.as_deref(), Some(NAMESPACE));
        assert_eq!(
            (
                binding.role_ref.kind.as_str(),
                binding.role_ref.name.as_str()
            ),
            ("Role", role)
        );
        assert_eq!(subject_of(&binding.subjects), account);
    }
    assert_eq!(m.count("ClusterRole"), 1, "only the controller's");
    assert_eq!(m.count("ClusterRoleBinding"), 1, "only the controller's");
    assert_eq!(m.count("Role"), 3, "no other roles");
    assert_eq!(m.count("RoleBinding"), 3, "no other bindings");
}
