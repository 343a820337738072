//! `deploy/rbac.yaml` grants exactly the calls the code makes: the lists kept next to
//! the calls (`API_CALLS` in the controller, its apply step, the lease and the feed).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;
use std::path::Path;

use atomicwork_mcp::controller::{self, lease};
use atomicwork_mcp::dataplane::feed;
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
fn the_dataplane_cluster_role_is_read_only_and_exact() {
    let m = Manifests::load();
    let role: ClusterRole = m.get("ClusterRole", "atomicwork-mcp-dataplane");
    let rules = granted(role.rules.as_deref().unwrap_or_default());
    assert_eq!(rules, used(feed::API_CALLS));
    assert!(
        rules
            .iter()
            .all(|(_, _, verb)| verb == "list" || verb == "watch")
    );
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
    for name in ["atomicwork-mcp-controller", "atomicwork-mcp-dataplane"] {
        let binding: ClusterRoleBinding = m.get("ClusterRoleBinding", name);
        assert_eq!(
            (
                binding.role_ref.kind.as_str(),
                binding.role_ref.name.as_str()
            ),
            ("ClusterRole", name)
        );
        assert_eq!(subject_of(&binding.subjects), name);
    }
    let binding: RoleBinding = m.get("RoleBinding", "atomicwork-mcp-controller-lease");
    assert_eq!(binding.metadata.namespace.as_deref(), Some(NAMESPACE));
    assert_eq!(binding.role_ref.name, "atomicwork-mcp-controller-lease");
    assert_eq!(subject_of(&binding.subjects), "atomicwork-mcp-controller");
    assert_eq!(
        m.count("ClusterRole") + m.count("Role"),
        3,
        "no other roles"
    );
}
