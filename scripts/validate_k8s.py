#!/usr/bin/env python3
"""Renders every kustomization under k8s/ (overlays and examples) with `kubectl kustomize`
and validates the output offline: Kubernetes kinds strictly against the API schemas of the
oldest and newest supported versions (PyPI kubernetes-validate), custom resources (Istio,
Gateway API, Envoy Gateway, cert-manager, Prometheus Operator) against their CRD schemas
from npm (kubernetes-models, tests/k8s-schemas/validate.mjs, unknown fields refused),
plus the checks schemas cannot make: selectors that select the pods, who the
NetworkPolicy admits, a hardened pod, and the main file and every policy file through
`portcullis validate` — each render's files together, and every example's team file in
one directory (no two may conflict).

Usage: validate_k8s.py PORTCULLIS_BINARY   (run from the repository root; exit 1 on a problem)
"""

import json
import pathlib
import subprocess
import sys
import tempfile

import jsonschema
import kubernetes_validate
import yaml

KUBERNETES_VERSIONS = ["1.30.0", "1.37.0"]

STRING_LIST = {"type": "array", "items": {"type": "string"}}

# The IstioOperator CRD leaves `spec` open, so the mesh config it carries (not a resource
# of its own) is checked here: meshConfig.extensionProviders[].envoyExtAuthzGrpc, the
# fields used, from Istio's MeshConfig reference.
ISTIO_OPERATOR_MESH_CONFIG = {
    "type": "object",
    "required": ["apiVersion", "kind", "spec"],
    "properties": {
        "apiVersion": {"const": "install.istio.io/v1alpha1"},
        "kind": {"const": "IstioOperator"},
        "spec": {
            "type": "object",
            "required": ["meshConfig"],
            "properties": {
                "meshConfig": {
                    "type": "object",
                    "required": ["extensionProviders"],
                    "properties": {
                        "pathNormalization": {
                            "type": "object",
                            "additionalProperties": False,
                            "properties": {
                                "normalization": {
                                    "enum": ["DEFAULT", "NONE", "BASE", "MERGE_SLASHES", "DECODE_AND_MERGE_SLASHES"]
                                }
                            },
                        },
                        "extensionProviders": {
                            "type": "array",
                            "items": {
                                "type": "object",
                                "additionalProperties": False,
                                "required": ["name", "envoyExtAuthzGrpc"],
                                "properties": {
                                    "name": {"type": "string"},
                                    "envoyExtAuthzGrpc": {
                                        "type": "object",
                                        "additionalProperties": False,
                                        "required": ["service", "port"],
                                        "properties": {
                                            "service": {"type": "string"},
                                            "port": {"type": "integer", "minimum": 1, "maximum": 65535},
                                            "timeout": {"type": "string", "pattern": "^[0-9.]+(ms|s|m|h)$"},
                                            "failOpen": {"type": "boolean"},
                                            "statusOnError": {"type": "string", "pattern": "^[1-5][0-9][0-9]$"},
                                            "includeRequestBodyInCheck": {"type": "object"},
                                        },
                                    },
                                },
                            },
                        }
                    },
                }
            },
        },
    },
}



def subset(selector, labels):
    return all(labels.get(k) == v for k, v in (selector or {}).items())


def selects(selector, labels):
    """A Kubernetes label selector (matchLabels and matchExpressions) against labels."""
    if selector is None:
        return False
    if not subset(selector.get("matchLabels"), labels):
        return False
    for expression in selector.get("matchExpressions", []):
        key, operator, values = expression["key"], expression["operator"], expression.get("values", [])
        matched = {
            "In": key in labels and labels[key] in values,
            "NotIn": key not in labels or labels[key] not in values,
            "Exists": key in labels,
            "DoesNotExist": key not in labels,
        }[operator]
        if not matched:
            return False
    return True


def admits(policy, port, namespace_labels, pod_labels):
    """Whether a NetworkPolicy's ingress admits a pod with these labels (in a namespace
    with these labels) on `port`. Peers are namespaceSelector/podSelector only."""
    for rule in policy["spec"].get("ingress", []):
        if not any(p.get("port") == port for p in rule.get("ports", [])):
            continue
        for peer in rule.get("from", []):
            namespace_ok = "namespaceSelector" in peer and selects(peer["namespaceSelector"], namespace_labels)
            pod_ok = selects(peer.get("podSelector", {}), pod_labels)
            if namespace_ok and pod_ok:
                return True
    return False


# Who must reach which port: (port, namespace labels, pod labels, why). Prometheus in
# every overlay; the gRPC clients by overlay.
PROMETHEUS = (9090, {"kubernetes.io/metadata.name": "monitoring"},
              {"app.kubernetes.io/name": "prometheus", "prometheus": "kube-prometheus-stack-prometheus"},
              "kube-prometheus-stack's Prometheus")
MUST_ADMIT = {
    "base": [
        (9001, {}, {"portcullis.io/client": "true"}, "a labelled Envoy front proxy"),
    ],
    "istio": [
        (9001, {"istio-injection": "enabled"}, {"app": "orders"}, "a sidecar in an injected namespace"),
        (9001, {"istio.io/rev": "1-24"}, {"app": "orders"}, "a sidecar in a revision-labelled namespace"),
        (9001, {}, {"sidecar.istio.io/inject": "true"}, "a sidecar injected by pod label"),
        (9001, {"kubernetes.io/metadata.name": "istio-ingress"}, {"istio": "ingressgateway"}, "an ingress gateway"),
        (9001, {}, {"gateway.networking.k8s.io/gateway-name": "waypoint"}, "an ambient waypoint"),
        (9001, {"istio.io/dataplane-mode": "ambient"}, {"app": "orders"}, "a proxy in an ambient namespace"),
    ],
    "envoy-gateway": [
        (9001, {}, {"portcullis.io/client": "true"}, "a labelled Envoy front proxy"),
        (9001, {"kubernetes.io/metadata.name": "envoy-gateway-system"},
         {"app.kubernetes.io/name": "envoy", "app.kubernetes.io/component": "proxy"}, "Envoy Gateway's proxies"),
    ],
}


def check_semantics(name, docs, problems):
    by_kind = {}
    for doc in docs:
        by_kind.setdefault(doc["kind"], []).append(doc)
    for deployment in by_kind.get("Deployment", []):
        pod = deployment["spec"]["template"]
        labels = pod["metadata"].get("labels", {})
        if not subset(deployment["spec"]["selector"]["matchLabels"], labels):
            problems.append(f"{name}: Deployment selector does not select its own pods")
        namespace = deployment["metadata"].get("namespace")
        for kind, path in [("Service", ["spec", "selector"]), ("PodDisruptionBudget", ["spec", "selector", "matchLabels"]),
                           ("NetworkPolicy", ["spec", "podSelector", "matchLabels"])]:
            for doc in by_kind.get(kind, []):
                if doc["metadata"].get("namespace") != namespace:
                    continue
                selector = doc
                for key in path:
                    selector = (selector or {}).get(key)
                if not selector or not subset(selector, labels):
                    problems.append(f"{name}: {kind} {doc['metadata']['name']} does not select the pods of Deployment {deployment['metadata']['name']}")
        spec = pod["spec"]
        if not spec.get("securityContext", {}).get("runAsNonRoot"):
            problems.append(f"{name}: pod may run as root")
        for container in spec["containers"]:
            sc = container.get("securityContext", {})
            if sc.get("allowPrivilegeEscalation") is not False or not sc.get("readOnlyRootFilesystem") \
                    or "ALL" not in sc.get("capabilities", {}).get("drop", []):
                problems.append(f"{name}: container {container['name']} is not hardened")
            if not container.get("resources", {}).get("limits") or not container.get("resources", {}).get("requests"):
                problems.append(f"{name}: container {container['name']} lacks requests/limits")
            for probe in ["readinessProbe", "livenessProbe"]:
                if probe not in container:
                    problems.append(f"{name}: container {container['name']} lacks a {probe}")
    for policy in by_kind.get("NetworkPolicy", []):
        for rule in policy["spec"].get("egress", []):
            for peer in rule.get("to", []):
                # A podSelector alone selects pods of portcullis's own namespace only.
                if "podSelector" in peer and "namespaceSelector" not in peer:
                    problems.append(f"{name}: egress to {peer['podSelector']} lacks a namespaceSelector")
        overlay = "istio" if "istio" in name else "envoy-gateway" if "envoy-gateway" in name else "base"
        for port, namespace, pod, why in MUST_ADMIT[overlay] + [PROMETHEUS]:
            if not admits(policy, port, namespace, pod):
                problems.append(f"{name}: the NetworkPolicy keeps {why} from port {port}")
    services = by_kind.get("Service", [])
    for monitor in by_kind.get("ServiceMonitor", []):
        selected = [s for s in services if selects(monitor["spec"]["selector"], s["metadata"].get("labels", {}))]
        if not selected:
            problems.append(f"{name}: ServiceMonitor {monitor['metadata']['name']} selects no Service")
        for endpoint in monitor["spec"]["endpoints"]:
            if not any(p.get("name") == endpoint["port"] for s in selected for p in s["spec"]["ports"]):
                problems.append(f"{name}: ServiceMonitor port {endpoint['port']} is not a port of the Service")
    for rule_set in by_kind.get("PrometheusRule", []):
        for group in rule_set["spec"]["groups"]:
            for rule in group["rules"]:
                check_queries(f"{name}: alert {rule['alert']}", rule["expr"], problems)


# The metric names portcullis exports (src/metrics.rs), with Prometheus's suffixes.
METRICS = {
    "portcullis_check_duration_seconds_count", "portcullis_check_duration_seconds_bucket",
    "portcullis_jwks_fetches_total", "portcullis_jwks_keys", "portcullis_jwks_age_seconds",
    "portcullis_config_reloads_total", "portcullis_audit_would_deny_total",
    "portcullis_token_cache_entries", "portcullis_token_cache_lookups_total",
    "portcullis_connections_refused_total", "portcullis_build_info",
    "portcullis_check_duration_seconds_sum",
}


def check_queries(where, expr, problems):
    """A PromQL expression names only metrics portcullis exports."""
    import re

    for name in re.findall(r"portcullis_[a-z_]+", expr):
        if name not in METRICS:
            problems.append(f"{where} queries unknown metric {name}")


def check_dashboard(problems):
    """The Grafana dashboard is JSON and queries only metrics portcullis exports."""
    import json

    path = pathlib.Path("k8s/grafana/portcullis-dashboard.json")
    dashboard = json.loads(path.read_text())
    for panel in dashboard["panels"]:
        for target in panel["targets"]:
            check_queries(f"{path}: panel {panel['title']!r}", target["expr"], problems)
    print(f"{path}: {len(dashboard['panels'])} panels checked")


CONFIG_SCHEMA = pathlib.Path("config/portcullis.schema.json")


POLICY_FILE_SCHEMA = pathlib.Path("config/policy-file.schema.json")


def check_config_schema(mains, policy_files, problems):
    """The shipped main files and policy files match their JSON Schemas, and the schemas
    refuse a misspelt field, as `portcullis validate` does."""
    schema = json.loads(CONFIG_SCHEMA.read_text())
    example = yaml.safe_load(pathlib.Path("config/example.yaml").read_text())
    file_schema = json.loads(POLICY_FILE_SCHEMA.read_text())
    checks = [(label, policy, schema) for label, policy in [("config/example.yaml", example)] + mains]
    checks += [(label, yaml.safe_load(text), file_schema) for label, _, text in policy_files]
    for label, policy, against in checks:
        try:
            jsonschema.validate(policy, against)
        except jsonschema.ValidationError as error:
            problems.append(f"{label}: does not match its schema: {error.message}")
    misspelt = dict(example, server=dict(example["server"], relam="typo"))
    if jsonschema.Draft202012Validator(schema).is_valid(misspelt):
        problems.append(f"{CONFIG_SCHEMA} accepts an unknown field")
    if jsonschema.Draft202012Validator(file_schema).is_valid({"scope": {"baseline": True}, "rotues": []}):
        problems.append(f"{POLICY_FILE_SCHEMA} accepts an unknown field")
    print(f"{CONFIG_SCHEMA}, {POLICY_FILE_SCHEMA}: {len(checks)} files checked")


def check_custom_resources(labelled, problems):
    """Custom resources against their CRD schemas (npm kubernetes-models)."""
    if not labelled:
        return
    result = subprocess.run(
        ["node", "tests/k8s-schemas/validate.mjs"],
        input=json.dumps([doc for _, doc in labelled]), capture_output=True, text=True,
    )
    if result.returncode != 0:
        problems.append(f"CRD schema validation failed to run (npm ci --prefix tests/k8s-schemas?): {result.stderr.strip()}")
        return
    for (label, doc), found in zip(labelled, json.loads(result.stdout)):
        if found is None:
            problems.append(f"{label}: no schema for {doc['apiVersion']} {doc['kind']}")
        for problem in found or []:
            problems.append(f"{label}: {problem}")


def portcullis_validate(binary, label, main, policy_files, problems):
    """`portcullis validate` on a render's main file with its policy files as the
    directory (or the policy files alone)."""
    with tempfile.TemporaryDirectory() as directory:
        root = pathlib.Path(directory)
        policies = root / "policies"
        policies.mkdir()
        for _, name, text in policy_files:
            (policies / name).write_text(text)
        args = [binary, "validate"]
        if main is not None:
            (root / "portcullis.yaml").write_text(main)
            args += ["--config", str(root / "portcullis.yaml")]
            if policy_files:
                args += ["--policy-dir", str(policies)]
        else:
            args.append(str(policies))
        check = subprocess.run(args, capture_output=True, text=True)
        if check.returncode != 0:
            problems.append(f"{label}: portcullis validate: {check.stderr.strip().replace(directory, '')}")


def images(docs):
    return {c["image"] for d in docs if d["kind"] == "Deployment" for c in d["spec"]["template"]["spec"]["containers"]}


def main():
    binary = sys.argv[1]
    problems = []
    rendered_images = {}
    mains = []
    # Every example's team files, to check together: teams share one portcullis.
    team_files = {}
    providers = mesh_providers(problems)
    # Components are checked through the kustomizations that use them.
    kustomizations = sorted(
        p.parent for p in pathlib.Path("k8s").rglob("kustomization.yaml")
        if yaml.safe_load(p.read_text()).get("kind") != "Component"
    )
    for directory in kustomizations:
        rendered = subprocess.run(["kubectl", "kustomize", str(directory)], capture_output=True, text=True)
        if rendered.returncode != 0:
            problems.append(f"{directory}: kubectl kustomize failed: {rendered.stderr.strip()}")
            continue
        docs = [d for d in yaml.safe_load_all(rendered.stdout) if d]
        custom = []
        main, policy_files = None, []
        for doc in docs:
            label = f"{directory}: {doc['kind']}/{doc['metadata']['name']}"
            try:
                for version in KUBERNETES_VERSIONS:
                    kubernetes_validate.validate(doc, version, strict=True)
            except kubernetes_validate.ValidationError as error:
                problems.append(f"{label}: {error.message}")
            except kubernetes_validate.SchemaNotFoundError:
                custom.append((label, doc))
            if doc["kind"] == "ConfigMap" and "portcullis.yaml" in doc.get("data", {}):
                main = doc["data"]["portcullis.yaml"]
                mains.append((label, yaml.safe_load(main)))
            if doc["kind"] == "ConfigMap" and doc["metadata"].get("name", "").startswith("portcullis-policy-"):
                for name, text in doc.get("data", {}).items():
                    policy_files.append((f"{label}: {name}", name, text))
                    if doc["metadata"]["name"] != "portcullis-policy-platform":
                        if team_files.get(name, (None, text))[1] != text:
                            problems.append(f"{label}: another example has a different {name}")
                        team_files[name] = (f"{label}: {name}", text)
            if doc["kind"] == "AuthorizationPolicy" and doc["spec"].get("action") == "CUSTOM" \
                    and doc["spec"]["provider"]["name"] not in providers:
                problems.append(f"{label}: names a provider the mesh config does not define")
        check_custom_resources(custom, problems)
        portcullis_validate(binary, str(directory), main, policy_files, problems)
        check_semantics(str(directory), docs, problems)
        rendered_images[str(directory)] = images(docs)
        print(f"{directory}: {len(docs)} resources rendered and checked ({len(custom)} custom)")
    if rendered_images.get("k8s/overlays/example") == rendered_images.get("k8s/base"):
        problems.append("k8s/overlays/example does not replace the base's image")
    platform = pathlib.Path("k8s/components/policy-directory")
    every_team = [(label, name, text) for name, (label, text) in team_files.items()]
    every_team.append(("platform.yaml", "platform.yaml", (platform / "platform.yaml").read_text()))
    portcullis_validate(binary, "every example's team file together", (platform / "portcullis.yaml").read_text(),
                        every_team, problems)
    print(f"{len(team_files)} team files of the examples checked together")
    check_dashboard(problems)
    check_config_schema(mains, every_team, problems)
    for problem in problems:
        print(f"PROBLEM {problem}")
    if not kustomizations:
        problems.append("no kustomization found")
    sys.exit(1 if problems else 0)


def mesh_providers(problems):
    """The extension providers of the Istio mesh config (which must be the same in its
    IstioOperator and Helm values forms)."""
    mesh = yaml.safe_load(pathlib.Path("k8s/overlays/istio/mesh-config.yaml").read_text())
    helm = yaml.safe_load(pathlib.Path("k8s/overlays/istio/mesh-config-helm-values.yaml").read_text())
    if helm.get("meshConfig") != mesh["spec"]["meshConfig"]:
        problems.append("mesh-config-helm-values.yaml's meshConfig differs from mesh-config.yaml's")
    try:
        jsonschema.validate(mesh, ISTIO_OPERATOR_MESH_CONFIG)
    except jsonschema.ValidationError as error:
        problems.append(f"k8s/overlays/istio/mesh-config.yaml: {error.message}")
    return [p["name"] for p in mesh["spec"]["meshConfig"]["extensionProviders"]]


if __name__ == "__main__":
    main()
