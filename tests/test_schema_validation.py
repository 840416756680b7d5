"""Invalid manifests are refused with the API server's own words, and nothing is applied.

One row per mistake a learner makes in YAML — a typo (unknown field), a
repeated key, a wrong type, a value outside an enumeration, a missing required
field, a bound, a pattern, a CEL rule, a Linkerd webhook's rule — across the
kinds the labs apply. Each expected message is written here from the real
schemas (Kubernetes 1.32's OpenAPI, the Linkerd 2.20 / Gateway API v1.2.1 /
linkerd-smi / Flagger 1.44 CRDs) and the API server's documented wording:

* a body the decoder refuses: ``Error from server (BadRequest): error when creating "STDIN": <Kind> in version
  "<v>" cannot be handled as a <Kind>: <json error | strict decoding error: unknown field "…">``;
* a 422 Invalid: ``The <Kind> "<name>" is invalid: <field>: <Type>: <value>: <detail>``, several causes one per
  ``* `` line;
* a validating webhook's denial: ``Error from server: error when creating "STDIN": admission webhook "<name>" denied
  the request: <reason>``.

Multi-cause rows compare the causes as a set: the API server's order among
them is not specified (kube-openapi walks Go maps).
"""
from __future__ import annotations

import pytest

import labkit
from labkit.errors import ApplyError, NotFoundError

DNS_SUBDOMAIN = ("a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and "
                 "must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is "
                 r"'[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')")
DNS_LABEL = ("a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start "
             "and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is "
             "'[a-z0-9]([-a-z0-9]*[a-z0-9])?')")
NOT_CHECKED = ('<nil>: Invalid value: "null": some validation rules were not checked because the object was invalid; '
               "correct the existing errors to complete validation")
SP_WEBHOOK = 'Error from server: error when creating "STDIN": admission webhook "linkerd-sp-validator.linkerd.io" denied the request: '
POLICY_WEBHOOK = ('Error from server: error when creating "STDIN": admission webhook "linkerd-policy-validator.linkerd.io" '
                  "denied the request: ")
SP = "web.shop.svc.cluster.local"


def bad_request(kind: str, version: str, detail: str) -> str:
    return (f'Error from server (BadRequest): error when creating "STDIN": {kind} in version "{version}" cannot be '
            f"handled as a {kind}: {detail}")


def unknown(kind: str, version: str, *fields: str) -> str:
    return bad_request(kind, version, "strict decoding error: " + ", ".join(f'unknown field "{f}"' for f in fields))


def invalid(kind: str, name: str, *causes: str) -> str:
    if len(causes) == 1:
        return f'The {kind} "{name}" is invalid: {causes[0]}'
    return f'The {kind} "{name}" is invalid: \n' + "\n".join(f"* {c}" for c in causes)


# -- valid bases: each row changes one thing ----------------------------------------------------------------------

DEPLOYMENT = """\
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: shop}
spec:
  replicas: 1
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
      - name: web
        image: ghcr.io/buoyantio/emojivoto-web:v11
        ports: [{containerPort: 8080}]
"""
SERVICE = """\
apiVersion: v1
kind: Service
metadata: {name: web, namespace: shop}
spec:
  selector: {app: web}
  ports: [{name: http, port: 80, targetPort: 8080}]
"""
CONFIGMAP = """\
apiVersion: v1
kind: ConfigMap
metadata: {name: settings, namespace: shop}
data: {mode: fast}
"""
NAMESPACE = """\
apiVersion: v1
kind: Namespace
metadata: {name: store}
"""
SERVICEPROFILE = f"""\
apiVersion: linkerd.io/v1alpha2
kind: ServiceProfile
metadata: {{name: {SP}, namespace: shop}}
spec:
  routes:
  - name: GET /books
    condition: {{method: GET, pathRegex: /books}}
"""
SERVER = """\
apiVersion: policy.linkerd.io/v1beta3
kind: Server
metadata: {name: web-http, namespace: shop}
spec:
  podSelector: {matchLabels: {app: web}}
  port: http
"""
AUTHZ = """\
apiVersion: policy.linkerd.io/v1alpha1
kind: AuthorizationPolicy
metadata: {name: web-authz, namespace: shop}
spec:
  targetRef: {group: policy.linkerd.io, kind: Server, name: web-http}
  requiredAuthenticationRefs: [{name: web, kind: ServiceAccount}]
"""
HTTPROUTE = """\
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: books, namespace: shop}
spec:
  parentRefs: [{name: web, kind: Service, group: core, port: 80}]
  rules:
  - matches: [{path: {type: PathPrefix, value: /books}}]
    backendRefs: [{name: web, port: 80}]
"""
POLICY_ROUTE = """\
apiVersion: policy.linkerd.io/v1beta3
kind: HTTPRoute
metadata: {name: books, namespace: shop}
spec:
  parentRefs: [{name: web, kind: Service, group: core, port: 80}]
  rules:
  - matches: [{path: {type: PathPrefix, value: /books}}]
    timeouts: {request: 10s}
"""
GRPCROUTE = """\
apiVersion: gateway.networking.k8s.io/v1
kind: GRPCRoute
metadata: {name: emoji, namespace: shop}
spec:
  parentRefs: [{name: emoji-svc, kind: Service, group: core, port: 8080}]
  rules:
  - matches: [{method: {service: emojivoto.v1.EmojiService, method: ListAll}}]
    backendRefs: [{name: emoji-svc, port: 8080}]
"""
TRAFFICSPLIT = """\
apiVersion: split.smi-spec.io/v1alpha1
kind: TrafficSplit
metadata: {name: split, namespace: shop}
spec:
  service: web
  backends: [{service: web, weight: 900m}, {service: web-err, weight: 100m}]
"""
CANARY = """\
apiVersion: flagger.app/v1beta1
kind: Canary
metadata: {name: podinfo, namespace: shop}
spec:
  provider: linkerd
  targetRef: {apiVersion: apps/v1, kind: Deployment, name: podinfo}
  service: {port: 9898}
  analysis:
    interval: 30s
    threshold: 5
    maxWeight: 50
    stepWeight: 5
    metrics: [{name: request-success-rate, thresholdRange: {min: 99}, interval: 1m}]
    webhooks: [{name: load-test, url: "http://flagger-loadtester.test/", timeout: 5s}]
"""
METRICTEMPLATE = """\
apiVersion: flagger.app/v1beta1
kind: MetricTemplate
metadata: {name: not-found, namespace: shop}
spec:
  provider: {type: prometheus, address: "http://prometheus.linkerd-viz:9090"}
  query: sum(rate(response_total{status_code="404"}[1m]))
"""
BASES = {"Deployment": DEPLOYMENT, "Service": SERVICE, "ConfigMap": CONFIGMAP, "Namespace": NAMESPACE,
         "ServiceProfile": SERVICEPROFILE, "Server": SERVER, "AuthorizationPolicy": AUTHZ, "HTTPRoute": HTTPROUTE,
         "HTTPRoute.policy": POLICY_ROUTE, "GRPCRoute": GRPCROUTE, "TrafficSplit": TRAFFICSPLIT, "Canary": CANARY,
         "MetricTemplate": METRICTEMPLATE}


def edit(base: str, old: str, new: str) -> str:
    assert old in base, f"{old!r} not in the base manifest"
    return base.replace(old, new, 1)


D, S, C, N = DEPLOYMENT, SERVICE, CONFIGMAP, NAMESPACE
CEL = "cel"  # the row's message comes from a CEL rule of the CRD (labkit.sim.kube.cel evaluates them)

#: id → (base kind, manifest, expected kubectl text, flags)
ROWS: dict[str, tuple] = {
    # -- Deployment: decoding against the 1.32 OpenAPI, then kube-apiserver's Go validation --------------------
    "deploy typo replica": ("Deployment", edit(D, "replicas: 1", "replica: 1"), unknown("Deployment", "v1", "spec.replica")),
    "deploy typo in container": ("Deployment", edit(D, "image: ghcr", "imagePulPolicy: Always\n        image: ghcr"),
                                 unknown("Deployment", "v1", "spec.template.spec.containers[0].imagePulPolicy")),
    "deploy two typos": ("Deployment", edit(edit(D, "replicas: 1", "replica: 1"), "metadata: {labels", "metdata: {labels"),
                         unknown("Deployment", "v1", "spec.replica", "spec.template.metdata")),
    "deploy repeated key": ("Deployment", edit(D, "replicas: 1", "replicas: 1\n  replicas: 2"),
                            bad_request("Deployment", "v1", 'strict decoding error: duplicate field "spec.replicas"')),
    "deploy replicas string": ("Deployment", edit(D, "replicas: 1", 'replicas: "two"'),
                               bad_request("Deployment", "v1", "json: cannot unmarshal string into Go struct field "
                                                               "DeploymentSpec.spec.replicas of type int32")),
    "deploy replicas 1.5": ("Deployment", edit(D, "replicas: 1", "replicas: 1.5"),
                            bad_request("Deployment", "v1", "json: cannot unmarshal number 1.5 into Go struct field "
                                                            "DeploymentSpec.spec.replicas of type int32")),
    "deploy env value number": ("Deployment", edit(D, "ports: [{containerPort: 8080}]",
                                                   "ports: [{containerPort: 8080}]\n        env: [{name: PORT, value: 8080}]"),
                                bad_request("Deployment", "v1", "json: cannot unmarshal number into Go struct field "
                                                                "EnvVar.spec.template.spec.containers.env.value of type string")),
    "deploy containers not a list": ("Deployment", edit(D, "containers:\n      - name: web\n        image: ghcr.io/buoyantio/"
                                                        "emojivoto-web:v11\n        ports: [{containerPort: 8080}]",
                                                        "containers: {name: web}"),
                                     bad_request("Deployment", "v1", "json: cannot unmarshal object into Go struct field "
                                                                     "PodSpec.spec.template.spec.containers of type []v1.Container")),
    "deploy bad quantity": ("Deployment", edit(D, "ports: [{containerPort: 8080}]",
                                               "ports: [{containerPort: 8080}]\n        resources: {limits: {cpu: lots}}"),
                            bad_request("Deployment", "v1", "quantities must match the regular expression "
                                                            "'^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'")),
    "deploy replicas -1": ("Deployment", edit(D, "replicas: 1", "replicas: -1"),
                           invalid("Deployment", "web", "spec.replicas: Invalid value: -1: must be greater than or equal to 0")),
    "deploy no selector": ("Deployment", edit(D, "  selector: {matchLabels: {app: web}}\n", ""),
                           invalid("Deployment", "web", "spec.selector: Required value",
                                   'spec.template.metadata.labels: Invalid value: map[string]string{"app":"web"}: '
                                   "`selector` does not match template `labels`")),
    "deploy selector mismatch": ("Deployment", edit(D, "metadata: {labels: {app: web}}", "metadata: {labels: {app: webapp}}"),
                                 invalid("Deployment", "web", 'spec.template.metadata.labels: Invalid value: '
                                                              'map[string]string{"app":"webapp"}: `selector` does not match '
                                                              "template `labels`")),
    "deploy strategy enum": ("Deployment", edit(D, "replicas: 1", "replicas: 1\n  strategy: {type: Sideways}"),
                             invalid("Deployment", "web", 'spec.strategy.type: Unsupported value: "Sideways": supported '
                                                          'values: "Recreate", "RollingUpdate"')),
    "deploy no image": ("Deployment", edit(D, "        image: ghcr.io/buoyantio/emojivoto-web:v11\n", ""),
                        invalid("Deployment", "web", "spec.template.spec.containers[0].image: Required value")),
    "deploy containerPort range": ("Deployment", edit(D, "containerPort: 8080", "containerPort: 70000"),
                                   invalid("Deployment", "web", "spec.template.spec.containers[0].ports[0].containerPort: "
                                                                "Invalid value: 70000: must be between 1 and 65535, inclusive")),
    "deploy port protocol": ("Deployment", edit(D, "containerPort: 8080", "containerPort: 8080, protocol: HTTP"),
                             invalid("Deployment", "web", 'spec.template.spec.containers[0].ports[0].protocol: Unsupported '
                                                          'value: "HTTP": supported values: "SCTP", "TCP", "UDP"')),
    "deploy pull policy": ("Deployment", edit(D, "ports: [{containerPort: 8080}]",
                                              "ports: [{containerPort: 8080}]\n        imagePullPolicy: Sometimes"),
                           invalid("Deployment", "web", 'spec.template.spec.containers[0].imagePullPolicy: Unsupported '
                                                        'value: "Sometimes": supported values: "Always", "IfNotPresent", '
                                                        '"Never"')),
    "deploy name": ("Deployment", edit(D, "name: web, namespace", "name: Web_1, namespace"),
                    invalid("Deployment", "Web_1", f'metadata.name: Invalid value: "Web_1": {DNS_SUBDOMAIN}')),
    "deploy container name": ("Deployment", edit(D, "- name: web", "- name: Web"),
                              invalid("Deployment", "web", f'spec.template.spec.containers[0].name: Invalid value: "Web": '
                                                           f"{DNS_LABEL}")),
    "deploy label value": ("Deployment", edit(D, "metadata: {name: web, namespace: shop}",
                                              "metadata: {name: web, namespace: shop, labels: {tier: -front}}"),
                           invalid("Deployment", "web", 'metadata.labels: Invalid value: "-front": a valid label must be an '
                                                        "empty string or consist of alphanumeric characters, '-', '_' or "
                                                        "'.', and must start and end with an alphanumeric character (e.g. "
                                                        "'MyValue',  or 'my_value',  or '12345', regex used for validation "
                                                        "is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')")),
    # -- Service -----------------------------------------------------------------------------------------------------
    "svc typo port": ("Service", edit(S, "ports: [", "port: ["), unknown("Service", "v1", "spec.port")),
    "svc type enum": ("Service", edit(S, "selector: {app: web}", "selector: {app: web}\n  type: Public"),
                      invalid("Service", "web", 'spec.type: Unsupported value: "Public": supported values: "ClusterIP", '
                                                '"ExternalName", "LoadBalancer", "NodePort"')),
    "svc port range": ("Service", edit(S, "port: 80,", "port: 70000,"),
                       invalid("Service", "web", "spec.ports[0].port: Invalid value: 70000: must be between 1 and 65535, "
                                                 "inclusive")),
    "svc port string": ("Service", edit(S, "port: 80,", 'port: "80",'),
                        bad_request("Service", "v1", "json: cannot unmarshal string into Go struct field "
                                                     "ServicePort.spec.ports.port of type int32")),
    "svc unnamed ports": ("Service", edit(S, "ports: [{name: http, port: 80, targetPort: 8080}]",
                                          "ports: [{port: 80}, {port: 81}]"),
                          invalid("Service", "web", "spec.ports[0].name: Required value", "spec.ports[1].name: Required value")),
    "svc no ports": ("Service", edit(S, "  ports: [{name: http, port: 80, targetPort: 8080}]\n", ""),
                     invalid("Service", "web", "spec.ports: Required value")),
    "svc protocol": ("Service", edit(S, "targetPort: 8080", "targetPort: 8080, protocol: HTTP"),
                     invalid("Service", "web", 'spec.ports[0].protocol: Unsupported value: "HTTP": supported values: '
                                               '"SCTP", "TCP", "UDP"')),
    "svc targetPort name": ("Service", edit(S, "targetPort: 8080", "targetPort: Http_Port"),
                            invalid("Service", "web", "spec.ports[0].targetPort: Invalid value: Http_Port: must contain only "
                                                      "alpha-numeric characters (a-z, 0-9), and hyphens (-)")),
    "svc name dns-1035": ("Service", edit(S, "name: web, namespace", "name: 1web, namespace"),
                          invalid("Service", "1web", 'metadata.name: Invalid value: "1web": a DNS-1035 label must consist '
                                                     "of lower case alphanumeric characters or '-', start with an "
                                                     "alphabetic character, and end with an alphanumeric character (e.g. "
                                                     "'my-name',  or 'abc-123', regex used for validation is "
                                                     "'[a-z]([-a-z0-9]*[a-z0-9])?')")),
    # -- ConfigMap ---------------------------------------------------------------------------------------------------
    "cm value number": ("ConfigMap", edit(C, "{mode: fast}", "{retries: 3}"),
                        bad_request("ConfigMap", "v1", "json: cannot unmarshal number into Go struct field ConfigMap.data "
                                                       "of type string")),
    "cm typo datas": ("ConfigMap", edit(C, "\ndata:", "\ndatas:"), unknown("ConfigMap", "v1", "datas")),
    "cm repeated key": ("ConfigMap", edit(C, "data: {mode: fast}", "data:\n  mode: fast\n  mode: slow"),
                        bad_request("ConfigMap", "v1", 'strict decoding error: duplicate field "data.mode"')),
    "cm key syntax": ("ConfigMap", edit(C, "{mode: fast}", "{fast mode: 'yes'}"),
                      invalid("ConfigMap", "settings", 'data[fast mode]: Invalid value: "fast mode": a valid config key '
                                                       "must consist of alphanumeric characters, '-', '_' or '.' (e.g. "
                                                       "'key.name',  or 'KEY_NAME',  or 'key-name', regex used for "
                                                       "validation is '[-._a-zA-Z0-9]+')")),
    "cm label number": ("ConfigMap", edit(C, "namespace: shop}", "namespace: shop, labels: {version: 2}}"),
                        'error: unable to decode "STDIN": json: cannot unmarshal number into Go struct field '
                        "ObjectMeta.metadata.labels of type string"),
    "cm name": ("ConfigMap", edit(C, "name: settings", "name: My_Settings"),
                invalid("ConfigMap", "My_Settings", f'metadata.name: Invalid value: "My_Settings": {DNS_SUBDOMAIN}')),
    # -- Namespace ---------------------------------------------------------------------------------------------------
    "ns name": ("Namespace", edit(N, "name: store", "name: Store"),
                invalid("Namespace", "Store", f'metadata.name: Invalid value: "Store": {DNS_LABEL}')),
    "ns name too long": ("Namespace", edit(N, "name: store", "name: " + "n" * 64),
                         invalid("Namespace", "n" * 64, f'metadata.name: Invalid value: "{"n" * 64}": must be no more than '
                                                        "63 characters")),
    "ns typo": ("Namespace", N + "spec: {finalizer: [kubernetes]}\n", unknown("Namespace", "v1", "spec.finalizer")),
    "ns metadata list": ("Namespace", "apiVersion: v1\nkind: Namespace\nmetadata: [store]\n",
                         'error: unable to decode "STDIN": json: cannot unmarshal array into Go struct field '
                         "metadataOnlyObject.metadata of type v1.ObjectMeta"),
    # -- ServiceProfile: its CRD's schema, then Linkerd's sp-validator webhook -------------------------------------------
    "sp typo isRetriable": ("ServiceProfile", edit(SERVICEPROFILE, "    condition:", "    isRetriable: true\n    condition:"),
                            unknown("ServiceProfile", "v1alpha2", "spec.routes[0].isRetriable")),
    "sp isRetryable string": ("ServiceProfile", edit(SERVICEPROFILE, "    condition:", '    isRetryable: "yes"\n    condition:'),
                              invalid("ServiceProfile", SP, 'spec.routes[0].isRetryable: Invalid value: "string": '
                                                            "spec.routes[0].isRetryable in body must be of type boolean: "
                                                            '"string"')),
    "sp route without condition": ("ServiceProfile", edit(SERVICEPROFILE, "    condition: {method: GET, pathRegex: /books}\n", ""),
                                   invalid("ServiceProfile", SP, "spec.routes[0].condition: Required value")),
    "sp routes not a list": ("ServiceProfile", edit(SERVICEPROFILE, "  routes:\n  - name: GET /books\n    condition: "
                                                                     "{method: GET, pathRegex: /books}\n",
                                                    "  routes: GET /books\n"),
                             invalid("ServiceProfile", SP, 'spec.routes: Invalid value: "string": spec.routes in body must be '
                                                           'of type array: "string"')),
    # a map where the schema has a list: structural pruning finds no such fields under a list, so they are unknown
    "sp routes a map": ("ServiceProfile", edit(SERVICEPROFILE, "  routes:\n  - name: GET /books\n    condition: "
                                                                "{method: GET, pathRegex: /books}\n",
                                               "  routes: {name: GET /books}\n"),
                        unknown("ServiceProfile", "v1alpha2", "spec.routes.name")),
    "sp retry budget ttl": ("ServiceProfile", SERVICEPROFILE + "  retryBudget: {retryRatio: 0.2, minRetriesPerSecond: 10}\n",
                            invalid("ServiceProfile", SP, "spec.retryBudget.ttl: Required value")),
    "sp weight pattern": ("ServiceProfile", SERVICEPROFILE + "  dstOverrides: [{authority: web.shop.svc.cluster.local, "
                                                              "weight: lots}]\n",
                          invalid("ServiceProfile", SP, 'spec.dstOverrides[0].weight: Invalid value: "lots": '
                                                        "spec.dstOverrides[0].weight in body should match "
                                                        r"'^(\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))(([KMGTPE]i)|[numkMGTPE]|"
                                                        r"([eE](\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))))?$'")),
    "sp timeout (webhook)": ("ServiceProfile", SERVICEPROFILE + "    timeout: soon\n",
                             SP_WEBHOOK + f'ServiceProfile "{SP}" has a route with an invalid timeout: time: invalid '
                                          'duration "soon"'),
    "sp timeout without unit (webhook)": ("ServiceProfile", SERVICEPROFILE + "    timeout: '300'\n",
                                          SP_WEBHOOK + f'ServiceProfile "{SP}" has a route with an invalid timeout: time: '
                                                       'missing unit in duration "300"'),
    "sp empty condition (webhook)": ("ServiceProfile", edit(SERVICEPROFILE, "{method: GET, pathRegex: /books}", "{}"),
                                     SP_WEBHOOK + f'ServiceProfile "{SP}" has a route with an invalid condition: A request '
                                                  "match must have a field set"),
    "sp status range (webhook)": ("ServiceProfile", SERVICEPROFILE + "    responseClasses: [{condition: {status: {min: 99}}, "
                                                                     "isFailure: true}]\n",
                                  SP_WEBHOOK + f'ServiceProfile "{SP}" has a response class with an invalid condition: '
                                               "Range minimum must be between 100 and 599, inclusive"),
    "sp typo in an open match (webhook)": ("ServiceProfile", edit(SERVICEPROFILE, "{method: GET, pathRegex: /books}",
                                                                  "{all: [{methd: GET}]}"),
                                           SP_WEBHOOK + "failed to validate ServiceProfile: error unmarshaling JSON: while "
                                                        'decoding JSON: json: unknown field "methd"'),
    # -- Server --------------------------------------------------------------------------------------------------------
    "server no selector": ("Server", edit(SERVER, "  podSelector: {matchLabels: {app: web}}\n", ""),
                           invalid("Server", "web-http", '<nil>: Invalid value: "": "spec" must validate one and only one '
                                                         "schema (oneOf). Found none valid",
                                   "spec.podSelector: Required value")),
    "server two selectors": ("Server", edit(SERVER, "  port: http", "  externalWorkloadSelector: {matchLabels: {app: web}}\n"
                                                                     "  port: http"),
                             invalid("Server", "web-http", '<nil>: Invalid value: "": "spec" must validate one and only one '
                                                           "schema (oneOf). Found 2 valid alternatives")),
    "server no port": ("Server", edit(SERVER, "  port: http\n", ""), invalid("Server", "web-http", "spec.port: Required value")),
    "server port bool": ("Server", edit(SERVER, "port: http", "port: true"),
                         invalid("Server", "web-http", 'spec.port: Invalid value: "boolean": spec.port in body must be of '
                                                       'type integer,string: "boolean"')),
    "server operator enum": ("Server", edit(SERVER, "podSelector: {matchLabels: {app: web}}",
                                            "podSelector: {matchExpressions: [{key: app, operator: Equals, values: [web]}]}"),
                             invalid("Server", "web-http", 'spec.podSelector.matchExpressions[0].operator: Unsupported value: '
                                                           '"Equals": supported values: "In", "NotIn", "Exists", '
                                                           '"DoesNotExist"')),
    "server typo": ("Server", edit(SERVER, "podSelector:", "podSelectr:"), unknown("Server", "v1beta3", "spec.podSelectr")),
    "server access policy (webhook)": ("Server", SERVER + "  accessPolicy: everyone\n",
                                       POLICY_WEBHOOK + "Invalid 'accessPolicy' field: invalid mode: \"everyone\""),
    # -- AuthorizationPolicy ---------------------------------------------------------------------------------------------
    "authz no refs": ("AuthorizationPolicy", edit(AUTHZ, "  requiredAuthenticationRefs: [{name: web, kind: ServiceAccount}]\n", ""),
                      invalid("AuthorizationPolicy", "web-authz", "spec.requiredAuthenticationRefs: Required value")),
    "authz empty kind": ("AuthorizationPolicy", edit(AUTHZ, "kind: Server,", "kind: '',"),
                         invalid("AuthorizationPolicy", "web-authz", 'spec.targetRef.kind: Invalid value: "": '
                                                                     "spec.targetRef.kind in body should be at least 1 chars "
                                                                     "long")),
    "authz kind pattern": ("AuthorizationPolicy", edit(AUTHZ, "kind: Server,", "kind: Server!,"),
                           invalid("AuthorizationPolicy", "web-authz", 'spec.targetRef.kind: Invalid value: "Server!": '
                                                                       "spec.targetRef.kind in body should match "
                                                                       "'^[a-zA-Z]([-a-zA-Z0-9]*[a-zA-Z0-9])?$'")),
    "authz two accounts (webhook)": ("AuthorizationPolicy",
                                     edit(AUTHZ, "[{name: web, kind: ServiceAccount}]",
                                          "[{name: web, kind: ServiceAccount}, {name: admin, kind: ServiceAccount}]"),
                                     POLICY_WEBHOOK + "only a single ServiceAccount may be set"),
    "authz other namespace (webhook)": ("AuthorizationPolicy",
                                        edit(AUTHZ, "{group: policy.linkerd.io, kind: Server, name: web-http}",
                                             "{kind: Namespace, name: other}"),
                                        POLICY_WEBHOOK + "cannot target another namespace: other"),
    # -- HTTPRoute (gateway.networking.k8s.io/v1): schema, CEL rules, Linkerd's policy-validator --------------------------
    "route path type enum": ("HTTPRoute", edit(HTTPROUTE, "type: PathPrefix", "type: Exakt"),
                             invalid("HTTPRoute", "books", 'spec.rules[0].matches[0].path.type: Unsupported value: "Exakt": '
                                                           'supported values: "Exact", "PathPrefix", "RegularExpression"',
                                     NOT_CHECKED)),
    "route method enum": ("HTTPRoute", edit(HTTPROUTE, "[{path: {type: PathPrefix, value: /books}}]",
                                            "[{method: FETCH, path: {type: PathPrefix, value: /books}}]"),
                          invalid("HTTPRoute", "books", 'spec.rules[0].matches[0].method: Unsupported value: "FETCH": '
                                                        'supported values: "GET", "HEAD", "POST", "PUT", "DELETE", '
                                                        '"CONNECT", "OPTIONS", "TRACE", "PATCH"', NOT_CHECKED)),
    "route port maximum": ("HTTPRoute", edit(HTTPROUTE, "backendRefs: [{name: web, port: 80}]",
                                             "backendRefs: [{name: web, port: 70000}]"),
                           invalid("HTTPRoute", "books", "spec.rules[0].backendRefs[0].port: Invalid value: 70000: "
                                                         "spec.rules[0].backendRefs[0].port in body should be less than or "
                                                         "equal to 65535")),
    "route weight minimum": ("HTTPRoute", edit(HTTPROUTE, "{name: web, port: 80}]", "{name: web, port: 80, weight: -1}]"),
                             invalid("HTTPRoute", "books", "spec.rules[0].backendRefs[0].weight: Invalid value: -1: "
                                                           "spec.rules[0].backendRefs[0].weight in body should be greater "
                                                           "than or equal to 0")),
    "route timeout pattern": ("HTTPRoute", HTTPROUTE + "    timeouts: {request: soon}\n",
                              invalid("HTTPRoute", "books", 'spec.rules[0].timeouts.request: Invalid value: "soon": '
                                                            "spec.rules[0].timeouts.request in body should match "
                                                            "'^([0-9]{1,5}(h|m|s|ms)){1,4}$'")),
    "route typo backendRef": ("HTTPRoute", edit(HTTPROUTE, "backendRefs:", "backendRef:"),
                              unknown("HTTPRoute", "v1", "spec.rules[0].backendRef")),
    "route parent without name": ("HTTPRoute", edit(HTTPROUTE, "[{name: web, kind: Service,", "[{kind: Service,"),
                                  invalid("HTTPRoute", "books", "spec.parentRefs[0].name: Required value",
                                          # a Required error does not stop CEL: the parentRefs rules then read the
                                          # missing name, a runtime error reported as "<error> evaluating rule: <msg>"
                                          'spec.parentRefs: Invalid value: "array": no such key: name evaluating rule: '
                                          "sectionName must be specified when parentRefs includes 2 or more references "
                                          "to the same parent",
                                          'spec.parentRefs: Invalid value: "array": no such key: name evaluating rule: '
                                          "sectionName must be unique when parentRefs includes 2 or more references to "
                                          "the same parent"), CEL),
    "route rules not a list": ("HTTPRoute", edit(HTTPROUTE, "  rules:\n  - matches: [{path: {type: PathPrefix, value: /books}}]\n"
                                                            "    backendRefs: [{name: web, port: 80}]\n",
                                                 "  rules: web\n"),
                               invalid("HTTPRoute", "books", 'spec.rules: Invalid value: "string": spec.rules in body must be '
                                                             'of type array: "string"', NOT_CHECKED)),
    "route too many rules": ("HTTPRoute", edit(HTTPROUTE, "  rules:\n",
                                               "  rules:\n" + "  - backendRefs: [{name: web, port: 80}]\n" * 16),
                             invalid("HTTPRoute", "books", "spec.rules: Too many: 17: must have at most 16 items")),
    "route service backend without port (CEL)": ("HTTPRoute", edit(HTTPROUTE, "{name: web, port: 80}]", "{name: web}]"),
                                                 invalid("HTTPRoute", "books", 'spec.rules[0].backendRefs[0]: Invalid value: '
                                                                               '"object": Must have port for Service '
                                                                               "reference"), CEL),
    "route relative path (CEL)": ("HTTPRoute", edit(HTTPROUTE, "value: /books", "value: books"),
                                  invalid("HTTPRoute", "books", 'spec.rules[0].matches[0].path: Invalid value: "object": '
                                                                "value must be an absolute path and start with '/' when "
                                                                "type one of ['Exact', 'PathPrefix']"), CEL),
    "route same parent twice (CEL)": ("HTTPRoute", edit(HTTPROUTE, "parentRefs: [{name: web, kind: Service, group: core, "
                                                                   "port: 80}]",
                                                        "parentRefs: [{name: web, kind: Service, group: core, port: 80}, "
                                                        "{name: web, kind: Service, group: core}]"),
                                      # Gateway API v1.2.1's standard channel: the rules look at sectionName only
                                      invalid("HTTPRoute", "books", 'spec.parentRefs: Invalid value: "array": sectionName '
                                                                    "must be unique when parentRefs includes 2 or more "
                                                                    "references to the same parent"), CEL),
    # -- HTTPRoute (policy.linkerd.io/v1beta3) ----------------------------------------------------------------------------
    "policy route timeout format": ("HTTPRoute.policy", edit(POLICY_ROUTE, "request: 10s", "request: soon"),
                                    invalid("HTTPRoute", "books", 'spec.rules[0].timeouts.request: Invalid value: "soon": '
                                                                  "spec.rules[0].timeouts.request in body must be of type "
                                                                  'duration: "soon"')),
    "policy route path type": ("HTTPRoute.policy", edit(POLICY_ROUTE, "type: PathPrefix", "type: Prefix"),
                               invalid("HTTPRoute", "books", 'spec.rules[0].matches[0].path.type: Unsupported value: '
                                                             '"Prefix": supported values: "Exact", "PathPrefix", '
                                                             '"RegularExpression"')),
    "policy route parent port": ("HTTPRoute.policy", edit(POLICY_ROUTE, "group: core, port: 80", "group: core, port: 0"),
                                 invalid("HTTPRoute", "books", "spec.parentRefs[0].port: Invalid value: 0: "
                                                               "spec.parentRefs[0].port in body should be greater than or "
                                                               "equal to 1")),
    "policy route timeouts (webhook)": ("HTTPRoute.policy", edit(POLICY_ROUTE, "{request: 10s}",
                                                                 "{request: 10s, backendRequest: 20s}"),
                                        POLICY_WEBHOOK + "backendRequest timeout (20s) must not be greater than request "
                                                         "timeout (10s)"),
    "policy route relative path (webhook)": ("HTTPRoute.policy", edit(POLICY_ROUTE, "value: /books", "value: books"),
                                             POLICY_WEBHOOK + "HttpPathMatch paths must be absolute (begin with `/`); "
                                                              '"books" is not an absolute path'),
    # -- GRPCRoute -------------------------------------------------------------------------------------------------------------
    "grpc method type enum": ("GRPCRoute", edit(GRPCROUTE, "{service: emojivoto", "{type: Prefix, service: emojivoto"),
                              invalid("GRPCRoute", "emoji", 'spec.rules[0].matches[0].method.type: Unsupported value: '
                                                            '"Prefix": supported values: "Exact", "RegularExpression"',
                                      NOT_CHECKED)),
    "grpc typo matchs": ("GRPCRoute", edit(GRPCROUTE, "- matches:", "- matchs:"),
                         unknown("GRPCRoute", "v1", "spec.rules[0].matchs")),
    "grpc port string": ("GRPCRoute", edit(GRPCROUTE, "backendRefs: [{name: emoji-svc, port: 8080}]",
                                           "backendRefs: [{name: emoji-svc, port: '8080'}]"),
                         invalid("GRPCRoute", "emoji", 'spec.rules[0].backendRefs[0].port: Invalid value: "string": '
                                                       "spec.rules[0].backendRefs[0].port in body must be of type integer: "
                                                       '"string"', NOT_CHECKED)),
    "grpc empty method (CEL)": ("GRPCRoute", edit(GRPCROUTE, "{service: emojivoto.v1.EmojiService, method: ListAll}",
                                                  "{type: Exact}"),
                                invalid("GRPCRoute", "emoji", 'spec.rules[0].matches[0].method: Invalid value: "object": '
                                                              "One or both of 'service' or 'method' must be specified"), CEL),
    # -- TrafficSplit (linkerd-smi) --------------------------------------------------------------------------------------------
    "ts no backends": ("TrafficSplit", edit(TRAFFICSPLIT, "  backends: [{service: web, weight: 900m}, {service: web-err, "
                                                          "weight: 100m}]\n", ""),
                       invalid("TrafficSplit", "split", "spec.backends: Required value")),
    "ts backend without weight": ("TrafficSplit", edit(TRAFFICSPLIT, "{service: web-err, weight: 100m}", "{service: web-err}"),
                                  invalid("TrafficSplit", "split", "spec.backends[1].weight: Required value")),
    "ts weight bool": ("TrafficSplit", edit(TRAFFICSPLIT, "weight: 900m", "weight: true"),
                       invalid("TrafficSplit", "split", 'spec.backends[0].weight: Invalid value: "boolean": '
                                                        'spec.backends[0].weight in body must be of type integer,string: '
                                                        '"boolean"')),
    "ts typo backend": ("TrafficSplit", edit(TRAFFICSPLIT, "backends:", "backend:"),
                        unknown("TrafficSplit", "v1alpha1", "spec.backend")),
    "ts v1alpha2 weight string": ("TrafficSplit", edit(TRAFFICSPLIT, "v1alpha1", "v1alpha2"),
                                  invalid("TrafficSplit", "split",
                                          'spec.backends[0].weight: Invalid value: "string": spec.backends[0].weight in '
                                          'body must be of type number: "string"',
                                          'spec.backends[1].weight: Invalid value: "string": spec.backends[1].weight in '
                                          'body must be of type number: "string"')),
    # -- Canary and MetricTemplate (Flagger) -----------------------------------------------------------------------------------
    "canary target kind": ("Canary", edit(CANARY, "kind: Deployment", "kind: StatefulSet"),
                           invalid("Canary", "podinfo", 'spec.targetRef.kind: Unsupported value: "StatefulSet": supported '
                                                        'values: "DaemonSet", "Deployment", "Service"', NOT_CHECKED)),
    "canary no analysis": ("Canary", CANARY.split("  analysis:")[0], invalid("Canary", "podinfo", "spec.analysis: Required value")),
    "canary old analysis name": ("Canary", edit(CANARY, "  analysis:", "  canaryAnalysis:"),
                                 unknown("Canary", "v1beta1", "spec.canaryAnalysis")),
    "canary no threshold": ("Canary", edit(CANARY, "    threshold: 5\n", ""),
                            invalid("Canary", "podinfo", '<nil>: Invalid value: "": "spec.analysis" must validate one and '
                                                         "only one schema (oneOf). Found none valid",
                                    "spec.analysis.threshold: Required value")),
    "canary port string": ("Canary", edit(CANARY, "port: 9898", "port: '9898'"),
                           invalid("Canary", "podinfo", 'spec.service.port: Invalid value: "string": spec.service.port in '
                                                        'body must be of type number: "string"', NOT_CHECKED)),
    "canary provider": ("Canary", edit(CANARY, "provider: linkerd", "provider: linkerd2"),
                        invalid("Canary", "podinfo", 'spec.provider: Unsupported value: "linkerd2": supported values: '
                                                     '"apisix", "appmesh", "appmesh:v1beta2", "contour", "gatewayapi:v1", '
                                                     '"gatewayapi:v1beta1", "gloo", "istio", "knative", "kubernetes", '
                                                     '"kuma", "linkerd", "nginx", "osm", "skipper", "smi:v1alpha1", '
                                                     '"smi:v1alpha2", "smi:v1alpha3", "traefik"', NOT_CHECKED)),
    "canary interval pattern": ("Canary", edit(CANARY, "interval: 30s", "interval: often"),
                                invalid("Canary", "podinfo", 'spec.analysis.interval: Invalid value: "often": '
                                                             "spec.analysis.interval in body should match '^[0-9]+(m|s)'")),
    "canary webhook type": ("Canary", edit(CANARY, "name: load-test,", "name: load-test, type: pre-deploy,"),
                            invalid("Canary", "podinfo", 'spec.analysis.webhooks[0].type: Unsupported value: "pre-deploy": '
                                                         'supported values: "", "confirm-rollout", "pre-rollout", "rollout", '
                                                         '"confirm-promotion", "post-rollout", "event", "rollback", '
                                                         '"confirm-traffic-increase"', NOT_CHECKED)),
    "canary metric typo": ("Canary", edit(CANARY, "thresholdRange:", "thresholdRang:"),
                           unknown("Canary", "v1beta1", "spec.analysis.metrics[0].thresholdRang")),
    "metrictemplate no query": ("MetricTemplate", METRICTEMPLATE.split("  query:")[0],
                                invalid("MetricTemplate", "not-found", "spec.query: Required value")),
    "metrictemplate provider type": ("MetricTemplate", edit(METRICTEMPLATE, "type: prometheus", "type: prometeus"),
                                     invalid("MetricTemplate", "not-found", 'spec.provider.type: Unsupported value: '
                                                                            '"prometeus": supported values: "prometheus", '
                                                                            '"influxdb", "datadog", "externalmetrics", '
                                                                            '"stackdriver", "cloudwatch", "newrelic", '
                                                                            '"graphite", "dynatrace", "keptn", "splunk"')),
    "metrictemplate no provider": ("MetricTemplate", edit(METRICTEMPLATE, '  provider: {type: prometheus, address: '
                                                                          '"http://prometheus.linkerd-viz:9090"}\n', ""),
                                   invalid("MetricTemplate", "not-found", "spec.provider: Required value")),
    "metrictemplate typo": ("MetricTemplate", edit(METRICTEMPLATE, "  query:", "  querry:"),
                            unknown("MetricTemplate", "v1beta1", "spec.querry")),
}


def test_the_table_is_big_and_covers_every_kind():
    assert len(ROWS) >= 60
    assert {row[0] for row in ROWS.values()} == set(BASES)


def _mesh():
    """Linkerd (with its webhooks ready), the Gateway API, linkerd-smi and Flagger, as their installers install them
    (with the real CRDs of their releases)."""
    mesh = labkit.connect(seed=17)
    mesh.install_gateway_api()
    mesh.install_linkerd(viz=False)
    mesh.install_smi()
    mesh.install_flagger()
    mesh.apply("apiVersion: v1\nkind: Namespace\nmetadata: {name: shop}\n")
    mesh.wait("1m")
    return mesh


@pytest.fixture(scope="module")
def mesh():
    return _mesh()


def test_every_base_manifest_is_valid():
    """Each row breaks one thing in a manifest the cluster accepts."""
    mesh = _mesh()
    for kind, base in BASES.items():
        assert mesh.apply(base)[0].endswith(" created"), kind


def _split(message: str) -> tuple[str, set[str]]:
    """kubectl's text without labkit's last line: (first line, the set of ``* `` cause lines)."""
    text = message.rsplit("\n(", 1)[0]
    lines = text.split("\n")
    return lines[0], set(lines[1:])


@pytest.mark.parametrize("row", sorted(ROWS))
def test_an_invalid_manifest_is_refused_with_the_api_servers_words_and_nothing_is_applied(mesh, row):
    import yaml

    kind, manifest, expected, *flags = ROWS[row]
    before = mesh.cluster.revision
    with pytest.raises(ApplyError) as err:
        mesh.apply(manifest)
    message = str(err.value)
    assert _split(message) == _split(expected), message
    assert message.endswith("nothing from this apply was applied)")
    assert mesh.cluster.revision == before, "nothing was stored"
    meta = yaml.safe_load(manifest).get("metadata")
    if isinstance(meta, dict):
        resource = "httproute.policy.linkerd.io" if kind == "HTTPRoute.policy" else yaml.safe_load(manifest)["kind"]
        with pytest.raises(NotFoundError):
            mesh.get(resource, meta["name"], meta.get("namespace"))


#: Rows whose manifest real kubectl sends as is (kubectl's YAML→JSON keeps one value per repeated key, so the
#: repeated-key rows are the embedded mesh's own reading of the file and are not in this sample).
KUBECTL_SAMPLE = ("deploy typo replica", "deploy replicas string", "deploy no selector", "cm label number",
                  "svc targetPort name", "sp typo isRetriable", "sp timeout (webhook)", "server no selector",
                  "route path type enum", "route port maximum", "policy route timeout format", "ns metadata list")


def test_real_kubectl_prints_the_same_error_through_the_served_api(mesh, kubectl_bin, tmp_path):
    import os
    import subprocess

    served = mesh.serve(pace=0)
    try:
        env = {**os.environ, "KUBECONFIG": served.kubeconfig}
        for row in KUBECTL_SAMPLE:
            kind, manifest, expected, *_ = ROWS[row]
            path = tmp_path / f"{row.replace(' ', '-').replace('(', '').replace(')', '')}.yaml"
            path.write_text(manifest)
            before = mesh.cluster.revision
            out = subprocess.run([kubectl_bin, "apply", "-f", str(path)], capture_output=True, text=True, env=env,
                                 timeout=120, stdin=subprocess.DEVNULL)
            assert out.returncode == 1, (row, out.stdout, out.stderr)
            with pytest.raises(ApplyError) as err:
                mesh.apply(str(path))
            ours = str(err.value).rsplit("\n(", 1)[0]
            assert out.stderr.strip() == ours, row
            assert _split(ours) == _split(expected.replace('"STDIN"', f'"{path}"')), row
            assert mesh.cluster.revision == before, row
    finally:
        served.close()


# -- kubectl's --validate=warn|ignore, and the server's defaulting ---------------------------------------------------

def typo(name: str) -> str:
    """A Deployment with a typo (``spec.replica``) beside the right field."""
    return edit(edit(DEPLOYMENT, "replicas: 1", "replicas: 1\n  replica: 2"), "name: web, namespace", f"name: {name}, namespace")


def test_warn_drops_unknown_and_repeated_fields_with_kubectls_warning_lines(mesh, capsys):
    manifest = edit(typo("warned"), "selector:", "minReadySeconds: 1\n  minReadySeconds: 2\n  selector:")
    assert mesh.apply(manifest, validate="warn") == ["deployment.apps/warned created"]
    assert mesh.cluster.last_command.startswith("kubectl apply --validate=warn")
    err = capsys.readouterr().err
    assert 'Warning: unknown field "spec.replica"\n' in err and 'Warning: duplicate field "spec.minReadySeconds"\n' in err
    stored = mesh.get("deploy", "warned", "shop")
    assert "replica" not in stored["spec"] and stored["spec"]["minReadySeconds"] == 2, "dropped; the last value kept"


def test_ignore_drops_them_silently_and_strict_is_the_default(mesh, capsys):
    with pytest.raises(ApplyError, match='unknown field "spec.replica"'):
        mesh.apply(typo("ignored"))
    assert mesh.apply(typo("ignored"), validate="ignore") == ["deployment.apps/ignored created"]
    assert "Warning" not in capsys.readouterr().err
    assert "replica" not in mesh.get("deploy", "ignored", "shop")["spec"]
    with pytest.raises(ValueError, match="validate='loose' is not one of 'strict', 'warn', 'ignore'"):
        mesh.apply(typo("ignored"), validate="loose")


def test_custom_resources_get_their_schemas_defaults_as_on_a_cluster(mesh):
    route = edit(HTTPROUTE, "name: books, namespace", "name: defaulted, namespace")
    assert mesh.apply(route) == ["httproute.gateway.networking.k8s.io/defaulted created"]
    ref = mesh.get("httproute.gateway.networking.k8s.io", "defaulted", "shop")["spec"]["rules"][0]["backendRefs"][0]
    assert ref == {"name": "web", "port": 80, "group": "", "kind": "Service", "weight": 1}
    assert mesh.apply(route) == ["httproute.gateway.networking.k8s.io/defaulted unchanged"]
    mesh.delete("httproute.gateway.networking.k8s.io/defaulted", namespace="shop")


def test_the_served_api_warns_and_the_kube_backend_prints_it_as_kubectl_does(mesh, capsys):
    served = mesh.serve(pace=0)
    try:
        kube = labkit.connect("kube", context=served.context, kubeconfig=served.kubeconfig)
        with pytest.raises(ApplyError) as err:
            kube.apply(typo("served"))
        assert str(err.value).startswith(unknown("Deployment", "v1", "spec.replica"))
        assert kube.apply(typo("served"), validate="warn") == ["deployment.apps/served created"]
        assert capsys.readouterr().err.count('Warning: unknown field "spec.replica"') == 1, "once: not for the dry run"
        kind, manifest, *_ = ROWS["deploy no selector"]
        with pytest.raises(ApplyError) as on_cluster:
            kube.apply(manifest)
        with pytest.raises(ApplyError) as embedded:
            mesh.apply(manifest)
        assert str(on_cluster.value) == str(embedded.value)
        assert on_cluster.value.status["details"]["causes"] == embedded.value.status["details"]["causes"] == [
            {"reason": "FieldValueRequired", "message": "Required value", "field": "spec.selector"},
            {"reason": "FieldValueInvalid", "field": "spec.template.metadata.labels",
             "message": 'Invalid value: map[string]string{"app":"web"}: `selector` does not match template `labels`'}]
        repeated = edit(CONFIGMAP, "data: {mode: fast}", "data:\n  mode: fast\n  mode: slow")
        with pytest.raises(ApplyError) as err:
            kube.apply(repeated)
        assert str(err.value).startswith(bad_request("ConfigMap", "v1", 'strict decoding error: duplicate field '
                                                                        '"data.mode"'))
    finally:
        served.close()
