//! What the controller watches: the namespaces (a [`Scope`]) and the Secrets worth
//! transferring; and the permissions each caller lists next to its calls.

use kube::{Api, Client, Resource};

/// One permission the code needs: (API group, resource, verb). `deploy/rbac.yaml` grants
/// exactly the union of the lists kept next to the calls (a test checks it).
pub type ApiCall = (&'static str, &'static str, &'static str);

/// Secret types no server can reference; left out of every Secret watch so release
/// records and service-account tokens are neither transferred nor cached.
pub(crate) const SECRET_FIELD_SELECTOR: &str =
    "type!=helm.sh/release.v1,type!=kubernetes.io/service-account-token";

/// Which namespaces are watched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    All,
    /// One watcher per namespace.
    Namespaces(Vec<String>),
}

impl Scope {
    /// `All` for an empty list.
    pub(crate) fn from_list(namespaces: Vec<String>) -> Self {
        let mut list: Vec<String> = namespaces
            .into_iter()
            .map(|n| n.trim().to_string())
            .filter(|n| !n.is_empty())
            .collect();
        list.sort();
        list.dedup();
        if list.is_empty() {
            Scope::All
        } else {
            Scope::Namespaces(list)
        }
    }

    /// One `Api` per watched namespace (a single cluster-wide one for `All`).
    pub(crate) fn apis<K>(&self, client: &Client) -> Vec<Api<K>>
    where
        K: Resource<Scope = k8s_openapi::NamespaceResourceScope>,
        K::DynamicType: Default,
    {
        match self {
            Scope::All => vec![Api::all(client.clone())],
            Scope::Namespaces(list) => list
                .iter()
                .map(|ns| Api::namespaced(client.clone(), ns))
                .collect(),
        }
    }
}
