"""Checks what `terraform apply` of this test root deployed, through the AWS API (boto3 against moto), not
through Terraform's own state or outputs. Prints one line per check: `ok <name>` or `FAIL <name>: <why>`.
Usage: python3 check_deployed.py <endpoint> <schedule json> <name_prefix> <secret_readers as JSON>
                                  <secret_noncurrent_version_days> <`terraform output -json module` file>
                                  [<credential statements as JSON>]
The last argument names, per role ("provisioner", "reaper"), the statements the admin credential mode and the
credential delivery add: [{"actions": [...], "resources": [...], "condition": {...}}], compared exactly.
"""
import json
import os
import sys
import traceback

import boto3

endpoint, schedule_file, prefix, secret_readers_json, secret_days, outputs_file = sys.argv[1:7]
CREDENTIAL_STATEMENTS = json.loads(sys.argv[7]) if len(sys.argv) > 7 else {"provisioner": [], "reaper": []}
SECRET_READERS = json.loads(secret_readers_json)
SECRET_DAYS = int(secret_days)
REGION = "us-east-1"


def client(service):
    return boto3.client(service, endpoint_url=endpoint, region_name=REGION,
                        aws_access_key_id="testing", aws_secret_access_key="testing")


checks = []


def check(name):
    def register(fn):
        checks.append((name, fn))
        return fn
    return register


schedule = json.load(open(schedule_file))
TABLE = f"{prefix}-grants"
PROVISIONER = f"{prefix}-provisioner"
REAPER = f"{prefix}-reaper"
RULE = f"{prefix}-{schedule['name_suffix']}"
BUCKET_PREFIX = f"{prefix}-config-"
SPEC_ENV = {"GRANTS_TABLE", "CONFIG_BUCKET", "CONFIG_KEY", "RETENTION_DAYS", "PENDING_GRACE_SECONDS",
            "SECRET_NAME_PREFIX"}

ddb, events, lam, iam, s3, cw, logs = (client(s) for s in ("dynamodb", "events", "lambda", "iam", "s3", "cloudwatch", "logs"))


def table():
    return ddb.describe_table(TableName=TABLE)["Table"]


def keys(schema, defs):
    types = {d["AttributeName"]: d["AttributeType"] for d in defs}
    return [(k["AttributeName"], k["KeyType"], types[k["AttributeName"]]) for k in schema]


def bucket():
    names = [b["Name"] for b in s3.list_buckets()["Buckets"] if b["Name"].startswith(BUCKET_PREFIX)]
    assert len(names) == 1, f"expected one bucket {BUCKET_PREFIX}*, found {names}"
    return names[0]


@check("table: PAY_PER_REQUEST, hash key grant_id (S)")
def _():
    t = table()
    billing = t.get("BillingModeSummary", {}).get("BillingMode")
    assert billing == "PAY_PER_REQUEST", billing
    assert keys(t["KeySchema"], t["AttributeDefinitions"]) == [("grant_id", "HASH", "S")], t["KeySchema"]


@check("table: exactly the GSIs by-expiry, by-requester (SPEC) and by-database, with their keys, projection ALL")
def _():
    t = table()
    gsis = {g["IndexName"]: g for g in t.get("GlobalSecondaryIndexes", [])}
    assert set(gsis) == {"by-expiry", "by-requester", "by-database"}, sorted(gsis)
    want = {"by-expiry": [("expiry_shard", "HASH", "S"), ("expires_at_epoch", "RANGE", "N")],
            "by-requester": [("requester", "HASH", "S"), ("created_at", "RANGE", "S")],
            "by-database": [("database", "HASH", "S"), ("created_at", "RANGE", "S")]}
    for name, expected in want.items():
        got = keys(gsis[name]["KeySchema"], t["AttributeDefinitions"])
        assert got == expected, f"{name}: {got}"
        assert gsis[name]["Projection"]["ProjectionType"] == "ALL", gsis[name]["Projection"]


@check("table: TTL on purge_at enabled")
def _():
    ttl = ddb.describe_time_to_live(TableName=TABLE)["TimeToLiveDescription"]
    assert ttl.get("AttributeName") == "purge_at" and ttl.get("TimeToLiveStatus") in ("ENABLED", "ENABLING"), ttl


@check("table: point-in-time recovery enabled")
def _():
    pitr = ddb.describe_continuous_backups(TableName=TABLE)["ContinuousBackupsDescription"]
    assert pitr["PointInTimeRecoveryDescription"]["PointInTimeRecoveryStatus"] == "ENABLED", pitr


@check("table: server-side encryption enabled")
def _():
    sse = table().get("SSEDescription", {})
    assert sse.get("Status") in ("ENABLED", "ENABLING"), sse


@check("schedule: rule is rate(5 minutes)")
def _():
    rule = events.describe_rule(Name=RULE)
    assert rule["ScheduleExpression"] == "rate(5 minutes)", rule["ScheduleExpression"]


@check("schedule: deployed rule equals eventbridge/reaper-schedule.json")
def _():
    rule = events.describe_rule(Name=RULE)
    deployed = {"schedule_expression": rule["ScheduleExpression"], "state": rule["State"],
                "description": rule.get("Description")}
    wanted = {k: schedule[k] for k in deployed}
    assert deployed == wanted, f"deployed {deployed} != file {wanted}"


@check("schedule: the rule's only target is the reaper")
def _():
    reaper_arn = lam.get_function(FunctionName=REAPER)["Configuration"]["FunctionArn"]
    targets = events.list_targets_by_rule(Rule=RULE)["Targets"]
    assert [t["Arn"] for t in targets] == [reaper_arn], targets


@check("schedule: events.amazonaws.com may invoke the reaper from this rule only")
def _():
    rule_arn = events.describe_rule(Name=RULE)["Arn"]
    statements = json.loads(lam.get_policy(FunctionName=REAPER)["Policy"])["Statement"]
    assert len(statements) == 1, statements
    s = statements[0]
    principal = s["Principal"]["Service"] if isinstance(s["Principal"], dict) else s["Principal"]
    assert principal == "events.amazonaws.com", s
    assert s["Action"] == "lambda:InvokeFunction", s
    assert s["Condition"]["ArnLike"]["AWS:SourceArn"] == rule_arn, s


def function_check(name, timeout):
    def run():
        c = lam.get_function(FunctionName=name)["Configuration"]
        assert c["Runtime"] == "provided.al2023", c["Runtime"]
        assert c["Handler"] == "bootstrap", c["Handler"]
        assert c["Timeout"] == timeout, c["Timeout"]
        assert c.get("Architectures") in (["x86_64"], ["arm64"]), c.get("Architectures")
        env = c["Environment"]["Variables"]
        assert SPEC_ENV <= set(env), f"missing {SPEC_ENV - set(env)}"
        assert env["GRANTS_TABLE"] == TABLE, env
        assert env["CONFIG_BUCKET"] == bucket(), env
        assert env["CONFIG_KEY"] == "config.json" and env["RETENTION_DAYS"] == "365", env
        assert env["PENDING_GRACE_SECONDS"] == "900", env
        assert env["SECRET_NAME_PREFIX"] == "jit-access", env
        assert c["Role"].endswith(f":role/{name}-role"), c["Role"]
        assert not c.get("VpcConfig", {}).get("SubnetIds"), c.get("VpcConfig")
    return run


check("lambda: provisioner provided.al2023, bootstrap, 30 s, SPEC env")(function_check(PROVISIONER, 30))
check("lambda: reaper provided.al2023, bootstrap, 300 s, SPEC env")(function_check(REAPER, 300))


@check("lambda: reaper reserved concurrency 1")
def _():
    got = lam.get_function_concurrency(FunctionName=REAPER).get("ReservedConcurrentExecutions")
    assert got == 1, got


@check("logs: both log groups exist with retention")
def _():
    for name in (PROVISIONER, REAPER):
        groups = logs.describe_log_groups(logGroupNamePrefix=f"/aws/lambda/{name}")["logGroups"]
        assert [g.get("retentionInDays") for g in groups if g["logGroupName"] == f"/aws/lambda/{name}"] == [7], groups


def role_policy(role):
    names = iam.list_role_policies(RoleName=role)["PolicyNames"]
    assert names == [role.replace("-role", "-policy")], names
    attached = iam.list_attached_role_policies(RoleName=role)["AttachedPolicies"]
    assert attached == [], f"unexpected managed policies without VPC: {attached}"
    doc = iam.get_role_policy(RoleName=role, PolicyName=names[0])["PolicyDocument"]
    if isinstance(doc, str):
        doc = json.loads(doc)
    statements = doc["Statement"] if isinstance(doc["Statement"], list) else [doc["Statement"]]
    out = []
    for s in statements:
        assert s.get("Effect", "Allow") == "Allow", s
        actions = s["Action"] if isinstance(s["Action"], list) else [s["Action"]]
        resources = s["Resource"] if isinstance(s["Resource"], list) else [s["Resource"]]
        out.append((actions, resources, normalized(s.get("Condition", {}))))
    return out


def normalized(condition):
    """{test: {key: [values]}}, whatever single values IAM returned unwrapped."""
    return {test: {key: sorted(as_list(v)) for key, v in keys.items()} for test, keys in condition.items()}


def as_list(value):
    return value if isinstance(value, list) else [value]


def assume_policy_is_lambda(role):
    doc = iam.get_role(RoleName=role)["Role"]["AssumeRolePolicyDocument"]
    if isinstance(doc, str):
        doc = json.loads(doc)
    assert json.dumps(doc).count("lambda.amazonaws.com") == 1, doc


def iam_check(function, expected, query_resources, credential_statements):
    def run():
        role = f"{function}-role"
        assume_policy_is_lambda(role)
        statements = role_policy(role)
        want_credentials = sorted((sorted(s["actions"]), sorted(s["resources"]), normalized(s.get("condition", {})))
                                  for s in credential_statements)
        got_credentials = sorted((sorted(a), sorted(r), c) for a, r, c in statements
                                 if any(x.split(":")[0] in ("secretsmanager", "ssm", "rds-db") for x in a))
        assert got_credentials == want_credentials, f"credential statements {got_credentials} != {want_credentials}"
        want_actions = sorted(expected + [a for s in credential_statements for a in s["actions"]])
        actions = sorted(a for acts, _, _ in statements for a in acts)
        assert actions == want_actions, f"actions {actions} != {want_actions}"
        assert not any("*" in a for a in actions), actions
        assert not any(a in ("dynamodb:Scan", "dynamodb:DeleteItem") for a in actions), actions
        table_arn = table()["TableArn"]
        b = bucket()
        for acts, resources, condition in statements:
            assert "*" not in resources, (acts, resources)
            if any(x.split(":")[0] in ("secretsmanager", "ssm", "rds-db") for x in acts):
                continue  # compared exactly above
            assert not condition, (acts, condition)
            if acts == ["dynamodb:Query"]:
                assert sorted(resources) == sorted(r.format(t=table_arn) for r in query_resources), resources
            elif any(a.startswith("dynamodb:") for a in acts):
                assert resources == [table_arn], (acts, resources)
            elif acts == ["s3:GetObject"]:
                want = [f"arn:aws:s3:::{b}/config.json", f"arn:aws:s3:::{b}/secrets/*", f"arn:aws:s3:::{b}/tls/*"]
                assert sorted(resources) == sorted(want), resources
            elif acts == ["rds:DescribeDBClusters"]:
                assert resources == [f"arn:aws:rds:{REGION}:123456789012:cluster:orders-prod"], resources
            elif acts == ["rds:DescribeDBInstances"]:
                assert resources == [f"arn:aws:rds:{REGION}:123456789012:db:*"], resources
            elif all(a.startswith("logs:") for a in acts):
                assert resources == [f"arn:aws:logs:{REGION}:123456789012:log-group:/aws/lambda/{function}:*"], resources
            else:
                raise AssertionError(f"unexpected statement {acts} {resources}")
    return run


# Every state change is a conditional PutItem; GetItem is the strongly consistent read both need.
COMMON = ["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:Query", "s3:GetObject",
          "logs:CreateLogStream", "logs:PutLogEvents",
          # reader discovery for the one cluster the test root names (aurora_cluster_identifiers)
          "rds:DescribeDBClusters", "rds:DescribeDBInstances"]
check("iam: provisioner role has exactly its actions, scoped")(
    iam_check(PROVISIONER, COMMON, ["{t}/index/by-expiry"], CREDENTIAL_STATEMENTS["provisioner"]))
check("iam: reaper role has exactly its actions, scoped")(
    iam_check(REAPER, COMMON, ["{t}/index/by-expiry"], CREDENTIAL_STATEMENTS["reaper"]))


@check("iam: invoke policy allows only lambda:InvokeFunction on the provisioner")
def _():
    arn = f"arn:aws:iam::123456789012:policy/{PROVISIONER}-invoke"
    version = iam.get_policy(PolicyArn=arn)["Policy"]["DefaultVersionId"]
    doc = iam.get_policy_version(PolicyArn=arn, VersionId=version)["PolicyVersion"]["Document"]
    if isinstance(doc, str):
        doc = json.loads(doc)
    provisioner_arn = lam.get_function(FunctionName=PROVISIONER)["Configuration"]["FunctionArn"]
    [s] = doc["Statement"]
    assert s["Action"] in ("lambda:InvokeFunction", ["lambda:InvokeFunction"]), s
    assert s["Resource"] in (provisioner_arn, [provisioner_arn]), s


def bucket_policy():
    return json.loads(s3.get_bucket_policy(Bucket=bucket())["Policy"])


@check("s3: bucket private, encrypted, versioned, TLS-only; config uploaded")
def _():
    b = bucket()
    pab = s3.get_public_access_block(Bucket=b)["PublicAccessBlockConfiguration"]
    assert all(pab.values()) and len(pab) == 4, pab
    rules = s3.get_bucket_encryption(Bucket=b)["ServerSideEncryptionConfiguration"]["Rules"]
    assert rules[0]["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256", rules
    assert s3.get_bucket_versioning(Bucket=b).get("Status") == "Enabled"
    policy = bucket_policy()
    tls = [s for s in policy["Statement"] if s.get("Sid") == "DenyInsecureTransport"]
    assert len(tls) == 1 and tls[0]["Effect"] == "Deny", policy
    assert as_list(tls[0]["Action"]) == ["s3:*"], tls
    assert sorted(as_list(tls[0]["Resource"])) == sorted([f"arn:aws:s3:::{b}", f"arn:aws:s3:::{b}/*"]), tls
    assert tls[0]["Condition"] == {"Bool": {"aws:SecureTransport": "false"}} or \
        tls[0]["Condition"] == {"Bool": {"aws:SecureTransport": ["false"]}}, tls
    # Not GetObject: moto applies the TLS-only Deny statement without its condition, so it refuses every
    # object call once the policy exists. Listing is a bucket-level call the policy's object ARN does not hit.
    objects = {o["Key"]: o["Size"] for o in s3.list_objects_v2(Bucket=b).get("Contents", [])}
    assert objects.get("config.json", 0) > 0, objects


SECRET_READ_ACTIONS = ["s3:GetObject", "s3:GetObjectTorrent", "s3:GetObjectVersion", "s3:GetObjectVersionTorrent"]


@check("s3: policy denies reading secrets/* to all but the Lambda roles and secret_readers (exact statement)")
def _():
    # moto does not evaluate IAM conditions (it applies a Deny without them), so the document is what is
    # checked: the exact statement, as the AWS API returns it.
    b = bucket()
    statements = bucket_policy()["Statement"]
    assert sorted(s.get("Sid", "") for s in statements) == ["DenyInsecureTransport", "DenySecretReadsExceptReaders"], statements
    [s] = [s for s in statements if s.get("Sid") == "DenySecretReadsExceptReaders"]
    assert set(s) == {"Sid", "Effect", "Principal", "Action", "Resource", "Condition"}, s
    assert s["Effect"] == "Deny", s
    assert s["Principal"] in ("*", {"AWS": "*"}), s
    assert sorted(as_list(s["Action"])) == SECRET_READ_ACTIONS, s["Action"]
    assert as_list(s["Resource"]) == [f"arn:aws:s3:::{b}/secrets/*"], s["Resource"]
    assert list(s["Condition"]) == ["ArnNotLike"] and list(s["Condition"]["ArnNotLike"]) == ["aws:PrincipalArn"], s["Condition"]
    got = as_list(s["Condition"]["ArnNotLike"]["aws:PrincipalArn"])
    roles = [iam.get_role(RoleName=f"{fn}-role")["Role"]["Arn"] for fn in (PROVISIONER, REAPER)]
    assert roles == [f"arn:aws:iam::123456789012:role/{fn}-role" for fn in (PROVISIONER, REAPER)], roles
    want = set(roles) | set(SECRET_READERS)
    assert len(SECRET_READERS) == 1 and len(want) == 3, (roles, SECRET_READERS)
    assert len(got) == len(set(got)) and set(got) == want, f"principals {sorted(got)} != {sorted(want)}"


@check("s3: lifecycle expires noncurrent versions under secrets/ only, current versions never")
def _():
    rules = s3.get_bucket_lifecycle_configuration(Bucket=bucket())["Rules"]
    assert len(rules) == 1, rules
    [r] = rules
    assert r["ID"] == "expire-old-secret-versions" and r["Status"] == "Enabled", r
    prefix = r.get("Filter", {}).get("Prefix", r.get("Prefix"))
    assert prefix == "secrets/", r
    assert r["NoncurrentVersionExpiration"]["NoncurrentDays"] == SECRET_DAYS, r
    assert not r.get("Expiration") and not r.get("Transitions") and not r.get("NoncurrentVersionTransitions"), r


@check("output config_bucket_policy_json equals the policy attached to the bucket")
def _():
    outputs = json.load(open(outputs_file))
    assert json.loads(outputs["config_bucket_policy_json"]) == bucket_policy(), "output and attached policy differ"


@check("output delivered_credentials_reader_policy_json: own secrets and parameters, by aws:userid")
def _():
    doc = json.loads(json.load(open(outputs_file))["delivered_credentials_reader_policy_json"])
    got = sorted((sorted(as_list(s["Action"])), as_list(s["Resource"]), normalized(s["Condition"])) for s in doc["Statement"])
    arn = "arn:aws:{service}:us-east-1:123456789012:{kind}jit-access/*"
    want = sorted([
        (["secretsmanager:DescribeSecret", "secretsmanager:GetSecretValue"], [arn.format(service="secretsmanager", kind="secret:")],
         {"StringLike": {"aws:userid": ["*:${secretsmanager:ResourceTag/jit:requester}"]}}),
        (["ssm:GetParameter"], [arn.format(service="ssm", kind="parameter/")],
         {"StringLike": {"aws:userid": ["*:${ssm:resourceTag/jit:requester}"]}}),
    ])
    assert got == want, f"{got} != {want}"


@check("alarms: reaper Errors, RevokeFailed, Overdue, not-running; all notify SNS")
def _():
    alarms = {a["AlarmName"]: a for a in cw.describe_alarms(AlarmNamePrefix=prefix)["MetricAlarms"]}
    topic = [t["TopicArn"] for t in client("sns").list_topics()["Topics"]]
    want = {f"{REAPER}-errors": ("AWS/Lambda", "Errors"), f"{REAPER}-revoke-failed": ("JitAccess", "RevokeFailed"),
            f"{REAPER}-overdue": ("JitAccess", "Overdue"), f"{REAPER}-not-running": ("AWS/Lambda", "Invocations")}
    for name, (namespace, metric) in want.items():
        a = alarms.get(name)
        assert a, f"missing alarm {name}; have {sorted(alarms)}"
        assert (a["Namespace"], a["MetricName"]) == (namespace, metric), a
        assert a["Dimensions"] == [{"Name": "FunctionName", "Value": REAPER}], a["Dimensions"]
        assert a["AlarmActions"] == topic, (a["AlarmActions"], topic)
    nr = alarms[f"{REAPER}-not-running"]
    got = (nr["Statistic"], nr["Period"], nr["EvaluationPeriods"], nr["ComparisonOperator"], nr["Threshold"], nr["TreatMissingData"])
    assert got == ("Sum", 300, 3, "LessThanThreshold", 1.0, "breaching"), got


@check("dashboard: reaper dashboard shows the JitAccess metrics")
def _():
    body = cw.get_dashboard(DashboardName=f"{prefix}-reaper")["DashboardBody"]
    for metric in ("Revoked", "RevokeFailed", "Overdue", "OrphansDropped", "Deferred", "DurationMs"):
        assert f'"{metric}"' in body, metric


PIPES_DOC = json.load(open(os.path.join(os.path.dirname(schedule_file), "lifecycle-pipes.json")))
BUS = f"{prefix}-grants"
PIPES_ROLE = f"{prefix}-grant-events"


@check("events: the table's stream carries NEW_AND_OLD_IMAGES")
def _():
    spec = table().get("StreamSpecification", {})
    assert spec.get("StreamEnabled") and spec.get("StreamViewType") == "NEW_AND_OLD_IMAGES", spec


@check("events: one pipe per detail-type of eventbridge/lifecycle-pipes.json, stream -> bus, filter and template as the file")
def _():
    pipes = client("pipes")
    bus_arn = events.describe_event_bus(Name=BUS)["Arn"]
    stream_arn = table()["LatestStreamArn"]
    names = sorted(p["Name"] for p in pipes.list_pipes()["Pipes"])
    assert names == sorted(f"{prefix}-{p['name']}" for p in PIPES_DOC["pipes"]), names
    for want in PIPES_DOC["pipes"]:
        pipe = pipes.describe_pipe(Name=f"{prefix}-{want['name']}")
        assert (pipe["Source"], pipe["Target"]) == (stream_arn, bus_arn), (pipe["Source"], pipe["Target"])
        filters = pipe["SourceParameters"]["FilterCriteria"]["Filters"]
        assert [json.loads(f["Pattern"]) for f in filters] == [want["filter"]], filters
        target = pipe["TargetParameters"]
        assert target["InputTemplate"] == want["input_template"], target
        bus = target["EventBridgeEventBusParameters"]
        assert (bus["DetailType"], bus["Source"]) == (want["detail_type"], PIPES_DOC["source"]), bus


@check("iam: the pipes' role reads this table's stream and puts events on this bus, nothing else")
def _():
    doc = iam.get_role(RoleName=PIPES_ROLE)["Role"]["AssumeRolePolicyDocument"]
    if isinstance(doc, str):
        doc = json.loads(doc)
    assert json.dumps(doc).count("pipes.amazonaws.com") == 1, doc
    names = iam.list_role_policies(RoleName=PIPES_ROLE)["PolicyNames"]
    assert names == ["grant-events"], names
    doc = iam.get_role_policy(RoleName=PIPES_ROLE, PolicyName="grant-events")["PolicyDocument"]
    if isinstance(doc, str):
        doc = json.loads(doc)
    got = {}
    for st in doc["Statement"]:
        actions = st["Action"] if isinstance(st["Action"], list) else [st["Action"]]
        resources = st["Resource"] if isinstance(st["Resource"], list) else [st["Resource"]]
        for a in actions:
            got[a] = resources
    stream_arn = table()["LatestStreamArn"]
    bus_arn = events.describe_event_bus(Name=BUS)["Arn"]
    want = {a: [stream_arn] for a in ("dynamodb:DescribeStream", "dynamodb:GetRecords", "dynamodb:GetShardIterator",
                                       "dynamodb:ListStreams")}
    want["events:PutEvents"] = [bus_arn]
    assert got == want, f"{got} != {want}"


failed = 0
for name, fn in checks:
    try:
        fn()
        print(f"ok {name}", flush=True)
    except Exception as e:  # noqa: BLE001 - every failure is reported, then counted
        failed += 1
        detail = str(e) or traceback.format_exc(limit=1)
        print(f"FAIL {name}: {type(e).__name__}: {detail}", flush=True)
sys.exit(1 if failed else 0)
