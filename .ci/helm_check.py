#!/usr/bin/env python3
"""Lints and renders the Helm chart with the Helm library (through helm-sdkpy), offline.

1. `helm lint` of the chart as shipped (default values), then of the chart with
   ci/test-values.yaml (every optional part switched on). Warnings fail, like --strict.
2. Renders the chart the way `helm template` would: a real `helm install` through the
   Helm library, against a small stand-in Kubernetes API server on 127.0.0.1 that
   answers discovery and records what Helm creates (Helm's own release record is
   accepted and dropped). The objects are checked: they parse, have the expected kinds,
   the Deployments carry probes, resources and the restrictive security context, and the
   RBAC rules equal those of deploy/rbac.yaml.
   With ci/test-values.yaml the data plane gets the OTEL_* variables of otel.* (headers
   through a secretKeyRef) and the controller none; with the defaults no Deployment has
   any OTEL_* variable.
3. Installs that must fail do: no publicUrl (the `required` message), a bad logFormat,
   a publicUrl that is not a URL, bad otel.* values (values.schema.json).

Usage: helm_check.py CHART_DIR REPO_ROOT [RENDERED_OUT]. With RENDERED_OUT, the manifest
rendered with ci/test-values.yaml is written there. Exit status 0 only when every check
passed.
"""

from __future__ import annotations

import asyncio
import copy
import json
import re
import shutil
import sys
import tempfile
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote

import yaml  # noqa: E402
import helm_sdkpy  # noqa: E402

NAMESPACE = "atomicwork-mcp"
RELEASE = "atomicwork-mcp"

# What the stand-in API server serves: group/version -> [(resource, kind, namespaced)].
RESOURCES = {
    "v1": [
        ("namespaces", "Namespace", False),
        ("services", "Service", True),
        ("serviceaccounts", "ServiceAccount", True),
        ("configmaps", "ConfigMap", True),
        ("secrets", "Secret", True),
    ],
    "apps/v1": [("deployments", "Deployment", True)],
    "policy/v1": [("poddisruptionbudgets", "PodDisruptionBudget", True)],
    "rbac.authorization.k8s.io/v1": [
        ("clusterroles", "ClusterRole", False),
        ("clusterrolebindings", "ClusterRoleBinding", False),
        ("roles", "Role", True),
        ("rolebindings", "RoleBinding", True),
    ],
    "networking.k8s.io/v1": [
        ("ingresses", "Ingress", True),
        ("networkpolicies", "NetworkPolicy", True),
    ],
    "coordination.k8s.io/v1": [("leases", "Lease", True)],
    "apiextensions.k8s.io/v1": [
        ("customresourcedefinitions", "CustomResourceDefinition", False)
    ],
    "monitoring.coreos.com/v1": [("servicemonitors", "ServiceMonitor", True),
                                 ("podmonitors", "PodMonitor", True)],
    "mcp.atomicwork.dev/v1alpha1": [("atomicworkmcpservers", "AtomicworkMcpServer", True)],
}
VERBS = ["create", "delete", "get", "list", "patch", "update", "watch"]


class FakeApi(BaseHTTPRequestHandler):
    """Enough of the Kubernetes API for `helm install`: discovery, 404 on reads of
    objects that do not exist yet, and creation (recorded, echoed back)."""

    created: list[dict] = []
    lock = threading.Lock()

    def log_message(self, *_args):  # quiet
        pass

    def _send(self, code: int, body: dict) -> None:
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _not_found(self) -> None:
        self._send(404, {"kind": "Status", "apiVersion": "v1", "status": "Failure",
                         "reason": "NotFound", "code": 404, "message": "not found"})

    def do_GET(self):  # noqa: N802
        path = self.path.split("?", 1)[0].rstrip("/")
        if path == "/version":
            return self._send(200, {"major": "1", "minor": "30", "gitVersion": "v1.30.0",
                                    "platform": "linux/amd64"})
        if path == "/api":
            return self._send(200, {"kind": "APIVersions", "versions": ["v1"],
                                    "serverAddressByClientCIDRs": []})
        if path == "/apis":
            groups = []
            for gv in RESOURCES:
                if "/" not in gv:
                    continue
                group, version = gv.split("/")
                v = {"groupVersion": gv, "version": version}
                groups.append({"name": group, "versions": [v], "preferredVersion": v})
            return self._send(200, {"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
        gv = path[len("/api/"):] if path.startswith("/api/") else path[len("/apis/"):]
        if gv in RESOURCES and path in (f"/api/{gv}", f"/apis/{gv}"):
            return self._send(200, {
                "kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv,
                "resources": [{"name": r, "singularName": "", "kind": k, "namespaced": ns,
                               "verbs": VERBS} for r, k, ns in RESOURCES[gv]],
            })
        # Reads of single objects: a CRD Helm has just created is Established; anything
        # else does not exist yet.
        with self.lock:
            for obj in self.created:
                if obj["kind"] == "CustomResourceDefinition" and path.endswith(
                        "/customresourcedefinitions/" + obj["metadata"]["name"]):
                    return self._send(200, obj)
        return self._not_found()

    def do_POST(self):  # noqa: N802
        length = int(self.headers.get("Content-Length", "0"))
        body = self.rfile.read(length)
        if "json" not in self.headers.get("Content-Type", ""):
            # Helm's own release record (a Secret, sent as protobuf): accept, don't keep.
            return self._send(201, {"kind": "Secret", "apiVersion": "v1",
                                    "metadata": {"name": "release", "namespace": NAMESPACE,
                                                 "uid": str(uuid.uuid4()),
                                                 "resourceVersion": "1"}})
        obj = json.loads(body or b"{}")
        meta = obj.setdefault("metadata", {})
        meta.setdefault("uid", str(uuid.uuid4()))
        meta.setdefault("resourceVersion", "1")
        meta.setdefault("generation", 1)
        meta.setdefault("creationTimestamp", "2026-01-01T00:00:00Z")
        if obj.get("kind") == "CustomResourceDefinition":
            obj["status"] = {
                "conditions": [
                    {"type": t, "status": "True", "reason": t, "message": "",
                     "lastTransitionTime": "2026-01-01T00:00:00Z"}
                    for t in ("NamesAccepted", "Established")
                ],
                "acceptedNames": obj.get("spec", {}).get("names", {}),
                "storedVersions": [v["name"] for v in obj.get("spec", {}).get("versions", [])],
            }
        with self.lock:
            self.created.append(copy.deepcopy(obj))
        self._send(201, obj)

    def do_PUT(self):  # noqa: N802
        self.do_POST()

    def do_PATCH(self):  # noqa: N802
        self._not_found()

    def do_DELETE(self):  # noqa: N802
        self._send(200, {"kind": "Status", "apiVersion": "v1", "status": "Success"})


def kubeconfig(port: int) -> str:
    return yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config",
        "clusters": [{"name": "stand-in", "cluster": {"server": f"http://127.0.0.1:{port}"}}],
        "users": [{"name": "ci", "user": {"token": "unused"}}],
        "contexts": [{"name": "stand-in", "context": {"cluster": "stand-in", "user": "ci",
                                                      "namespace": NAMESPACE}}],
        "current-context": "stand-in",
    })


class Failures:
    def __init__(self) -> None:
        self.items: list[str] = []

    def check(self, ok: bool, what: str) -> None:
        print(("  ok    " if ok else "  FAIL  ") + what)
        if not ok:
            self.items.append(what)


def lint(chart: Path, label: str, f: Failures) -> None:
    cfg = helm_sdkpy.Configuration(namespace=NAMESPACE)
    result = asyncio.run(helm_sdkpy.Lint(cfg).run(str(chart)))
    messages = result.get("Messages") or []
    errors = result.get("Errors") or []
    names = {0: "UNKNOWN", 1: "INFO", 2: "WARNING", 3: "ERROR"}
    print(f"helm lint ({label}): {result.get('TotalChartsLinted')} chart(s) linted, "
          f"{len(messages)} message(s)")
    for m in messages:
        print(f"  [{names.get(m.get('Severity'), m.get('Severity'))}] {m.get('Path')}: "
              f"{m.get('Err') or ''}")
    worst = max((m.get("Severity", 0) for m in messages), default=0)
    f.check(not errors and worst < 2, f"helm lint ({label}): no warnings or errors")


def chart_with_values(chart: Path, values: dict, into: Path) -> Path:
    """A copy of the chart whose values.yaml is the chart's merged with `values`
    (what `helm lint -f values.yaml` lints)."""
    dest = into / chart.name
    shutil.copytree(chart, dest)
    base = yaml.safe_load((chart / "values.yaml").read_text())
    (dest / "values.yaml").write_text(yaml.safe_dump(merge(base, values), sort_keys=False))
    return dest


def merge(base, over):
    if isinstance(base, dict) and isinstance(over, dict):
        out = dict(base)
        for k, v in over.items():
            out[k] = merge(base.get(k), v) if k in base else v
        return out
    return over


def install(chart: Path, values: dict) -> tuple[list[dict] | None, str]:
    """Runs `helm install` against a fresh stand-in API server. Returns the objects Helm
    created (CRDs first) and the manifest Helm recorded, or None and the error text. The
    rendered NOTES.txt is left in install.notes."""
    install.notes = ""
    FakeApi.created = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeApi)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        cfg = helm_sdkpy.Configuration(namespace=NAMESPACE,
                                       kubeconfig=kubeconfig(server.server_address[1]))
        result = asyncio.run(helm_sdkpy.Install(cfg).run(
            RELEASE, str(chart), values=values, wait=False, timeout=60))
        manifest = result.get("manifest", "") if isinstance(result, dict) else ""
        info = result.get("info") if isinstance(result, dict) else None
        install.notes = (info or {}).get("notes", "") if isinstance(info, dict) else ""
        return list(FakeApi.created), manifest
    except helm_sdkpy.HelmError as e:
        return None, str(e)
    finally:
        server.shutdown()
        server.server_close()


def find(objs, kind, suffix=None):
    return [o for o in objs if o.get("kind") == kind
            and (suffix is None or o["metadata"]["name"].endswith(suffix))]


def check_deployment(d: dict, f: Failures) -> None:
    name = d["metadata"]["name"]
    pod = d["spec"]["template"]["spec"]
    psc = pod.get("securityContext", {})
    f.check(psc.get("runAsNonRoot") is True and psc.get("seccompProfile", {}).get("type")
            == "RuntimeDefault", f"{name}: pod runs as non-root with seccomp RuntimeDefault")
    for c in pod["containers"]:
        sc = c.get("securityContext", {})
        f.check(sc.get("readOnlyRootFilesystem") is True
                and sc.get("allowPrivilegeEscalation") is False
                and sc.get("capabilities", {}).get("drop") == ["ALL"],
                f"{name}/{c['name']}: read-only root, no privilege escalation, drops ALL")
        f.check(bool(c.get("livenessProbe", {}).get("httpGet", {}).get("path") == "/healthz")
                and c.get("readinessProbe", {}).get("httpGet", {}).get("path") == "/readyz",
                f"{name}/{c['name']}: liveness /healthz and readiness /readyz")
        res = c.get("resources", {})
        f.check(bool(res.get("requests")) and bool(res.get("limits")),
                f"{name}/{c['name']}: resource requests and limits")
        env = {e["name"]: e for e in c.get("env", [])}
        f.check(env.get("POD_NAMESPACE", {}).get("valueFrom", {}).get("fieldRef", {})
                .get("fieldPath") == "metadata.namespace",
                f"{name}/{c['name']}: POD_NAMESPACE from the downward API")


def env_of(d: dict) -> dict:
    return {e["name"]: e.get("value") for e in d["spec"]["template"]["spec"]["containers"][0]["env"]}


def check_shutdown_and_lease(ctrl: dict, dp: dict, timeout: int, f: Failures) -> None:
    """The data plane gets the request deadline and a grace period covering it plus the
    drain; the controller names its own Deployment as the Lease's owner."""
    grace = dp["spec"]["template"]["spec"].get("terminationGracePeriodSeconds")
    f.check(env_of(dp).get("REQUEST_TIMEOUT_SECONDS") == str(timeout) and grace == timeout + 30,
            f"data plane: REQUEST_TIMEOUT_SECONDS={timeout}, terminationGracePeriodSeconds "
            f"{timeout}+30 (got {env_of(dp).get('REQUEST_TIMEOUT_SECONDS')}, {grace})")
    f.check(env_of(ctrl).get("LEASE_OWNER_DEPLOYMENT") == ctrl["metadata"]["name"],
            "controller: LEASE_OWNER_DEPLOYMENT names its own Deployment")


def container_env(d: dict) -> list[dict]:
    """The env entries of a Deployment's first container, in order."""
    return d["spec"]["template"]["spec"]["containers"][0].get("env", [])


def forward_refs(env: list[dict]) -> list[str]:
    """$(VAR) references in env values to a variable not defined earlier in the list
    (Kubernetes leaves those unexpanded)."""
    seen: set[str] = set()
    bad = []
    for e in env:
        for ref in re.findall(r"(?<!\$)\$\(([A-Za-z_][A-Za-z0-9_]*)\)", e.get("value") or ""):
            if ref not in seen:
                bad.append(f"{e['name']} -> $({ref})")
        seen.add(e["name"])
    return bad


def otel_names(d: dict) -> list[str]:
    return [n for c in d["spec"]["template"]["spec"]["containers"]
            for n in (e["name"] for e in c.get("env", [])) if n.startswith("OTEL_")]


def check_otel_on(ctrl: dict, dp: dict, values: dict, f: Failures) -> None:
    """With otel.endpoint set, the data plane gets the OTEL_* variables from the values
    (headers only through a secretKeyRef, resource attributes with the chart's k8s ones
    first), every $(VAR) it uses is defined before; the controller gets none."""
    otel = values["otel"]
    env = container_env(dp)
    by_name = {e["name"]: e for e in env}
    plain = {e["name"]: e.get("value") for e in env}
    f.check(plain.get("OTEL_EXPORTER_OTLP_ENDPOINT") == otel["endpoint"]
            and plain.get("OTEL_EXPORTER_OTLP_PROTOCOL") == otel["protocol"]
            and plain.get("OTEL_SERVICE_NAME") == otel["serviceName"]
            and plain.get("OTEL_TRACES_SAMPLER") == otel["sampler"]
            and plain.get("OTEL_TRACES_SAMPLER_ARG") == str(otel["samplerArg"]),
            "data plane: OTEL endpoint, protocol, service name, sampler and its argument "
            "from otel.*")
    attrs: dict[str, str] = {}
    for item in (plain.get("OTEL_RESOURCE_ATTRIBUTES") or "").split(","):
        key, _, value = item.partition("=")
        attrs[key] = unquote(value)
    keys = list(attrs)
    f.check(keys[:3] == ["k8s.namespace.name", "k8s.pod.name", "k8s.deployment.name"]
            and attrs["k8s.namespace.name"] == "$(POD_NAMESPACE)"
            and attrs["k8s.pod.name"] == "$(POD_NAME)"
            and attrs["k8s.deployment.name"] == dp["metadata"]["name"]
            and all(attrs.get(k) == v for k, v in otel["resourceAttributes"].items())
            and len(attrs) == 3 + len(otel["resourceAttributes"]),
            f"data plane: OTEL_RESOURCE_ATTRIBUTES has the k8s attributes, then the custom "
            f"ones (values with ',' and '=' percent-encoded) (got {attrs})")
    pod_name = by_name.get("POD_NAME", {}).get("valueFrom", {}).get("fieldRef", {})
    f.check(pod_name.get("fieldPath") == "metadata.name",
            "data plane: POD_NAME from the downward API")
    f.check(forward_refs(env) == [],
            f"data plane: every $(VAR) in env refers to a variable defined earlier "
            f"{forward_refs(env) or ''}")
    headers = by_name.get("OTEL_EXPORTER_OTLP_HEADERS", {})
    ref = headers.get("valueFrom", {}).get("secretKeyRef", {})
    f.check("value" not in headers and ref.get("name") == otel["headersSecret"]["name"]
            and ref.get("key") == otel["headersSecret"]["key"],
            "data plane: OTEL_EXPORTER_OTLP_HEADERS only through a secretKeyRef to "
            "otel.headersSecret")
    f.check(otel_names(ctrl) == [],
            f"controller: no OTEL_* variable (got {otel_names(ctrl)})")


def check_controller_scraped_per_pod(objs, ctrl: dict | None, f: Failures) -> None:
    """No Service balances scrapes between the controller's leader and standby; a
    PodMonitor scrapes each controller pod and the ServiceMonitor only the data plane."""
    if ctrl is None:
        return
    pod_labels = ctrl["spec"]["template"]["metadata"]["labels"]
    selects = lambda sel: bool(sel) and all(pod_labels.get(k) == v for k, v in sel.items())  # noqa: E731
    f.check(not [s for s in find(objs, "Service") if selects(s["spec"].get("selector", {}))],
            "no Service in front of the controller pods")
    pm = find(objs, "PodMonitor")
    f.check(len(pm) == 1 and selects(pm[0]["spec"]["selector"]["matchLabels"])
            and [e["port"] for e in pm[0]["spec"]["podMetricsEndpoints"]] == ["metrics"],
            "a PodMonitor scrapes every controller pod on port metrics")
    sm = find(objs, "ServiceMonitor")
    f.check(len(sm) == 1 and [e["port"] for e in sm[0]["spec"]["endpoints"]] == ["http"]
            and sm[0]["spec"]["selector"]["matchLabels"].get("app.kubernetes.io/component")
            == "dataplane",
            "the ServiceMonitor scrapes the data plane Service only")


def normalize_rules(rules) -> list:
    out = []
    for r in rules or []:
        for g in r.get("apiGroups", [""]):
            for res in r.get("resources", []):
                out.append((g, res, tuple(sorted(r.get("verbs", []))),
                            tuple(sorted(r.get("resourceNames", [])))))
    return sorted(out)


def rbac_by_subject(objs) -> dict:
    """(role kind, service account suffix) -> normalized rules, from bindings."""
    roles = {(o["kind"], o["metadata"]["name"]): o.get("rules", [])
             for o in objs if o.get("kind") in ("ClusterRole", "Role")}
    out = {}
    for b in objs:
        if b.get("kind") not in ("ClusterRoleBinding", "RoleBinding"):
            continue
        ref = b["roleRef"]
        rules = roles.get((ref["kind"], ref["name"]))
        for s in b.get("subjects", []):
            if s.get("kind") != "ServiceAccount":
                continue
            part = "controller" if s["name"].endswith("-controller") else (
                "dataplane" if s["name"].endswith("-dataplane") else s["name"])
            key = (ref["kind"], part)
            out[key] = sorted(out.get(key, []) + normalize_rules(rules))
    return out


def main() -> int:
    chart = Path(sys.argv[1]).resolve()
    root = Path(sys.argv[2]).resolve()
    f = Failures()
    test_values = yaml.safe_load((chart / "ci" / "test-values.yaml").read_text())
    print(f"helm library {helm_sdkpy.__version__ if hasattr(helm_sdkpy, '__version__') else ''}"
          .strip())

    # 1. Lint.
    lint(chart, "default values", f)
    with tempfile.TemporaryDirectory() as tmp:
        lint(chart_with_values(chart, test_values, Path(tmp)), "ci/test-values.yaml", f)

    # 2. Render with the test values and with the defaults plus a public URL.
    print("render (helm install against a stand-in API server, ci/test-values.yaml):")
    objs, manifest = install(chart, test_values)
    f.check(objs is not None, f"install with ci/test-values.yaml succeeds {'' if objs is not None else manifest}")
    if objs is not None:
        docs = [d for d in yaml.safe_load_all(manifest) if d] if manifest else []
        non_crd = [o for o in objs if o["kind"] != "CustomResourceDefinition"]
        f.check(len(docs) == len(non_crd) > 0,
                f"the release manifest parses as YAML: {len(docs)} documents, one per object")
        if len(sys.argv) > 3:
            Path(sys.argv[3]).write_text(manifest)
        kinds = sorted({o["kind"] for o in objs})
        print(f"  created: {', '.join(f'{k} x{len(find(objs, k))}' for k in kinds)}")
        for kind in ["CustomResourceDefinition", "ServiceAccount", "ClusterRole",
                     "Role", "RoleBinding", "ConfigMap", "Deployment",
                     "Service", "PodDisruptionBudget", "Ingress", "ServiceMonitor",
                     "PodMonitor", "NetworkPolicy"]:
            f.check(bool(find(objs, kind)), f"renders kind {kind}")
        crd = find(objs, "CustomResourceDefinition")
        shipped = yaml.safe_load((root / "crds" / "atomicworkmcpservers.mcp.atomicwork.dev.yaml")
                                 .read_text())
        f.check(len(crd) == 1 and crd[0]["spec"] == shipped["spec"],
                "the installed CRD is the one in crds/")
        deployments = {d["metadata"]["name"]: d for d in find(objs, "Deployment")}
        ctrl = deployments.get(f"{RELEASE}-controller")
        dp = deployments.get(f"{RELEASE}-dataplane")
        f.check(ctrl is not None and dp is not None,
                f"Deployments {RELEASE}-controller and {RELEASE}-dataplane")
        for d in deployments.values():
            check_deployment(d, f)
        if ctrl and dp:
            f.check(ctrl["spec"]["replicas"] == 3 and dp["spec"]["replicas"] == 4,
                    "replicas come from the values")
            cargs = ctrl["spec"]["template"]["spec"]["containers"][0]["args"]
            cenv = {e["name"]: e.get("value") for e in
                    ctrl["spec"]["template"]["spec"]["containers"][0]["env"]}
            f.check(cargs[:2] == ["controller", "--public-url=$(PUBLIC_URL)"]
                    and cenv.get("PUBLIC_URL") == "https://mcp.ci.example.com",
                    "controller gets --public-url from publicUrl")
            f.check("--namespaces=it-ops,service-desk" in cargs
                    and "--redact-status-url" in cargs,
                    "controller gets --namespaces and --redact-status-url")
            dargs = dp["spec"]["template"]["spec"]["containers"][0]["args"]
            denv = {e["name"]: e.get("value") for e in
                    dp["spec"]["template"]["spec"]["containers"][0]["env"]}
            f.check(dargs[0] == "dataplane" and "--listen=0.0.0.0:8080" in dargs
                    and not any(a.startswith("--namespaces") for a in dargs)
                    and "--allowed-origins=https://claude.ai" in dargs
                    and "--allowed-hosts=mcp.ci.example.com" in dargs,
                    "data plane gets --listen, --allowed-origins, --allowed-hosts (no --namespaces: "
                    "it reads only its own namespace)")
            f.check(denv.get("SERVICE_NAME") == f"{RELEASE}-dataplane",
                    "data plane gets its own Service's name (SERVICE_NAME) for the rate-limit share")
            f.check(cenv.get("LOG_FORMAT") == "text" and cenv.get("EXTRA_SETTING") == "1"
                    and cenv.get("ATOMICWORK_MCP_CATALOG") == "/etc/atomicwork-mcp/catalog.yaml",
                    "LOG_FORMAT, extraEnv and the catalog override reach the containers")
            check_shutdown_and_lease(ctrl, dp, 120, f)
            check_otel_on(ctrl, dp, test_values, f)
        ing = find(objs, "Ingress")
        if ing:
            rule = ing[0]["spec"]["rules"][0]
            f.check(rule["host"] == "mcp.ci.example.com"
                    and [p["path"] for p in rule["http"]["paths"]] == ["/mcp"]
                    and ing[0]["spec"]["tls"][0]["secretName"] == "mcp-ci-tls"
                    and ing[0]["spec"].get("ingressClassName") == "public",
                    "Ingress: host from publicUrl, only /mcp routed, TLS secret, class")
        svc = {s["metadata"]["name"]: s for s in find(objs, "Service")}
        dps = svc.get(f"{RELEASE}-dataplane")
        f.check(dps is not None and dps["spec"]["ports"][0]["port"] == 80
                and dps["spec"]["ports"][0]["targetPort"] == "http",
                "data plane Service: port 80 -> http (8080)")
        check_controller_scraped_per_pod(objs, ctrl, f)
        cm = find(objs, "ConfigMap", "-catalog")
        f.check(bool(cm) and "list_all_atomicwork_audit_logs" in cm[0]["data"]["catalog.yaml"],
                "catalog override ConfigMap")

        # watchNamespaces: the controller's ClusterRole is bound in those namespaces only;
        # the data plane has no ClusterRole at all.
        bound = sorted((b["metadata"]["namespace"], b["roleRef"]["kind"], b["roleRef"]["name"])
                       for b in find(objs, "RoleBinding") if b["roleRef"]["kind"] == "ClusterRole")
        f.check(not find(objs, "ClusterRoleBinding") and bound == sorted(
                    (ns, "ClusterRole", f"{RELEASE}-controller")
                    for ns in ("it-ops", "service-desk")),
                "watchNamespaces: RoleBindings of the controller's ClusterRole in each watched "
                "namespace, no ClusterRoleBinding")

    print("render (default values + publicUrl):")
    objs, err = install(chart, {"publicUrl": "https://mcp.example.com"})
    f.check(objs is not None, f"install with only publicUrl set succeeds {'' if objs is not None else err}")
    if objs is not None:
        kinds = {o["kind"] for o in objs}
        f.check(not kinds & {"Ingress", "ServiceMonitor", "NetworkPolicy", "ConfigMap"},
                "ingress, ServiceMonitor, NetworkPolicy and catalog ConfigMap are off by default")
        notes = install.notes
        f.check("kubectl -n it-ops get awmcp service-desk-readonly -o jsonpath='{.status.url}'"
                in notes and "https://mcp.example.com/mcp/<token>" in notes
                and "\nYAML\n" in notes,
                "NOTES.txt says how to create a server and read its URL")
        # RBAC: the chart's rules equal deploy/rbac.yaml's.
        rbac_file = root / "deploy" / "rbac.yaml"
        chart_rbac = rbac_by_subject(objs)
        f.check(set(chart_rbac) == {("ClusterRole", "controller"), ("Role", "controller"),
                                    ("Role", "dataplane")},
                "RBAC: a cluster role for the controller, namespaced Roles for both parts, "
                "no cluster role for the data plane")
        if rbac_file.exists():
            plain = [d for d in yaml.safe_load_all(rbac_file.read_text()) if d]
            plain_rbac = rbac_by_subject(plain)
            for key in sorted(set(chart_rbac) | set(plain_rbac)):
                same = chart_rbac.get(key) == plain_rbac.get(key)
                f.check(same, f"RBAC {key[0]} of the {key[1]}: chart equals deploy/rbac.yaml")
                if not same:
                    print(f"      chart:            {chart_rbac.get(key)}")
                    print(f"      deploy/rbac.yaml: {plain_rbac.get(key)}")
        else:
            print("  note  deploy/rbac.yaml does not exist yet: RBAC comparison skipped")
        for d in find(objs, "Deployment"):
            check_deployment(d, f)
            f.check(d["spec"]["replicas"] == 2, f"{d['metadata']['name']}: 2 replicas by default")
        deployments = {d["metadata"]["name"]: d for d in find(objs, "Deployment")}
        ctrl = deployments.get(f"{RELEASE}-controller")
        dp = deployments.get(f"{RELEASE}-dataplane")
        if ctrl and dp:
            check_shutdown_and_lease(ctrl, dp, 300, f)
        f.check(not [n for d in find(objs, "Deployment") for n in otel_names(d)],
                "tracing is off by default: no OTEL_* variable in any Deployment")

    # 3. Bad values fail at install.
    print("bad values:")
    objs, err = install(chart, {})
    f.check(objs is None and "publicUrl is required" in err,
            "no publicUrl: install fails with 'publicUrl is required'")
    print(f"        {err.strip().splitlines()[-1] if err else ''}")
    objs, err = install(chart, {"publicUrl": "https://mcp.example.com", "logFormat": "xml"})
    f.check(objs is None and "logFormat" in err, "logFormat: xml is refused by the schema")
    print(f"        {err.strip().splitlines()[-1] if err else ''}")
    objs, err = install(chart, {"publicUrl": "mcp.example.com"})
    f.check(objs is None and "publicUrl" in err, "publicUrl without a scheme is refused")
    print(f"        {err.strip().splitlines()[-1] if err else ''}")
    objs, err = install(chart, {"publicUrl": "https://mcp.example.com",
                                "controller": {"replicas": "two"}})
    f.check(objs is None and "replicas" in err, "a string replica count is refused")
    objs, err = install(chart, {"publicUrl": "https://mcp.example.com", "publicURL": "typo"})
    f.check(objs is None and "publicURL" in err, "an unknown top-level value is refused")
    objs, err = install(chart, {"publicUrl": "https://mcp.example.com",
                                "dataplane": {"requestTimeoutSeconds": 0}})
    f.check(objs is None and "requestTimeoutSeconds" in err,
            "a request timeout of 0 s is refused")
    otel = {"endpoint": "http://otel-collector.observability:4318"}
    for bad, field, what in [
        ({"protocol": "http/json"}, "protocol", "otel.protocol: http/json is refused"),
        ({"sampler": "sometimes"}, "sampler", "an unknown otel.sampler is refused"),
        ({"samplerArg": "1.5"}, "samplerArg", "an otel.samplerArg above 1 is refused"),
        ({"endpoint": "otel-collector:4317"}, "endpoint",
         "an otel.endpoint without a scheme is refused"),
        ({"headers": "authorization=Bearer x"}, "headers",
         "plain otel.headers are refused (only headersSecret)"),
    ]:
        objs, err = install(chart, {"publicUrl": "https://mcp.example.com",
                                    "otel": {**otel, **bad}})
        f.check(objs is None and field in err, what)

    total = len(f.items)
    print()
    if total:
        print(f"helm checks: {total} failed:")
        for item in f.items:
            print(f"  - {item}")
        return 1
    print("helm checks: all passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
