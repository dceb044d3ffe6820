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
                                    "routeConfiguration": {"type": "object"},
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

LABEL_SELECTOR = {
    "type": "object",
    "additionalProperties": False,
    "properties": {"matchLabels": {"type": "object", "additionalProperties": {"type": "string"}}},
}

# monitoring.coreos.com/v1 ServiceMonitor (the fields used, from the Prometheus Operator
# API reference).
SERVICE_MONITOR = {
    "type": "object",
    "required": ["apiVersion", "kind", "metadata", "spec"],
    "additionalProperties": False,
    "properties": {
        "apiVersion": {"const": "monitoring.coreos.com/v1"},
        "kind": {"const": "ServiceMonitor"},
        "metadata": METADATA,
        "spec": {
            "type": "object",
            "required": ["selector", "endpoints"],
            "additionalProperties": False,
            "properties": {
                "selector": LABEL_SELECTOR,
                "namespaceSelector": {"type": "object"},
                "endpoints": {
                    "type": "array",
                    "minItems": 1,
                    "items": {
                        "type": "object",
                        "additionalProperties": False,
                        "required": ["port"],
                        "properties": {
                            "port": {"type": "string"},
                            "path": {"type": "string", "pattern": "^/"},
                            "scheme": {"enum": ["http", "https"]},
                            "interval": {"type": "string", "pattern": "^([0-9]+(ms|s|m|h))+$"},
                            "scrapeTimeout": {"type": "string", "pattern": "^([0-9]+(ms|s|m|h))+$"},
                        },
                    },
                },
            },
        },
    },
}

# monitoring.coreos.com/v1 PrometheusRule: alerting rules.
PROMETHEUS_RULE = {
    "type": "object",
    "required": ["apiVersion", "kind", "metadata", "spec"],
    "additionalProperties": False,
    "properties": {
        "apiVersion": {"const": "monitoring.coreos.com/v1"},
        "kind": {"const": "PrometheusRule"},
        "metadata": METADATA,
        "spec": {
            "type": "object",
            "required": ["groups"],
            "additionalProperties": False,
            "properties": {
                "groups": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "required": ["name", "rules"],
                        "additionalProperties": False,
                        "properties": {
                            "name": {"type": "string"},
                            "interval": {"type": "string"},
                            "rules": {
                                "type": "array",
                                "items": {
                                    "type": "object",
                                    "required": ["alert", "expr", "labels", "annotations"],
                                    "additionalProperties": False,
                                    "properties": {
                                        "alert": {"type": "string", "pattern": "^[A-Za-z_][A-Za-z0-9_]*$"},
                                        "expr": {"type": "string"},
                                        "for": {"type": "string", "pattern": "^([0-9]+(ms|s|m|h|d|w|y))+$"},
                                        "labels": {
                                            "type": "object",
                                            "required": ["severity"],
                                            "additionalProperties": {"type": "string"},
                                        },
                                        "annotations": {
                                            "type": "object",
                                            "required": ["summary"],
                                            "additionalProperties": {"type": "string"},
                                        },
                                    },
                                },
                            },
                        },
                    },
                }
            },
        },
    },
}

CUSTOM_KINDS = {
    ("monitoring.coreos.com/v1", "ServiceMonitor"): SERVICE_MONITOR,
    ("monitoring.coreos.com/v1", "PrometheusRule"): PROMETHEUS_RULE,
    ("security.istio.io/v1", "AuthorizationPolicy"): AUTHORIZATION_POLICY,
    ("networking.istio.io/v1alpha3", "EnvoyFilter"): ENVOY_FILTER,
    ("cert-manager.io/v1", "Certificate"): CERTIFICATE,
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
                # A podSelector alone selects pods of portcullis's own namespace only.
                if "podSelector" in peer and "namespaceSelector" not in peer:
                    problems.append(f"{name}: egress to {peer['podSelector']} lacks a namespaceSelector")
        overlay = "istio" if name.endswith("istio") else "base"
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


def check_config_schema(policies, problems):
    """The shipped policies match the config's JSON Schema, and the schema refuses a
    misspelt field, as `portcullis validate` does."""
    import json

    schema = json.loads(CONFIG_SCHEMA.read_text())
    example = yaml.safe_load(pathlib.Path("config/example.yaml").read_text())
    for label, policy in [("config/example.yaml", example)] + policies:
        try:
            jsonschema.validate(policy, schema)
        except jsonschema.ValidationError as error:
            problems.append(f"{label}: does not match {CONFIG_SCHEMA}: {error.message}")
    misspelt = dict(example, server=dict(example["server"], relam="typo"))
    if jsonschema.Draft202012Validator(schema).is_valid(misspelt):
        problems.append(f"{CONFIG_SCHEMA} accepts an unknown field")
    print(f"{CONFIG_SCHEMA}: {1 + len(policies)} policies checked")


def images(docs):
    return {c["image"] for d in docs if d["kind"] == "Deployment" for c in d["spec"]["template"]["spec"]["containers"]}


def main():
    binary = sys.argv[1]
    problems = []
    rendered_images = {}
    policies = []
    # Components are checked through the overlays that use them (k8s/overlays/example).
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
                policies.append((label, yaml.safe_load(doc["data"]["portcullis.yaml"])))
                with tempfile.NamedTemporaryFile("w", suffix=".yaml") as policy:
                    policy.write(doc["data"]["portcullis.yaml"])
                    policy.flush()
                    check = subprocess.run([binary, "validate", "--config", policy.name], capture_output=True, text=True)
                    if check.returncode != 0:
                        problems.append(f"{label}: portcullis validate: {check.stderr.strip()}")
        check_semantics(str(directory), docs, problems)
        rendered_images[str(directory)] = images(docs)
        print(f"{directory}: {len(docs)} resources rendered and checked")
    if rendered_images.get("k8s/overlays/example") == rendered_images.get("k8s/base"):
        problems.append("k8s/overlays/example does not replace the base's image")
    mesh = yaml.safe_load(pathlib.Path("k8s/overlays/istio/mesh-config.yaml").read_text())
    helm = yaml.safe_load(pathlib.Path("k8s/overlays/istio/mesh-config-helm-values.yaml").read_text())
    if helm.get("meshConfig") != mesh["spec"]["meshConfig"]:
        problems.append("mesh-config-helm-values.yaml's meshConfig differs from mesh-config.yaml's")
    try:
        jsonschema.validate(mesh, ISTIO_OPERATOR_MESH_CONFIG)
    except jsonschema.ValidationError as error:
        problems.append(f"k8s/overlays/istio/mesh-config.yaml: {error.message}")
    providers = [p["name"] for p in mesh["spec"]["meshConfig"]["extensionProviders"]]
    policy = yaml.safe_load(pathlib.Path("k8s/overlays/istio/authorizationpolicy.yaml").read_text())
    if policy["spec"]["provider"]["name"] not in providers:
        problems.append("the AuthorizationPolicy names a provider the mesh config does not define")
    check_dashboard(problems)
    check_config_schema(policies, problems)
    for problem in problems:
        print(f"PROBLEM {problem}")
    if not kustomizations:
        problems.append("no kustomization found")
    sys.exit(1 if problems else 0)


if __name__ == "__main__":
    main()
