#!/usr/bin/env python3
"""Renders every kustomization under k8s/ with `kubectl kustomize` and validates the output
offline: Kubernetes kinds strictly against the API schemas of the oldest and newest
supported versions (PyPI kubernetes-validate), Istio and cert-manager kinds against the
JSON schemas below (the fields these manifests use, from the projects' API references),
plus the checks schemas cannot make: selectors that select the pods, a hardened pod, and
a policy file that `portcullis validate` accepts.

Usage: validate_k8s.py PORTCULLIS_BINARY   (run from the repository root; exit 1 on a problem)
"""

import pathlib
import subprocess
import sys
import tempfile

import jsonschema
import kubernetes_validate
import yaml

KUBERNETES_VERSIONS = ["1.30.0", "1.37.0"]

STRING_LIST = {"type": "array", "items": {"type": "string"}}
METADATA = {
    "type": "object",
    "required": ["name"],
    "properties": {"name": {"type": "string"}, "namespace": {"type": "string"}, "labels": {"type": "object"}},
}

# security.istio.io/v1 AuthorizationPolicy (the CUSTOM-action subset).
AUTHORIZATION_POLICY = {
    "type": "object",
    "required": ["apiVersion", "kind", "metadata", "spec"],
    "additionalProperties": False,
    "properties": {
        "apiVersion": {"const": "security.istio.io/v1"},
        "kind": {"const": "AuthorizationPolicy"},
        "metadata": METADATA,
        "spec": {
            "type": "object",
            "additionalProperties": False,
            "required": ["action", "provider"],
            "properties": {
                "selector": {
                    "type": "object",
                    "additionalProperties": False,
                    "properties": {"matchLabels": {"type": "object", "additionalProperties": {"type": "string"}}},
                },
                "action": {"enum": ["ALLOW", "DENY", "AUDIT", "CUSTOM"]},
                "provider": {
                    "type": "object",
                    "additionalProperties": False,
                    "required": ["name"],
                    "properties": {"name": {"type": "string"}},
                },
                "rules": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "additionalProperties": False,
                        "properties": {
                            "to": {
                                "type": "array",
                                "items": {
                                    "type": "object",
                                    "additionalProperties": False,
                                    "properties": {
                                        "operation": {
                                            "type": "object",
                                            "additionalProperties": False,
                                            "properties": {
                                                key: STRING_LIST
                                                for key in [
                                                    "hosts", "notHosts", "ports", "notPorts",
                                                    "methods", "notMethods", "paths", "notPaths",
                                                ]
                                            },
                                        }
                                    },
                                },
                            },
                            "from": {"type": "array"},
                            "when": {"type": "array"},
                        },
                    },
                },
            },
        },
    },
}

# install.istio.io/v1alpha1 IstioOperator, meshConfig.extensionProviders[].envoyExtAuthzGrpc.
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

# networking.istio.io/v1alpha3 EnvoyFilter (configPatches, the fields used here).
ENVOY_FILTER = {
    "type": "object",
    "required": ["apiVersion", "kind", "metadata", "spec"],
    "additionalProperties": False,
    "properties": {
        "apiVersion": {"const": "networking.istio.io/v1alpha3"},
        "kind": {"const": "EnvoyFilter"},
        "metadata": METADATA,
        "spec": {
            "type": "object",
            "additionalProperties": False,
            "required": ["configPatches"],
            "properties": {
                "configPatches": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "additionalProperties": False,
                        "required": ["applyTo", "patch"],
                        "properties": {
                            "applyTo": {
                                "enum": ["LISTENER", "FILTER_CHAIN", "NETWORK_FILTER", "HTTP_FILTER", "ROUTE_CONFIGURATION",
                                         "VIRTUAL_HOST", "HTTP_ROUTE", "CLUSTER", "EXTENSION_CONFIG", "BOOTSTRAP",
                                         "LISTENER_FILTER"]
                            },
                            "match": {
                                "type": "object",
                                "additionalProperties": False,
                                "properties": {
                                    "context": {"enum": ["ANY", "SIDECAR_INBOUND", "SIDECAR_OUTBOUND", "GATEWAY"]},
                                    "listener": {"type": "object"},
                                    "proxy": {"type": "object"},
                                },
                            },
                            "patch": {
                                "type": "object",
                                "additionalProperties": False,
                                "required": ["operation"],
                                "properties": {
                                    "operation": {
                                        "enum": ["MERGE", "ADD", "REMOVE", "INSERT_BEFORE", "INSERT_AFTER", "INSERT_FIRST",
                                                 "REPLACE"]
                                    },
                                    "value": {"type": "object"},
                                },
                            },
                        },
                    },
                }
            },
        },
    },
}

# cert-manager.io/v1 Certificate (the fields used here).
CERTIFICATE = {
    "type": "object",
    "required": ["apiVersion", "kind", "metadata", "spec"],
    "additionalProperties": False,
    "properties": {
        "apiVersion": {"const": "cert-manager.io/v1"},
        "kind": {"const": "Certificate"},
        "metadata": METADATA,
        "spec": {
            "type": "object",
            "additionalProperties": False,
            "required": ["secretName", "issuerRef"],
            "properties": {
                "secretName": {"type": "string"},
                "duration": {"type": "string"},
                "renewBefore": {"type": "string"},
                "dnsNames": STRING_LIST,
                "usages": {"type": "array", "items": {"enum": ["server auth", "client auth", "digital signature", "key encipherment"]}},
                "privateKey": {
                    "type": "object",
                    "additionalProperties": False,
                    "properties": {
                        "algorithm": {"enum": ["RSA", "ECDSA", "Ed25519"]},
                        "size": {"type": "integer"},
                        "rotationPolicy": {"enum": ["Never", "Always"]},
                        "encoding": {"enum": ["PKCS1", "PKCS8"]},
                    },
                },
                "issuerRef": {
                    "type": "object",
                    "additionalProperties": False,
                    "required": ["name"],
                    "properties": {"name": {"type": "string"}, "kind": {"type": "string"}, "group": {"type": "string"}},
                },
            },
        },
    },
}

CUSTOM_KINDS = {
    ("security.istio.io/v1", "AuthorizationPolicy"): AUTHORIZATION_POLICY,
    ("networking.istio.io/v1alpha3", "EnvoyFilter"): ENVOY_FILTER,
    ("cert-manager.io/v1", "Certificate"): CERTIFICATE,
}


def subset(selector, labels):
    return all(labels.get(k) == v for k, v in (selector or {}).items())


def check_semantics(name, docs, problems):
    by_kind = {}
    for doc in docs:
        by_kind.setdefault(doc["kind"], []).append(doc)
    for deployment in by_kind.get("Deployment", []):
        pod = deployment["spec"]["template"]
        labels = pod["metadata"].get("labels", {})
        if not subset(deployment["spec"]["selector"]["matchLabels"], labels):
            problems.append(f"{name}: Deployment selector does not select its own pods")
        for kind, path in [("Service", ["spec", "selector"]), ("PodDisruptionBudget", ["spec", "selector", "matchLabels"]),
                           ("NetworkPolicy", ["spec", "podSelector", "matchLabels"])]:
            for doc in by_kind.get(kind, []):
                selector = doc
                for key in path:
                    selector = (selector or {}).get(key)
                if not selector or not subset(selector, labels):
                    problems.append(f"{name}: {kind} {doc['metadata']['name']} does not select the portcullis pods")
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
                selector = peer.get("podSelector", {}).get("matchLabels")
                if selector and selector != {"k8s-app": "kube-dns"}:
                    problems.append(f"{name}: unexpected egress pod selector {selector}")


# The metric names portcullis exports (src/metrics.rs), with Prometheus's suffixes.
METRICS = {
    "portcullis_check_duration_seconds_count", "portcullis_check_duration_seconds_bucket",
    "portcullis_jwks_fetches_total", "portcullis_jwks_keys", "portcullis_jwks_age_seconds",
    "portcullis_config_reloads_total", "portcullis_audit_would_deny_total",
    "portcullis_token_cache_entries", "portcullis_token_cache_lookups_total",
    "portcullis_connections_refused_total", "portcullis_build_info",
    "portcullis_check_duration_seconds_sum",
}


def check_dashboard(problems):
    """The Grafana dashboard is JSON and queries only metrics portcullis exports."""
    import json
    import re

    path = pathlib.Path("k8s/grafana/portcullis-dashboard.json")
    dashboard = json.loads(path.read_text())
    for panel in dashboard["panels"]:
        for target in panel["targets"]:
            for name in re.findall(r"portcullis_[a-z_]+", target["expr"]):
                if name not in METRICS:
                    problems.append(f"{path}: panel {panel['title']!r} queries unknown metric {name}")
    print(f"{path}: {len(dashboard['panels'])} panels checked")


def main():
    binary = sys.argv[1]
    problems = []
    kustomizations = sorted(p.parent for p in pathlib.Path("k8s").rglob("kustomization.yaml"))
    for directory in kustomizations:
        rendered = subprocess.run(["kubectl", "kustomize", str(directory)], capture_output=True, text=True)
        if rendered.returncode != 0:
            problems.append(f"{directory}: kubectl kustomize failed: {rendered.stderr.strip()}")
            continue
        docs = [d for d in yaml.safe_load_all(rendered.stdout) if d]
        for doc in docs:
            label = f"{directory}: {doc['kind']}/{doc['metadata']['name']}"
            schema = CUSTOM_KINDS.get((doc["apiVersion"], doc["kind"]))
            try:
                if schema is not None:
                    jsonschema.validate(doc, schema)
                else:
                    for version in KUBERNETES_VERSIONS:
                        kubernetes_validate.validate(doc, version, strict=True)
            except (jsonschema.ValidationError, kubernetes_validate.ValidationError) as error:
                problems.append(f"{label}: {error.message}")
            except kubernetes_validate.SchemaNotFoundError:
                problems.append(f"{label}: no schema for {doc['apiVersion']} {doc['kind']}")
            if doc["kind"] == "ConfigMap" and "portcullis.yaml" in doc.get("data", {}):
                with tempfile.NamedTemporaryFile("w", suffix=".yaml") as policy:
                    policy.write(doc["data"]["portcullis.yaml"])
                    policy.flush()
                    check = subprocess.run([binary, "validate", "--config", policy.name], capture_output=True, text=True)
                    if check.returncode != 0:
                        problems.append(f"{label}: portcullis validate: {check.stderr.strip()}")
        check_semantics(str(directory), docs, problems)
        print(f"{directory}: {len(docs)} resources rendered and checked")
    mesh = yaml.safe_load(pathlib.Path("k8s/overlays/istio/mesh-config.yaml").read_text())
    try:
        jsonschema.validate(mesh, ISTIO_OPERATOR_MESH_CONFIG)
    except jsonschema.ValidationError as error:
        problems.append(f"k8s/overlays/istio/mesh-config.yaml: {error.message}")
    providers = [p["name"] for p in mesh["spec"]["meshConfig"]["extensionProviders"]]
    policy = yaml.safe_load(pathlib.Path("k8s/overlays/istio/authorizationpolicy.yaml").read_text())
    if policy["spec"]["provider"]["name"] not in providers:
        problems.append("the AuthorizationPolicy names a provider the mesh config does not define")
    check_dashboard(problems)
    for problem in problems:
        print(f"PROBLEM {problem}")
    if not kustomizations:
        problems.append("no kustomization found")
    sys.exit(1 if problems else 0)


if __name__ == "__main__":
    main()
